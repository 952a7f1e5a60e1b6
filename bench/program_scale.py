"""How long the Pulumi program takes to build 200 tiers under mocks (no engine, no CLI).

Measures the program itself, in a fresh interpreter: its imports, reading and checking the
spec, and declaring every resource (a chain of 200 container tiers behind a registry).
The goal is under 5 s.

    .venv/bin/python -m bench.program_scale [--tiers N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

TARGET_SECONDS = 5.0

_CHILD = """
import json, sys, time
start = time.perf_counter()
import pulumi
from virtstack import program

program.tune_collector()  # as stacks/__main__.py does
class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        state = dict(args.inputs)
        if args.typ == "docker:index/registryImage:RegistryImage":
            state["sha256Digest"] = "sha256:" + "ab" * 32
        elif args.typ == "docker:index/remoteImage:RemoteImage":
            state["repoDigest"] = state["name"]
        return (args.name + "-id", state)
    def call(self, args):
        return {"id": "sha256:" + "cd" * 32, "name": args.args.get("name", ""), "repoDigest": ""}

pulumi.runtime.set_mocks(Mocks(), project="virtstack", stack="bench", preview=False)
config = json.loads(sys.argv[1])
pulumi.runtime.set_all_config(
    {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()},
    ["virtstack:registry_password"],
)
imported = time.perf_counter()
pulumi.runtime.test(program.main)()
done = time.perf_counter()
print(json.dumps({"imports": imported - start, "program": done - imported}))
"""


def config(tiers: int) -> dict[str, Any]:
    """A container environment: a registry and ``tiers`` tiers, each feeding the next."""
    return {
        "virtstack:target": "container",
        "virtstack:registry": {"enabled": True, "auth": True, "username": "virtstack"},
        "virtstack:registry_password": "bench-password",
        "virtstack:tiers": [
            {
                "name": f"t{i}",
                "image": "virtstack/demo:1",
                "replicas": 2,
                "port": 8080,
                **({"upstream": f"t{i + 1}"} if i + 1 < tiers else {}),
                **({"publish": 8080} if i == 0 else {}),
            }
            for i in range(tiers)
        ],
    }


def measure(tiers: int) -> dict[str, float]:
    """Seconds to import, to run the program, the whole child process, and its CPU time
    (which a loaded machine inflates less than the wall clock)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(config(tiers))],
        capture_output=True,
        text=True,
        check=True,
    )
    total = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    parts: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return parts | {"total": total, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", type=int, default=200)
    args = parser.parse_args()
    found = measure(args.tiers)
    verdict = "within" if found["total"] < TARGET_SECONDS else "OVER"
    print(
        f"{args.tiers} tiers under mocks: {found['total']:.2f} s (CPU {found['cpu']:.2f} s) "
        f"(imports {found['imports']:.2f} s, program {found['program']:.2f} s); "
        f"{verdict} the {TARGET_SECONDS:.0f} s budget"
    )


if __name__ == "__main__":
    main()
