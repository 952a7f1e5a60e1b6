"""VMs that come and go, on this machine's libvirtd (TCG): a tier scaled 2 -> 3 -> 2 behind
its load balancer VM while a client keeps asking, and plain machines added to a running
environment (one booting its own bootloader from a pool volume, one whose cloud-init fails).

One environment is shared by the module: web (two VMs) behind an HAProxy VM, published on a
loopback port of this host, and nothing else (each VM booted under TCG costs a minute or
two). The dev shape's tiers on VMs are in test_vm_targets.
"""

from __future__ import annotations

import collections
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import Result

from tests.engine.cli_support import cli
from tests.engine.harness import LIBVIRT_URI, PROJECT, run, virsh
from tests.engine.vmenv import Config, VmEnv, deployed, free_subnet, tier
from virtstack.naming import POOL_ROOT

pytestmark = pytest.mark.engine


def web_on_vms(port: int) -> Config:
    """The web tier alone (two VMs behind their load balancer VM), without a registry."""
    return {
        "virtstack:target": "hostos",
        "virtstack:engine": {"uri": "qemu:///system"},
        "virtstack:networks": [{"name": "net", "cidr": free_subnet()}],
        "virtstack:registry": {"enabled": False},
        "virtstack:tiers": [tier("web", 2) | {"publish": port}],
    }


@pytest.fixture(scope="module")
def vm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmEnv]:
    yield from deployed(tmp_path_factory, "web", web_on_vms, VmEnv)


def test_scaling_web_2_3_2_leaves_the_lb_vm_alone_and_no_request_fails(vm_env: VmEnv) -> None:
    """The web LB lists every slot: the third replica joins and leaves through its health
    check, while a client keeps sending requests through the published port."""
    n, lb, third = vm_env.name, f"{vm_env.name}-web-lb", f"{vm_env.name}-web-2"
    uuid = virsh("domuuid", lb).stdout.strip()
    served: collections.Counter[str] = collections.Counter()
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            answer = vm_env.get()
            whole = answer is not None and len(answer.split()) == 2  # tier and replica
            served[answer.split()[1] if answer and whole else "failed"] += 1

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        vm_env.run("scale", n, "web", "3")
        deadline = time.monotonic() + 60
        while not served[third] and time.monotonic() < deadline:
            time.sleep(1)
        by_third = served[third]
        vm_env.run("scale", n, "web", "2")
        time.sleep(5)  # requests after the third replica is gone
    finally:
        stop.set()
        thread.join(timeout=30)
    total = sum(served.values())
    print(f"\nscaling web 2 -> 3 -> 2: {served['failed']} of {total} requests failed ({served})")
    assert virsh("domuuid", lb).stdout.strip() == uuid
    assert by_third > 0, served
    assert served["failed"] == 0, served
    assert third not in vm_env.domains()
    found = json.loads(vm_env.run("status", n, "--json"))
    [web] = [t for t in found["health"] if t["tier"] == "web"]
    assert sorted(s["name"] for s in web["servers"]) == [f"{n}-web-0", f"{n}-web-1"]
    assert third not in {r["replica"] for r in found["replicas"]}


@pytest.fixture(scope="module")
def image_volume(vm_env: VmEnv) -> Iterator[dict[str, str]]:
    """A second guest image as a user keeps a cloud image: the bootable variant
    (partitioned, SYSLINUX) that images/guest/bootable.sh makes from build.sh's image,
    uploaded into a pool of its own beside the environment's."""
    built = run("bash", str(PROJECT / "images" / "guest" / "bootable.sh"), timeout=1800)
    disk = Path(built.stdout.splitlines()[-1]) / "disk.qcow2"
    size = json.loads(run("qemu-img", "info", "--output=json", str(disk)).stdout)["virtual-size"]
    pool, volume = f"{vm_env.name}-images", "bootable.qcow2"
    path = f"{POOL_ROOT}/{pool}"
    try:
        virsh("pool-create-as", pool, "dir", "--target", path, "--build")
        virsh("vol-create-as", pool, volume, str(size), "--format", "qcow2")
        upload = ("vol-upload", "--pool", pool, volume, str(disk))
        run("virsh", "-c", LIBVIRT_URI, *upload, timeout=600)
        yield {"pool": pool, "volume": volume}
    finally:
        virsh("vol-delete", "--pool", pool, volume, check=False)
        virsh("pool-destroy", pool, check=False)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def extra_vms(vm_env: VmEnv, image_volume: dict[str, str]) -> Result:
    """Two plain VMs added in one up: one from the pool volume (booting from its own
    bootloader), one whose cloud-config fails (so the up fails, once both have booted)."""
    broken = {"runcmd": [["sh", "-c", "echo virtstack-broken-step >&2; exit 3"]]}
    vm_env.set(
        "vms",
        [
            {"name": "bootable", "memory": 384, "image": image_volume},
            {"name": "broken", "memory": 384, "cloud_init": broken},
        ],
    )
    return cli(vm_env.project, "up", vm_env.name, "--yes")


def test_a_vm_whose_cloud_init_fails_makes_up_fail_naming_it(
    vm_env: VmEnv, extra_vms: Result
) -> None:
    assert extra_vms.exit_code == 1, extra_vms.output
    assert f"{vm_env.name}-broken: cloud-init error" in extra_vms.stderr, extra_vms.stderr
    assert f"{vm_env.name}-bootable" not in extra_vms.stderr, extra_vms.stderr


def test_a_vm_from_a_pool_volume_boots_its_own_bootloader_and_is_reachable_by_ssh(
    vm_env: VmEnv, image_volume: dict[str, str], extra_vms: Result
) -> None:
    vm = f"{vm_env.name}-bootable"
    xml = virsh("dumpxml", vm).stdout
    assert "<kernel>" not in xml, xml
    assert "<boot dev='hd'/>" in xml, xml
    # The root disk is the environment's copy-on-write layer on the pool volume.
    source = virsh("vol-path", "--pool", image_volume["pool"], image_volume["volume"]).stdout
    [root] = [d for d in virsh("domblklist", vm).stdout.split() if "-root-" in d]
    layer = virsh("vol-dumpxml", "--pool", f"{vm_env.name}-pool", root).stdout
    assert f"<path>{source.strip()}</path>" in layer, layer
    # SYSLINUX passes BOOT_IMAGE; a direct kernel boot has none.
    cmdline = vm_env.ssh(vm, "cat", "/proc/cmdline")
    assert cmdline.returncode == 0, cmdline.stderr
    assert "BOOT_IMAGE=/vmlinuz root=LABEL=virtstack-root" in cmdline.stdout, cmdline.stdout
    assert vm_env.ssh(vm, "findmnt", "-no", "SOURCE", "/").stdout.strip() == "/dev/vda2"
    assert vm_env.ssh(vm, "cloud-init", "status").stdout.strip() == "status: done"
    # The other VMs still boot the built guest directly.
    assert "<kernel>" in virsh("dumpxml", f"{vm_env.name}-web-0").stdout
    # Booting from disk is what the provider reads back: nothing to change.
    vm_env.run("refresh", vm_env.name)
    plan = json.loads(vm_env.run("preview", vm_env.name, "--json"))
    changes = [c for g in plan["groups"] for c in g["changes"] if "bootable" in json.dumps([g, c])]
    assert changes == [], changes
