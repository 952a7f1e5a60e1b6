"""The swarm target for real: a three-node Swarm lab (tools/swarm-lab.sh) on this machine.

The lab gets its own prefix and subnet and is removed at the end, even on failure. One
environment (registry, web -> app) is deployed once; each test checks one promise from
outside: HTTP through the front load balancer, where Swarm put the tasks, a killed node,
a drained node, scaling and a rolling update under load, the registry's credentials.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from tenacity import retry, stop_after_delay, wait_fixed

from tests.engine.cli_support import cli, make_project, ok, set_key
from tests.engine.harness import PREFIX, PROJECT, run
from tests.engine.test_container_target import Load
from tests.support import hit
from virtstack.stackfiles import stack_file

pytestmark = pytest.mark.engine

LAB = PROJECT / "tools" / "swarm-lab.sh"
LAB_ENV = {"VIRTSTACK_SWARM_PREFIX": "vst", "VIRTSTACK_SWARM_SUBNET": "10.233.0"}
MANAGER_ADDR = "10.233.0.11"
REGISTRY_PORT = 5998
WEB_PORT = 18080
INTERVAL = 2  # the tiers' health check interval, seconds
IMAGES = ("virtstack/busybox:1", "virtstack/base:bookworm-1", "virtstack/demo:1")
UPDATED = "virtstack/demo:swarm-test"
NODES = ("vst1", "vst2", "vst3")


def lab(*args: str, timeout: float = 180) -> str:
    env = {
        **os.environ,
        **LAB_ENV,
        "VIRTSTACK_SWARM_INSECURE": f"{MANAGER_ADDR}:{REGISTRY_PORT}",
    }
    done = subprocess.run(
        [str(LAB), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"swarm-lab {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


def node_uri(node: str) -> str:
    return f"unix:///var/lib/virtstack-swarm/vst/{node}/docker.sock"


MANAGER = node_uri("vst1")


def manager(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("docker", "-H", MANAGER, *args, check=check)


def config(target: str, engine: str | None) -> dict[str, object]:
    """The declaration both targets deploy; only target and engine differ."""
    health = {"path": "/healthz", "interval": INTERVAL, "timeout": 1, "retries": 2}
    tiers = [
        {"name": "web", "image": "virtstack/demo:1", "replicas": 2, "port": 8080,
         "upstream": "app", "publish": WEB_PORT, "health": health,
         "scaling": {"min": 1, "max": 6}},
        {"name": "app", "image": "virtstack/demo:1", "replicas": 2, "port": 8080,
         "health": health},
    ]  # fmt: skip
    found: dict[str, object] = {
        "virtstack:target": target,
        "virtstack:registry": {"enabled": True, "port": REGISTRY_PORT, "auth": True},
        "virtstack:tiers": tiers,
    }
    if engine is not None:
        found["virtstack:engine"] = {"uri": engine}
    return found


@dataclass
class Env:
    project: Path
    name: str
    url: str

    def run(self, *args: str) -> str:
        return ok(self.project, *args).output

    def set(self, path: str, value: object) -> None:
        set_key(self.project, self.name, path, value)


def deploy(project: Path, name: str, target: str, engine: str | None) -> None:
    stack_file(project, name).write_text(
        yaml.safe_dump({"config": config(target, engine)}, sort_keys=False)
    )
    ok(project, "up", name, "--yes")


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if os.geteuid() != 0:
        pytest.skip("the Swarm lab needs root (network namespaces)")
    project = make_project(tmp_path_factory.mktemp("swarm"))
    name = f"{PREFIX}sw-{secrets.token_hex(3)}"
    try:
        lab("up", "3")
        lab("load", *IMAGES)
        deploy(project, name, "swarm", MANAGER)
        yield Env(project=project, name=name, url=f"http://{MANAGER_ADDR}:{WEB_PORT}/")
    finally:
        cli(project, "destroy", name, "--yes", "--delete-data")
        lab("down")
        run("docker", "image", "rm", UPDATED, check=False)


def served_by(seen: dict[str, int]) -> set[str]:
    """The nodes that answered: every page's first line ends in ``<node>-<tier>-<slot>``."""
    return {line.split()[-1].split("-")[0] for line in seen}


@retry(stop=stop_after_delay(60), wait=wait_fixed(1), reraise=True)
def tier_running(service: str, count: int, avoid: str | None = None) -> set[str]:
    """Until ``count`` tasks of ``service`` run (none on node ``avoid``); their nodes."""
    lines = manager(
        "service", "ps", service, "--filter", "desired-state=running",
        "--format", "{{.Node}} {{.CurrentState}}",
    ).stdout.splitlines()  # fmt: skip
    running = [line.split()[0] for line in lines if " Running " in f" {line} "]
    assert len(running) == count, lines
    assert avoid not in running, lines
    return set(running)


def test_up_serves_through_replicas_on_two_nodes(swarm: Env) -> None:
    seen, failed = hit(swarm.url, 200)
    assert failed == 0
    assert sum(seen.values()) == 200
    assert len(served_by(seen)) >= 2, seen
    status = json.loads(swarm.run("status", swarm.name, "--json"))
    nodes = {r["node"] for r in status["replicas"] if "-web-replica." in r["replica"]}
    assert len(nodes) == 2, status["replicas"]
    assert nodes <= set(NODES), status["replicas"]


def test_right_after_up_nothing_drifts(swarm: Env) -> None:
    counts = json.loads(swarm.run("preview", swarm.name, "--json"))["counts"]
    assert {k: v for k, v in counts.items() if k != "same" and v} == {}


def test_nodes_pull_only_with_the_registry_credentials(swarm: Env) -> None:
    image = f"{MANAGER_ADDR}:{REGISTRY_PORT}/virtstack/demo:1"
    pulled = run("docker", "-H", node_uri("vst3"), "pull", image, check=False)
    assert pulled.returncode != 0
    assert "no basic auth credentials" in pulled.stderr or "unauthorized" in pulled.stderr
    # Every replica runs the registry's image, pulled by its node with the service's auth.
    images = manager(
        "service", "inspect", f"{swarm.name}-web-replica",
        "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
    ).stdout  # fmt: skip
    assert images.startswith(f"{MANAGER_ADDR}:{REGISTRY_PORT}/virtstack/demo@sha256:")
    # The password is a Swarm secret file, in no service's environment.
    secrets_ = manager("secret", "ls", "--format", "{{.Name}}").stdout.split()
    assert f"{swarm.name}-registry-htpasswd" in secrets_
    spec = manager("service", "inspect", f"{swarm.name}-registry").stdout
    assert "Env" not in json.loads(spec)[0]["Spec"]["TaskTemplate"]["ContainerSpec"]


def test_scaling_under_load_fails_no_request(swarm: Env) -> None:
    service = f"{swarm.name}-web-replica"
    with Load(swarm.url) as load:
        for replicas in (6, 2):
            swarm.set("tiers[0].replicas", replicas)
            swarm.run("up", swarm.name, "--yes")
            tier_running(service, replicas)
        time.sleep(2 * INTERVAL)
    assert load.ok > 50
    assert load.failures == []


def test_rolling_image_update_fails_no_request(swarm: Env) -> None:
    build = subprocess.run(
        ["docker", "build", "-q", "-t", UPDATED, "-"],
        input="FROM virtstack/demo:1\nLABEL org.virtstack.test=update\n",
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert build.stdout.strip()
    lab("load", UPDATED)
    with Load(swarm.url) as load:
        swarm.set("tiers[0].image", UPDATED)
        swarm.run("up", swarm.name, "--yes")
        time.sleep(2 * INTERVAL)
    assert load.ok > 50
    assert load.failures == []
    image = manager(
        "service", "inspect", f"{swarm.name}-web-replica",
        "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
    ).stdout  # fmt: skip
    assert "/virtstack/demo@sha256:" in image


def test_draining_a_node_moves_its_replicas_without_failures(swarm: Env) -> None:
    service = f"{swarm.name}-web-replica"
    on = tier_running(service, 2)
    node = sorted(on - {"vst1"})[0]
    with Load(swarm.url) as load:
        manager("node", "update", "--availability", "drain", node)
        try:
            tier_running(service, 2, avoid=node)
            time.sleep(2 * INTERVAL)
        finally:
            manager("node", "update", "--availability", "active", node)
    assert load.ok > 50
    assert load.failures == []


def test_a_killed_worker_is_survived(swarm: Env) -> None:
    """Goal: 0 failed requests once the load balancer's detection window (two check
    intervals) has passed; the tier back to full strength on the other nodes within 60 s."""
    service = f"{swarm.name}-web-replica"
    manager("service", "update", "--detach", "--force", service)  # spread over all nodes
    on = tier_running(service, 2)
    worker = sorted(on - {"vst1"})[0]
    with Load(swarm.url) as load:
        time.sleep(1)
        killed_at = time.monotonic()
        lab("kill", worker)
        tier_running(service, 2, avoid=worker)
        recovered = time.monotonic() - killed_at
        time.sleep(2 * INTERVAL)
    before = len(load.failures) - load.failures_after(killed_at + 2 * INTERVAL)
    print(f"node {worker} killed: full count after {recovered:.1f} s, {before} failed early")
    lab("start", worker, timeout=300)
    assert recovered < 60
    # Requests kept going through the kill (how many depends on the machine's load).
    assert load.ok > 10
    assert load.failures_after(killed_at + 2 * INTERVAL) == 0, f"{len(load.failures)} failed"


def test_the_same_declaration_serves_the_same_pages_on_one_engine(
    swarm: Env, tmp_path: Path
) -> None:
    project = make_project(tmp_path)
    name = f"{PREFIX}one-{secrets.token_hex(3)}"
    try:
        deploy(project, name, "container", None)
        single, _ = hit(f"http://127.0.0.1:{WEB_PORT}/", 4)
        multi, _ = hit(swarm.url, 4)
        # Page bodies name tier then replica; the tiers answer alike, in the same order.
        assert sum(single.values()) == sum(multi.values()) == 4
        body = httpx.get(f"http://127.0.0.1:{WEB_PORT}/", timeout=10).text.splitlines()
        swarm_body = httpx.get(swarm.url, timeout=10).text.splitlines()
        strip = lambda lines, env: [ln.split()[0].removeprefix(env) for ln in lines if ln]  # noqa: E731
        assert strip(body, name) == strip(swarm_body, swarm.name) == ["-web", "-app"]
    finally:
        cli(project, "destroy", name, "--yes", "--delete-data")
