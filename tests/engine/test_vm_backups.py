"""Backups of a VM environment for real: libvirt's backup job, the guest agent, restic.

The smallest hostos environment with a data disk: one stateful tier (one VM on a data
disk, behind its load-balancer VM, published on a loopback port). The tests run in order
on what the previous left: a live backup while the VM keeps running, a clone restored from
it beside the running source (then destroyed with its data), then the disaster drill
(destroy with its data, restore, the same bytes back on the data disk).
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.engine import vmenv
from tests.engine.guest import run_in
from tests.engine.harness import LIBVIRT_URI, remove_leftovers, virsh
from tests.engine.vmenv import free_subnet, tier
from tests.support import free_port
from virtstack import netranges
from virtstack.engines import guestagent

pytestmark = pytest.mark.engine

BLOB_MIB = 64


@dataclass
class VmEnv(vmenv.VmEnv):
    state: dict[str, str] = field(default_factory=dict)
    """What a test leaves for the next: the data's checksum, the backup's id."""

    @property
    def db(self) -> str:
        return f"{self.name}-db-0"

    @property
    def clone(self) -> str:
        return f"{self.name}c"

    def checksum(self, domain: str | None = None) -> str:
        done = run_in(domain or self.db, "sha256sum /data/blob")
        assert done.exitcode == 0, done.stderr
        return done.stdout.split()[0]


def get(port: int) -> str:
    """The first line of what the tier published on ``port`` answers: its name and host."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
        return str(response.read().decode()).splitlines()[0]


def vm_config(size_gib: int = 1, **db: object) -> dict[str, object]:
    """The smallest hostos environment with a data disk (``/data`` of tier db's VM)."""
    volume = {"name": "db-data", "path": "/data", "size_gib": size_gib}
    return {
        "virtstack:target": "hostos",
        "virtstack:engine": {"uri": LIBVIRT_URI},
        "virtstack:networks": [{"name": "net", "cidr": free_subnet()}],
        "virtstack:tiers": [tier("db", 1) | {"stateful": True, "volume": volume} | db],
    }


@pytest.fixture(scope="module")
def vm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmEnv]:
    yield from vmenv.deployed(tmp_path_factory, "vmbk", lambda port: vm_config(publish=port), VmEnv)


def uptime(domain: str) -> float:
    return float(run_in(domain, "cat /proc/uptime").stdout.split()[0])


class StateWatch(threading.Thread):
    """``virsh domstate`` of a domain, asked again and again until stopped."""

    def __init__(self, domain: str) -> None:
        super().__init__(daemon=True)
        self.domain, self.seen, self.done = domain, set[str](), threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.seen.add(virsh("domstate", self.domain, check=False).stdout.strip())
            time.sleep(0.5)


def test_a_live_backup_keeps_the_vm_running_and_leaves_it_thawed(vm_env: VmEnv) -> None:
    db = vm_env.db
    wrote = run_in(db, f"head -c {BLOB_MIB}M /dev/urandom > /data/blob && sync")
    assert wrote.exitcode == 0, wrote.stderr
    vm_env.state["checksum"] = vm_env.checksum()
    domain_id, before = virsh("domid", db).stdout.strip(), uptime(db)
    watch = StateWatch(db)
    watch.start()
    started = time.monotonic()
    try:
        out = vm_env.run("backup", vm_env.name, "--include-root", "--tag", "drill")
    finally:
        watch.done.set()
        watch.join()
    took = time.monotonic() - started
    print(f"\nlive backup with root disks: {took:.0f} s; {out.splitlines()[-1]}")
    assert watch.seen == {"running"}, watch.seen
    assert virsh("domid", db).stdout.strip() == domain_id  # the same QEMU process
    assert uptime(db) >= before + took * 0.5  # no reboot (the guest clock runs slow under TCG)
    assert guestagent.agent(LIBVIRT_URI, db, "guest-fsfreeze-status") == "thawed"
    assert run_in(db, "echo after > /data/after && sync").exitcode == 0  # writable again
    [found] = json.loads(vm_env.run("backups", vm_env.name, "--json"))
    assert found["tag"] == "drill"
    data = f"{vm_env.name}_db-data_0.qcow2"
    assert data in found["files"]
    assert any(f.startswith(f"{db}-root-") for f in found["files"]), found["files"]
    # No backup scratch image is left beside the disks.
    for pool in (f"{vm_env.name}-data", f"{vm_env.name}-pool"):
        assert ".backup" not in virsh("vol-list", pool).stdout


def ranges(env: str) -> list[ipaddress.IPv4Network]:
    return netranges.xml_ranges(virsh("net-dumpxml", f"{env}-net").stdout)


def inventory(env: str) -> dict[str, str]:
    """What libvirt holds of ``env``: domains (with their ids), volumes (with their
    capacities) and networks. Not the volumes' allocation: a running guest's writes (its
    journal) change that on their own."""
    held = {}
    for domain in virsh("list", "--all", "--name").stdout.split():
        if domain.startswith(f"{env}-"):
            held[domain] = virsh("domid", domain).stdout.strip()
    for pool in (f"{env}-data", f"{env}-pool"):
        for volume in virsh("vol-list", pool).stdout.splitlines()[2:]:
            if volume.split():
                name = volume.split()[0]
                info = virsh("vol-info", "--bytes", "--pool", pool, name).stdout
                held[name] = "\n".join(
                    line for line in info.splitlines() if not line.startswith("Allocation:")
                )
    held["net"] = virsh("net-dumpxml", f"{env}-net").stdout
    return held


def test_a_clone_serves_beside_the_running_source_on_networks_of_its_own(vm_env: VmEnv) -> None:
    assert vm_env.state, "needs the backup of the first test"
    clone, port = vm_env.clone, free_port()
    started = time.monotonic()
    out = vm_env.run("restore", vm_env.name, "--into", clone, "--publish", f"db={port}", "--yes")
    print(f"\nrestore into a clone and its up: {time.monotonic() - started:.0f} s")
    assert f"restoring {clone}_db-data_0" in out
    clone_db = f"{clone}-db-0"
    assert vm_env.checksum(clone_db) == vm_env.state["checksum"]  # the backup's bytes
    assert run_in(clone_db, "test ! -e /data/after").exitcode == 0
    # Side by side, each through its own published port and load balancer.
    assert get(port) == f"{clone}-db {clone_db}"
    assert get(vm_env.port) == f"{vm_env.name}-db {vm_env.db}"
    source, cloned = ranges(vm_env.name), ranges(clone)
    assert source
    assert cloned
    assert not any(a.overlaps(b) for a in source for b in cloned), (source, cloned)
    assert run_in(clone_db, "echo clone > /data/clone-only && sync").exitcode == 0
    assert run_in(vm_env.db, "test ! -e /data/clone-only").exitcode == 0
    before = inventory(vm_env.name)
    vm_env.run("destroy", clone, "--yes", "--delete-data")
    assert remove_leftovers(clone) == []
    assert inventory(vm_env.name) == before
    assert vm_env.checksum() == vm_env.state["checksum"]
    assert run_in(vm_env.db, "cat /data/after").stdout.strip() == "after"
    assert get(vm_env.port) == f"{vm_env.name}-db {vm_env.db}"


def test_after_destroy_with_its_data_restore_brings_the_same_bytes_back(vm_env: VmEnv) -> None:
    assert vm_env.state, "needs the backup of the test before"
    vm_env.run("destroy", vm_env.name, "--yes", "--delete-data")
    assert f"{vm_env.name}-data" not in virsh("pool-list", "--all", "--name").stdout.split()
    started = time.monotonic()
    out = vm_env.run("restore", vm_env.name, "--yes")
    print(f"\nrestore and up: {time.monotonic() - started:.0f} s")
    assert f"restoring {vm_env.name}_db-data_0" in out
    assert "not restored" in out  # the root disks: VMs are made anew
    assert vm_env.checksum() == vm_env.state["checksum"]
    assert run_in(vm_env.db, "test ! -e /data/after").exitcode == 0  # written after the backup
    unit = f"virtstack-{vm_env.name}-db"
    assert run_in(vm_env.db, f"systemctl is-active {unit}").stdout.strip() == "active"
