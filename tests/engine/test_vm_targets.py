"""The VM targets for real: hostos and hypervisor environments on this machine's libvirtd.

Each target deploys the shape of its shipped example (lab, staging): a network, the
guest image, a web tier of two VMs behind an HAProxy VM, and a container host, under
QEMU's software emulation here. Everything is checked from outside the guests, through
the QEMU guest agent: cloud-init's own status, HTTP from the load-balancer VM to the web
VMs, the Docker engine on the container host. Guests are only reached over the
environment's own libvirt network, which the test creates.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.engine.cli_support import cli, make_project, ok
from tests.engine.guest import cloud_init_done, run_in
from tests.engine.harness import PREFIX, PROJECT, remove_leftovers, run, virsh
from virtstack import stackfiles as stackedit
from virtstack.stackfiles import read_config, stack_file

pytestmark = pytest.mark.engine

SHIPPED = {"hostos": "lab", "hypervisor": "staging"}


def free_subnet() -> str:
    """A /24 no route on this machine uses yet, for the environment's libvirt network."""
    routes = run("ip", "-4", "route").stdout.split()
    used = [ipaddress.ip_network(r, strict=False) for r in routes if "/" in r]
    for third in range(200, 250):
        net = ipaddress.ip_network(f"192.168.{third}.0/24")
        if not any(net.overlaps(u) for u in used):
            return str(net)
    raise RuntimeError("no free 192.168.200-249.0/24 subnet")


@dataclass
class VmEnv:
    project: Path
    name: str
    target: str
    boot_seconds: float

    def run(self, *args: str) -> str:
        return ok(self.project, *args).output

    def set(self, path: str, value: object) -> None:
        file = stack_file(self.project, self.name)
        document = stackedit.load_file(file)
        stackedit.set_value(document, stackedit.parse_path(path), value)
        file.write_text(stackedit.dump(document))

    def domains(self) -> list[str]:
        names = virsh("list", "--all", "--name").stdout.split()
        return sorted(n for n in names if n.startswith(f"{self.name}-"))


def vm_config(target: str, name: str) -> dict[str, object]:
    """The shipped example of ``target`` on a network of its own, with a data disk on web."""
    config = read_config(PROJECT, SHIPPED[target])
    network = {"name": "net", "cidr": free_subnet()}
    config["virtstack:networks"] = [network]
    config["virtstack:engine"] = {**config["virtstack:engine"], "pool_path": None}
    config["virtstack:tiers"][0]["volume"] = {"name": "web-data", "path": "/data", "size_gib": 1}
    config.pop("virtstack:vms", None)  # the tools VM adds a boot, not a check
    return config


@pytest.fixture(scope="module", params=sorted(SHIPPED))
def vm_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VmEnv]:
    target: str = request.param
    project = make_project(tmp_path_factory.mktemp(target))
    name = f"{PREFIX}{target[:3]}-{secrets.token_hex(2)}"
    stack_file(project, name).write_text(
        yaml.safe_dump({"config": vm_config(target, name)}, sort_keys=False)
    )
    try:
        started = time.monotonic()
        ok(project, "up", name, "--yes")
        env = VmEnv(project=project, name=name, target=target, boot_seconds=0.0)
        for domain in env.domains():
            cloud_init_done(domain)
        env.boot_seconds = time.monotonic() - started
        print(f"\n{target}: up and cloud-init done in every VM after {env.boot_seconds:.0f} s")
        yield env
    finally:
        cli(project, "destroy", name, "--yes", "--delete-data")
        leftovers = remove_leftovers(name)
        assert leftovers == [], f"destroy left {leftovers}"


def test_every_vm_ran_cloud_init(vm_env: VmEnv) -> None:
    n = vm_env.name
    assert vm_env.domains() == sorted([f"{n}-docker", f"{n}-web-0", f"{n}-web-1", f"{n}-web-lb"])
    for domain in vm_env.domains():
        assert virsh("domstate", domain).stdout.strip() == "running"
        result = run_in(domain, "cat /run/cloud-init/result.json; cat /etc/virtstack/role")
        assert result.exitcode == 0
        assert '"errors": []' in result.stdout, result.stdout
        # The user-data virtstack rendered for this VM is the one that ran.
        assert run_in(domain, "hostname").stdout.strip() == domain


def test_the_load_balancer_vm_spreads_requests_over_the_web_vms(vm_env: VmEnv) -> None:
    lb = f"{vm_env.name}-web-lb"
    result = run_in(lb, "for i in 1 2 3 4 5 6; do busybox wget -q -O- http://127.0.0.1/; done")
    assert result.exitcode == 0, result.stderr
    answers = result.stdout.split()
    assert len(answers) == 6
    assert set(answers) == {f"{vm_env.name}-web-0", f"{vm_env.name}-web-1"}


def test_the_container_host_runs_a_docker_engine(vm_env: VmEnv) -> None:
    result = run_in(f"{vm_env.name}-docker", "docker info --format '{{.ServerVersion}}'")
    assert result.exitcode == 0, result.stderr
    assert result.stdout.strip().startswith("20.10")


def test_after_up_preview_shows_no_changes(vm_env: VmEnv) -> None:
    counts = json.loads(vm_env.run("preview", vm_env.name, "--json"))["counts"]
    assert {k: v for k, v in counts.items() if k != "same" and v} == {}


def test_more_memory_replaces_the_vms_as_documented(vm_env: VmEnv) -> None:
    vm_env.set("tiers[0].memory", 640)
    try:
        plan = json.loads(vm_env.run("preview", vm_env.name, "--json"))
    finally:
        vm_env.set("tiers[0].memory", 512)
    replaced = {c["name"] for g in plan["groups"] for c in g["changes"] if c["op"] == "replace"}
    assert {f"{vm_env.name}-web-replica-0-domain", f"{vm_env.name}-web-replica-1-domain"} <= (
        replaced
    ), plan


def test_new_cloud_config_replaces_the_vm_and_its_data_disk_survives(vm_env: VmEnv) -> None:
    web = f"{vm_env.name}-web-0"
    marker = secrets.token_hex(8)
    wrote = run_in(web, f"echo {marker} > /data/marker && sync && cat /data/marker")
    assert wrote.stdout.strip() == marker
    uuid_before = virsh("domuuid", web).stdout.strip()
    vm_env.set("tiers[0].env", {"GREETING": "hello"})
    out = vm_env.run("up", vm_env.name, "--yes")
    assert "replaced" in out
    uuid_after = virsh("domuuid", web).stdout.strip()
    assert uuid_after != uuid_before
    cloud_init_done(web)
    unit = run_in(web, "systemctl show -p Environment virtstack-*.service").stdout
    assert "GREETING=hello" in unit
    assert run_in(web, "cat /data/marker").stdout.strip() == marker


# -- bad input against the live libvirtd: one clear error, nothing created --------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def refused(project: Path, env: str, config: dict[str, object], code: int) -> list[str]:
    stack_file(project, env).write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    try:
        result = cli(project, "up", env, "--yes")
        assert result.exit_code == code, result.output
        assert not [d for d in virsh("list", "--all", "--name").stdout.split() if env in d]
        assert not [p for p in virsh("pool-list", "--all", "--name").stdout.split() if env in p]
        return result.stderr.splitlines()
    finally:
        leftovers = remove_leftovers(env)
        assert leftovers == [], f"left {leftovers}"


def test_an_unreachable_libvirt_is_refused(project: Path) -> None:
    env = f"{PREFIX}unreach-{secrets.token_hex(2)}"
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"qemu+tcp://127.0.0.1:{port}/system"
    config = vm_config("hypervisor", env)
    config["virtstack:engine"] = {"uri": uri, "domain_type": "qemu"}
    [line] = refused(project, env, config, 1)
    assert line.startswith(f"error: {uri}: libvirt engine not reachable (")


def test_a_pool_path_that_cannot_be_made_is_refused(project: Path, tmp_path: Path) -> None:
    env = f"{PREFIX}pool-{secrets.token_hex(2)}"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = vm_config("hostos", env)
    config["virtstack:engine"] = {"uri": "qemu:///system", "pool_path": f"{blocker}/pools"}
    assert refused(project, env, config, 2) == [
        f"error: virtstack:engine.pool_path: {blocker} is not a directory, "
        f"so pool {blocker}/pools cannot be made"
    ]


def test_more_memory_than_the_host_has_is_refused(project: Path) -> None:
    env = f"{PREFIX}mem-{secrets.token_hex(2)}"
    config = vm_config("hostos", env)
    config["virtstack:container_hosts"][0]["memory"] = 64 * 1024 * 1024  # 64 TiB
    [line] = refused(project, env, config, 2)
    assert line.startswith(
        "error: virtstack:container_hosts[0].memory: 67108864 MiB is more than the host "
        "qemu:///system has ("
    )
