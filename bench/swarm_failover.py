"""Losing capacity under load: a Swarm node versus one engine's replica.

Against environments already deployed (see NOTES/README: a swarm environment on the lab,
a container environment on the local engine), with a request loop through each front load
balancer:

- swarm: SIGKILL a worker's engine (tools/swarm-lab.sh kill), time until the tier's
  service runs its full replica count on the other nodes, count requests failed meanwhile,
  then start the node again;
- container: SIGKILL one replica container's main process, time until Docker reports it
  healthy again, count requests failed meanwhile.

    .venv/bin/python -m bench.swarm_failover --swarm-url http://10.231.0.11:8080/ \
        --service ENV-web-replica --container-url http://127.0.0.1:8080/ --container ENV-web-1
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.engine.test_container_target import Load

LAB = Path(__file__).resolve().parents[1] / "tools" / "swarm-lab.sh"


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300).stdout


def until(done: Callable[[], bool], limit: float = 180) -> float:
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > limit:
            raise TimeoutError("no recovery within the limit")
        time.sleep(0.2)
    return time.monotonic() - start


def swarm_case(url: str, manager: str, service: str, node: str) -> dict[str, object]:
    replicas = int(
        sh("docker", "-H", manager, "service", "inspect", service, "--format",
           "{{.Spec.Mode.Replicated.Replicas}}")
    )  # fmt: skip

    def full() -> bool:
        lines = sh("docker", "-H", manager, "service", "ps", service, "--filter",
                   "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}")  # fmt: skip
        running = [x for x in lines.splitlines() if " Running " in f" {x} "]
        return len(running) == replicas and not any(x.startswith(f"{node} ") for x in running)

    with Load(url) as load:
        time.sleep(2)
        sh(str(LAB), "kill", node)
        seconds = until(full)
        time.sleep(4)
    sh(str(LAB), "start", node)
    return {"case": f"swarm: node {node} killed", "recovered_s": round(seconds, 1),
            "failed": len(load.failures), "ok": load.ok}  # fmt: skip


def container_case(url: str, container: str) -> dict[str, object]:
    pid = int(sh("docker", "inspect", "--format", "{{.State.Pid}}", container))
    with Load(url) as load:
        time.sleep(2)
        os.kill(pid, signal.SIGKILL)

        def healthy() -> bool:
            state = sh("docker", "inspect", "--format", "{{.State.Pid}} {{.State.Health.Status}}",
                       container).split()  # fmt: skip
            return state[0] != str(pid) and state[1] == "healthy"

        seconds = until(healthy)
        time.sleep(4)
    return {"case": f"container: replica {container} killed", "recovered_s": round(seconds, 1),
            "failed": len(load.failures), "ok": load.ok}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swarm-url")
    parser.add_argument("--manager", default="unix:///var/lib/virtstack-swarm/vsn/vsn1/docker.sock")
    parser.add_argument("--service", help="the tier's replica service, ENV-TIER-replica")
    parser.add_argument("--node", default="vsn3", help="the worker to kill")
    parser.add_argument("--container-url")
    parser.add_argument("--container", help="a replica container, ENV-TIER-N")
    args = parser.parse_args()
    results = []
    if args.swarm_url and args.service:
        results.append(swarm_case(args.swarm_url, args.manager, args.service, args.node))
    if args.container_url and args.container:
        results.append(container_case(args.container_url, args.container))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
