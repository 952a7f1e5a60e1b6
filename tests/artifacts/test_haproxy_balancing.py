"""A real HAProxy with a rendered config, in front of three real HTTP servers on loopback."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from virtstack_components import names
from virtstack_components.tier import HealthCheck, TierArgs, haproxy_config

from tests.support import free_port, hit, stop, wait_until_serving

PROJECT = Path(__file__).resolve().parents[2]
HEALTH = HealthCheck(path="/healthz", interval=1, timeout=1, retries=2)
# Three replicas on one port, told apart by their loopback address, as VMs would be.
ADDRESSES = {"replica-0": "127.0.0.2", "replica-1": "127.0.0.3", "replica-2": "127.0.0.4"}


@dataclass
class Replicas:
    port: int
    processes: dict[str, subprocess.Popen[bytes]]


@pytest.fixture
def replicas() -> Iterator[Replicas]:
    port = free_port()
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "tests.artifacts.backend", address, str(port), name],
            cwd=PROJECT,
        )
        for name, address in ADDRESSES.items()
    }
    try:
        for address in ADDRESSES.values():
            wait_until_serving(f"http://{address}:{port}/healthz")
        yield Replicas(port=port, processes=processes)
    finally:
        for process in processes.values():
            stop(process)


@dataclass
class Balancer:
    url: str
    stats: str
    admin: Path
    """HAProxy's runtime API socket."""

    def states(self) -> dict[str, str]:
        """Each server's state as HAProxy's own checks see it (UP, DOWN, ...)."""
        rows = csv.DictReader(httpx.get(self.stats, timeout=5).text.lstrip("# ").splitlines())
        # "UP 1/2" is UP while checks are still counting: the first word is the state.
        return {r["svname"]: r["status"].split()[0] for r in rows if r["svname"] in ADDRESSES}


@pytest.fixture
def balancer(replicas: Replicas, require, tmp_path: Path) -> Iterator[Balancer]:
    port, stats = free_port(), free_port()
    config = haproxy_config(
        "test-web",
        TierArgs(port=replicas.port, health=HEALTH),
        servers=list(ADDRESSES.items()),
        listen_port=port,
        stats_port=stats,
    )
    # Listen on loopback only: the test talks to nothing else.
    config = config.replace(f"bind :{port}", f"bind 127.0.0.1:{port}")
    config = config.replace(f"bind :{stats}", f"bind 127.0.0.1:{stats}")
    admin = tmp_path / "admin.sock"
    config = config.replace(names.ADMIN_SOCKET, str(admin))
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    process = subprocess.Popen([require("haproxy"), "-db", "-f", str(path)])
    try:
        wait_until_serving(f"http://127.0.0.1:{stats}/healthz")
        yield Balancer(
            url=f"http://127.0.0.1:{port}/",
            stats=f"http://127.0.0.1:{stats}/stats;csv",
            admin=admin,
        )
    finally:
        stop(process)


def test_traffic_reaches_every_replica_and_survives_a_killed_one(
    replicas: Replicas, balancer: Balancer
):
    assert balancer.states() == dict.fromkeys(ADDRESSES, "UP")
    seen, failed = hit(balancer.url, 150)
    assert failed == 0
    assert set(seen) == set(ADDRESSES)
    assert min(seen.values()) >= 40  # round robin spreads the load evenly

    stop(replicas.processes["replica-1"])
    # Two check intervals (fall 2 at inter 1s) take the dead replica out of rotation.
    time.sleep(HEALTH.interval * HEALTH.retries + 1)
    assert balancer.states() == {"replica-0": "UP", "replica-1": "DOWN", "replica-2": "UP"}
    seen, failed = hit(balancer.url, 150)
    assert failed == 0
    assert set(seen) == {"replica-0", "replica-2"}


def rotate(balancer: Balancer, state: str, *servers: str) -> subprocess.CompletedProcess[str]:
    """The script scaling runs inside a load-balancer VM, as it runs it (``python3 -c``)."""
    script = (PROJECT / "virtstack" / "engines" / "haproxy_rotation.py").read_text()
    backend = names.backend_name("test-web")
    argv = [sys.executable, "-c", script, str(balancer.admin), backend, state, *servers]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_a_drained_replica_leaves_rotation_until_it_is_made_ready(
    replicas: Replicas, balancer: Balancer
):
    assert balancer.states() == dict.fromkeys(ADDRESSES, "UP")
    drained = rotate(balancer, "maint", "replica-1")
    assert drained.returncode == 0, drained.stderr
    assert balancer.states()["replica-1"] == "MAINT"
    seen, failed = hit(balancer.url, 60)
    assert failed == 0
    assert set(seen) == {"replica-0", "replica-2"}
    assert rotate(balancer, "ready", "replica-1").returncode == 0
    time.sleep(HEALTH.interval * 2 + 1)  # rise 2
    assert balancer.states()["replica-1"] == "UP"
    # A server HAProxy does not list is refused, naming it.
    unknown = rotate(balancer, "maint", "replica-9")
    assert unknown.returncode != 0
    assert "replica-9" in unknown.stderr
