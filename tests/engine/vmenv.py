"""Environments of VMs on this machine's libvirtd (TCG), as the VM engine modules deploy
them: the demo tier's service, a free subnet, and the deployed environment itself."""

from __future__ import annotations

import base64
import ipaddress
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from virtstack_components.libvirt.addresses import NetworkPlan

from tests.engine.cli_support import Deployed, cli, make_project
from tests.engine.harness import PREFIX, PROJECT, remove_leftovers, run, virsh
from tests.support import free_port
from virtstack.spec import parse_spec
from virtstack.stackfiles import environments, read_config, stack_file
from virtstack.targets import addressing

HERE = Path(__file__).resolve().parent
DEMO = base64.b64encode((HERE / "data" / "demo-vm.sh").read_bytes()).decode()
# base64: the script passes systemd's ExecStart, which would expand $ and %, untouched.
DEMO_COMMAND = ["sh", "-c", f"echo {DEMO} | base64 -d > /run/demo.sh && exec sh /run/demo.sh"]
HEALTH = {"path": "/healthz", "interval": 2, "timeout": 1, "retries": 2}

Config = dict[str, object]
"""A stack file's ``config:``."""


def free_subnet() -> str:
    """A /24 no route on this machine uses yet, for the environment's libvirt network."""
    routes = run("ip", "-4", "route").stdout.split()
    used = [ipaddress.ip_network(r, strict=False) for r in routes if "/" in r]
    for third in range(200, 250):
        net = ipaddress.ip_network(f"192.168.{third}.0/24")
        if not any(net.overlaps(u) for u in used):
            return str(net)
    raise RuntimeError("no free 192.168.200-249.0/24 subnet")


def tier(name: str, replicas: int, upstream: str | None = None) -> dict[str, object]:
    """A tier of the demo service (its answer: tier and replica, then its upstream's)."""
    spec: dict[str, object] = {
        "name": name,
        "image": "virtstack/demo:1",
        "command": DEMO_COMMAND,
        "replicas": replicas,
        "health": HEALTH,
        "memory": 384,
    }
    return spec | ({"upstream": upstream} if upstream else {})


@dataclass
class VmEnv(Deployed):
    """A deployed hostos environment, one of its tiers published on ``port``."""

    port: int

    def plan(self) -> NetworkPlan:
        """The addresses planned for the environment's VMs."""
        return addressing.plans(parse_spec(read_config(self.project, self.name)))[0]["net"]

    def domains(self) -> list[str]:
        names = virsh("list", "--all", "--name").stdout.split()
        return sorted(n for n in names if n.startswith(f"{self.name}-"))

    def ssh(self, machine: str, *command: str) -> subprocess.CompletedProcess[str]:
        """``virtstack ssh`` as a user runs it (it execs ssh: a process of its own)."""
        argv = [str(PROJECT / ".venv" / "bin" / "virtstack"), "--project", str(self.project)]
        return subprocess.run(
            [*argv, "ssh", self.name, machine, "--", *command],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def get(self, path: str = "/") -> str | None:
        """One request through the published port; None when it failed."""
        try:
            url = f"http://127.0.0.1:{self.port}{path}"
            with urllib.request.urlopen(url, timeout=10) as response:
                return str(response.read().decode())
        except OSError:
            return None


_Env = TypeVar("_Env", bound=VmEnv)


def deployed(
    tmp_path_factory: pytest.TempPathFactory,
    label: str,
    shape: Callable[[int], Config],
    kind: type[_Env],
) -> Iterator[_Env]:
    """A module's environment, a ``kind``: ``shape(port)`` (a tier published on that free
    port) deployed by ``up``; then it and every other environment the tests made in its
    project (a clone, say) destroyed with their data, leaving nothing behind."""
    project = make_project(tmp_path_factory.mktemp(label))
    env = kind(project=project, name=f"{PREFIX}{label}-{secrets.token_hex(2)}", port=free_port())
    config = shape(env.port)
    stack_file(project, env.name).write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    try:
        started = time.monotonic()
        out = env.run("up", env.name, "--yes")
        print(f"\n{label} on VMs: up returned after {time.monotonic() - started:.0f} s")
        assert "machines ready" in out, out
        yield env
    finally:
        for made in environments(project):
            cli(project, "destroy", made, "--yes", "--delete-data")
        leftovers = remove_leftovers(env.name)  # a clone's too: its name starts alike
        assert leftovers == [], f"destroy left {leftovers}"
