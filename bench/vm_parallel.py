"""Parallel VM creation: a four-VM environment against one VM, on this libvirtd, in one run.

The yardstick is one VM's own boot: the guest's uptime when cloud-init finished (its final
message, ``VIRTSTACK-CLOUD-INIT-DONE <name> after <s> seconds``), in an environment of
one plain VM. Against it: the wall time of ``virtstack up`` of an environment of four plain
VMs, from an empty host (pool, network, image upload included) to cloud-init done in all
four, which ``up`` now waits for. The goal is a ratio of at most 1.5.

Under TCG every vCPU is emulated on a host core, so the CPU seconds the four guests spent
to reach cloud-init done, spread over this host's cores, bound how fast they can all be
done however well ``up`` runs them side by side: that floor is printed beside the ratio.

    .venv/bin/python -m bench.vm_parallel
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from tests.engine.cli_support import cli, make_project, ok
from tests.engine.guest import run_in
from tests.engine.harness import PREFIX, remove_leftovers
from virtstack.stackfiles import stack_file

GOAL = 1.5
_DONE = re.compile(r"VIRTSTACK-CLOUD-INIT-DONE (\S+) after ([0-9.]+) seconds")


def _subnet() -> str:
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    used = [ipaddress.ip_network(r, strict=False) for r in routes.split() if "/" in r]
    for third in range(200, 250):
        net = ipaddress.ip_network(f"192.168.{third}.0/24")
        if not any(net.overlaps(u) for u in used):
            return str(net)
    raise RuntimeError("no free 192.168.200-249.0/24 subnet")


def _config(count: int) -> dict[str, object]:
    return {
        "virtstack:target": "hostos",
        "virtstack:engine": {"uri": "qemu:///system"},
        "virtstack:networks": [{"name": "net", "cidr": _subnet()}],
        "virtstack:vms": [{"name": "vm", "count": count, "memory": 512, "disk": 4}],
    }


def _boot_seconds(domain: str) -> float:
    """The guest's uptime when cloud-init finished, from its final message."""
    log = run_in(domain, "grep VIRTSTACK-CLOUD-INIT-DONE /var/log/cloud-init-output.log").stdout
    found = _DONE.search(log)
    if found is None:
        raise RuntimeError(f"{domain}: no final message in cloud-init-output.log: {log!r}")
    return float(found.group(2))


def _cpu_seconds(domain: str) -> float:
    """CPU seconds the domain's QEMU process (every thread) has used so far."""
    stats = subprocess.run(
        ["virsh", "-c", "qemu:///system", "domstats", "--cpu-total", domain],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = re.search(r"cpu\.time=(\d+)", stats)
    if found is None:
        raise RuntimeError(f"{domain}: no cpu.time in {stats!r}")
    return int(found.group(1)) / 1e9


def _deploy(project: Path, count: int) -> tuple[str, float, list[float], list[float]]:
    """``up`` an environment of ``count`` VMs; its name, up seconds, and each VM's boot
    and the CPU seconds it used (read when ``up`` returned: cloud-init just done)."""
    env = f"{PREFIX}bench{count}-{secrets.token_hex(2)}"
    stack_file(project, env).write_text(yaml.safe_dump({"config": _config(count)}, sort_keys=False))
    started = time.monotonic()
    ok(project, "up", env, "--yes")
    took = time.monotonic() - started
    names = [f"{env}-vm"] if count == 1 else [f"{env}-vm-{i}" for i in range(count)]
    cpu = [_cpu_seconds(n) for n in names]
    return env, took, [_boot_seconds(n) for n in names], cpu


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="virtstack-bench-") as tmp:
        project = make_project(Path(tmp))
        made: list[str] = []
        try:
            one, one_up, [one_boot], [one_cpu] = _deploy(project, 1)
            made.append(one)
            cli(project, "destroy", one, "--yes")
            four, four_up, boots, cpus = _deploy(project, 4)
            made.append(four)
        finally:
            for env in made:
                cli(project, "destroy", env, "--yes", "--delete-data")
                remove_leftovers(env)
    ratio = four_up / one_boot
    print(
        f"one VM: boot to cloud-init done {one_boot:.0f} s, {one_cpu:.0f} CPU s "
        f"(its environment's up: {one_up:.0f} s)"
    )
    print(f"four VMs: up to cloud-init done in all {four_up:.0f} s; each booted in "
          + ", ".join(f"{b:.0f}" for b in boots) + " s")  # fmt: skip
    verdict = "meets" if ratio <= GOAL else "misses"
    print(f"ratio four-VM up / one VM boot: {ratio:.2f} ({verdict} the goal of {GOAL})")
    # The same fixed costs (pool, network, image upload) on both sides: parallelism alone.
    print(f"ratio four-VM up / one-VM up: {four_up / one_up:.2f}")
    cores = os.cpu_count() or 1
    floor = sum(cpus) / cores
    print(
        f"CPU: the four guests used {sum(cpus):.0f} CPU s (" + ", ".join(f"{c:.0f}" for c in cpus)
        + f"); on {cores} cores that takes at least {floor:.0f} s, a floor ratio of "
        f"{floor / one_boot:.2f} against one VM's boot"
    )  # fmt: skip


if __name__ == "__main__":
    main()
