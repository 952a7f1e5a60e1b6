"""The VM targets for real: web -> app -> db on hostos, on this machine's libvirtd (TCG).

One environment is shared by the module: web (two VMs) -> app (one VM) -> db (one VM, on a
data disk), each tier behind an HAProxy VM, web published on a loopback port of this host.
Everything is checked from outside the guests: HTTP through the published port, ``virtstack
ssh`` into every VM, the QEMU guest agent. hostos and hypervisor deploy through the same
code (vm_target); the hypervisor differs in its default domain type (kvm, which this
machine cannot run) and its remote engine, so it is covered where it differs: the refusals
at the end. VMs that come and go (a tier scaled, machines added) are in test_vm_machines,
on an environment of their own: each module stays within its quarter hour.
"""

from __future__ import annotations

import collections
import json
import secrets
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509

from tests.engine.cli_support import cli, make_project
from tests.engine.guest import run_in
from tests.engine.harness import LIBVIRT_URI, PREFIX, PROJECT, remove_leftovers, virsh
from tests.engine.vmenv import Config, VmEnv, deployed, free_subnet, tier
from tests.support import free_port
from virtstack import pki, tlsfiles
from virtstack.environment import StackRef
from virtstack.runner import PulumiRunner
from virtstack.stackfiles import read_config, stack_file

pytestmark = pytest.mark.engine

REQUESTS = 50
"""Requests sent through the published port (each crosses three TCG guests: about 0.5 s)."""


def dev_on_vms(port: int) -> Config:
    """web -> app -> db of the dev shape as a hostos environment on a network of its own.

    Without dev's registry. Every VM's address is planned before it boots, so the tiers'
    VMs are made side by side.
    """
    web = tier("web", 2, "app") | {"publish": port}
    app = tier("app", 1, "db")
    db = tier("db", 1) | {
        "stateful": True,
        "volume": {"name": "db-data", "path": "/data", "size_gib": 1},
    }
    return {
        "virtstack:target": "hostos",
        "virtstack:engine": {"uri": "qemu:///system"},
        "virtstack:networks": [{"name": "net", "cidr": free_subnet()}],
        "virtstack:registry": {"enabled": True, "size_gib": 1},
        "virtstack:tiers": [web, app, db],
    }


@pytest.fixture(scope="module")
def vm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmEnv]:
    yield from deployed(tmp_path_factory, "dev", dev_on_vms, VmEnv)


def test_up_returns_when_cloud_init_is_done_and_ssh_reaches_every_vm(vm_env: VmEnv) -> None:
    n = vm_env.name
    vms = ["registry", "web-0", "web-1", "web-lb", "app-0", "app-lb", "db-0", "db-lb"]
    assert vm_env.domains() == sorted(f"{n}-{vm}" for vm in vms)
    for domain in vm_env.domains():
        done = vm_env.ssh(domain, "cloud-init", "status")
        assert done.returncode == 0, f"{domain}: {done.stderr}"
        assert done.stdout.strip() == "status: done", done.stdout
    # The key is the environment's own (this machine's root has none in ~/.ssh).
    key = vm_env.project / ".virtstack" / "ssh" / n / "id_ed25519"
    assert key.stat().st_mode & 0o777 == 0o600


def test_the_published_port_reaches_both_web_vms_and_each_answer_went_on_to_db(
    vm_env: VmEnv,
) -> None:
    n = vm_env.name
    answers = [vm_env.get() for _ in range(REQUESTS)]
    failed = sum(a is None for a in answers)
    assert failed == 0, f"{failed} of {REQUESTS} requests failed"
    chains = collections.Counter(tuple(ln.split()[1] for ln in a.splitlines()) for a in answers)  # type: ignore[union-attr]
    webs = {chain[0] for chain in chains}
    assert webs == {f"{n}-web-0", f"{n}-web-1"}, chains
    assert {chain[1:] for chain in chains} == {(f"{n}-app-0", f"{n}-db-0")}, chains


def test_a_web_vm_reaches_the_app_lb_and_nothing_of_db(vm_env: VmEnv) -> None:
    """Each tier accepts traffic only from the tier in front of it: from inside a web VM,
    app's load balancer answers (and through it db), app's replica and all of db do not."""
    n, plan = vm_env.name, vm_env.plan()
    web, app, db = plan.tiers
    # Each VM has its planned address: the DHCP reservation made before it booted.
    for name, address in [("web-0", web.slots[0]), ("app-lb", app.lb), ("db-0", db.slots[0])]:
        shown = run_in(f"{n}-{name}", "ip -4 -o addr show scope global").stdout
        assert f" {address}/" in shown, f"{name}: {shown}"

    def get(url: str) -> str:
        # timeout(1), not wget's -T: the guest's busybox wget segfaults with -T.
        done = run_in(f"{n}-web-0", f"timeout 5 busybox wget -q -O - {url} || echo unreachable")
        return done.stdout.strip()

    assert get(f"http://{app.lb}:80/").split() == [f"{n}-app", f"{n}-app-0", f"{n}-db", f"{n}-db-0"]
    for url in (
        f"http://{app.slots[0]}:8080/",
        f"http://{db.lb}:80/",
        f"http://{db.slots[0]}:8080/",
    ):
        assert get(url) == "unreachable", url


def test_logs_merge_the_web_vms_journals_with_every_request_prefixed(vm_env: VmEnv) -> None:
    web = [f"{vm_env.name}-web-0", f"{vm_env.name}-web-1"]
    width = max(map(len, web))
    lines = vm_env.run("logs", vm_env.name, "web").splitlines()
    assert lines
    assert all(line.startswith(tuple(f"{r:<{width}} | " for r in web)) for line in lines), lines
    # httpd logs each request: those sent through the published port, and nothing else
    # asked for / (the load balancer checks /healthz).
    requests = {r: sum(ln.endswith(": url:/") for ln in lines if ln.startswith(r)) for r in web}
    assert all(requests.values()), requests
    assert sum(requests.values()) == REQUESTS, requests
    only = vm_env.run("logs", vm_env.name, web[1], "--timestamps", "--since", "30m").splitlines()
    assert only
    assert all(line.startswith(f"{web[1]} | 20") for line in only), only[:5]


def test_status_shows_every_vm_replica_as_its_lb_sees_it_with_restarts_and_since(
    vm_env: VmEnv,
) -> None:
    n = vm_env.name
    found = json.loads(vm_env.run("status", n, "--json"))
    replicas = {r["replica"]: r for r in found["replicas"]}
    assert sorted(replicas) == [f"{n}-app-0", f"{n}-db-0", f"{n}-web-0", f"{n}-web-1"]
    now = datetime.now(UTC)
    for name, replica in replicas.items():
        assert replica["tier"] == name.removeprefix(f"{n}-").rpartition("-")[0]
        assert replica["node"] == "qemu:///system"
        assert replica["state"] == "running"
        assert replica["load_balancer"].startswith("UP"), replica
        assert replica["restarts"] == 0, replica
        started = datetime.fromisoformat(replica["started"])
        assert now - timedelta(hours=1) < started <= now, replica
    table = vm_env.run("status", n)
    assert "replicas" in table
    assert all(name in table for name in replicas), table


def test_the_registry_vm_serves_https_by_the_environments_ca_its_secrets_root_only(
    vm_env: VmEnv,
) -> None:
    n = vm_env.name
    outputs = PulumiRunner().outputs(StackRef(project=vm_env.project, env=n), reveal=True)
    registry = str(outputs["registry"].value)
    host, port = registry.split(":")
    ca_file = tlsfiles.ca_file(vm_env.project, n)
    assert outputs["registry_ca"].value == str(ca_file)
    served = ssl.get_server_certificate((host, int(port))).encode()
    cert = x509.load_pem_x509_certificate(served)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_file.read_bytes()))
    assert host in pki.san_names(cert)
    client = httpx.Client(verify=ssl.create_default_context(cafile=ca_file), timeout=10)
    url = f"https://{registry}/v2/"
    assert client.get(url).status_code == 401
    login = (str(outputs["registry_username"].value), str(outputs["registry_password"].value))
    assert client.get(url, auth=login).status_code == 200  # the service reads its htpasswd
    assert httpx.get(url.replace("https:", "http:"), timeout=10).status_code == 400
    # Key and htpasswd are root-only files; the registry runs as its own user.
    files = "/etc/docker/registry/tls/registry.key /etc/docker/registry/htpasswd"
    found = run_in(
        f"{n}-registry", f"stat -c '%a %U' {files} && stat -c %U /proc/$(pidof docker-registry)"
    )
    assert found.stdout.split() == ["600", "root", "600", "root", "docker-registry"], found
    # Every VM's cloud-init seed (the registry's holds its key) is 0600 in the pool.
    for domain in vm_env.domains():
        disks = virsh("domblklist", domain, "--details").stdout.split()
        [seed] = [d for d in disks if d.endswith(".iso")]  # the volume's name
        path = virsh("vol-path", "--pool", f"{n}-pool", seed).stdout.strip()
        assert Path(path).stat().st_mode & 0o777 == 0o600, path
        assert "<mode>0600</mode>" in virsh("vol-dumpxml", path).stdout


def test_after_up_preview_shows_no_changes(vm_env: VmEnv) -> None:
    plan = json.loads(vm_env.run("preview", vm_env.name, "--json"))
    changes = [c for g in plan["groups"] for c in g["changes"]]
    assert {k: v for k, v in plan["counts"].items() if k != "same" and v} == {}, changes


def test_a_killed_web_service_is_restarted_by_systemd(vm_env: VmEnv) -> None:
    web = f"{vm_env.name}-web-0"
    unit = f"virtstack-{vm_env.name}-web.service"

    def main_pid() -> str:
        return run_in(web, f"systemctl show -p MainPID --value {unit}").stdout.strip()

    before = main_pid()
    assert run_in(web, f"kill -9 {before}").exitcode == 0
    answers = [vm_env.get() for _ in range(40)]
    deadline = time.monotonic() + 30
    while main_pid() in ("0", before) and time.monotonic() < deadline:
        time.sleep(1)
    after = main_pid()
    assert after not in ("0", before), f"{unit} was not restarted"
    restarts = run_in(web, f"systemctl show -p NRestarts --value {unit}").stdout.strip()
    assert int(restarts) >= 1
    shown = json.loads(vm_env.run("status", vm_env.name, "--json"))["replicas"]
    assert [r["restarts"] for r in shown if r["replica"] == web] == [int(restarts)]
    print(f"\nrequests failed while web-0 restarted: {sum(a is None for a in answers)} of 40")
    assert answers.count(None) <= 2, answers


def test_the_db_data_disk_keeps_its_marker_when_the_db_vm_is_replaced(vm_env: VmEnv) -> None:
    db = f"{vm_env.name}-db-0"
    marker = secrets.token_hex(8)
    wrote = run_in(db, f"echo {marker} > /data/marker && sync && cat /data/marker")
    assert wrote.stdout.strip() == marker
    uuid_before = virsh("domuuid", db).stdout.strip()
    vm_env.set("tiers[2].env", {"GREETING": "hello"})
    out = vm_env.run("up", vm_env.name, "--yes")
    assert "replaced" in out
    assert virsh("domuuid", db).stdout.strip() != uuid_before
    # up returned: cloud-init is done in the new VM, the disk is mounted again.
    assert run_in(db, "cat /data/marker").stdout.strip() == marker
    assert "GREETING=hello" in run_in(db, "systemctl show -p Environment 'virtstack-*'").stdout
    # The replacement got the same reserved address, so db's load balancer finds it.
    address = vm_env.plan().tiers[2].slots[0]
    assert f" {address}/" in run_in(db, "ip -4 -o addr show scope global").stdout
    deadline, answer = time.monotonic() + 60, None
    while time.monotonic() < deadline and not (answer and answer.split()[-1] == db):
        answer = vm_env.get()
        time.sleep(1)
    assert answer is not None
    assert answer.split()[-1] == db, answer


# -- bad input against the live libvirtd: one clear error, nothing created --------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def staging(env: str) -> dict[str, object]:
    """The shipped hypervisor example on a network of its own."""
    config = read_config(PROJECT, "staging")
    config["virtstack:networks"] = [{"name": "net", "cidr": free_subnet()}]
    config["virtstack:engine"] = {**config["virtstack:engine"], "pool_path": None}
    return config


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
    uri = f"qemu+tcp://127.0.0.1:{free_port()}/system"  # a port nothing listens on
    config = staging(env)
    config["virtstack:engine"] = {"uri": uri, "domain_type": "qemu"}
    [line] = refused(project, env, config, 2)  # bad input: nothing was changed
    assert line.startswith(f"error: {uri}: libvirt engine not reachable (")


def test_a_pool_path_that_cannot_be_made_is_refused(project: Path, tmp_path: Path) -> None:
    env = f"{PREFIX}pool-{secrets.token_hex(2)}"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = staging(env)
    config["virtstack:target"] = "hostos"
    config["virtstack:engine"] = {"uri": "qemu:///system", "pool_path": f"{blocker}/pools"}
    assert refused(project, env, config, 2) == [
        f"error: virtstack:engine.pool_path: {blocker} is not a directory, "
        f"so pool {blocker}/pools cannot be made"
    ]


def test_more_memory_than_the_host_has_is_refused(project: Path) -> None:
    env = f"{PREFIX}mem-{secrets.token_hex(2)}"
    config = staging(env)
    config["virtstack:container_hosts"][0]["memory"] = 512 * 1024  # 512 GiB, within the spec
    one, together = refused(project, env, config, 2)
    assert one.startswith(
        "error: virtstack:container_hosts[0].memory: 524288 MiB is more than the host "
        "qemu:///system has ("
    )
    assert together.startswith("error: virtstack:tiers: all the environment's VMs together need")


def test_a_vm_image_that_is_not_there_is_refused_naming_the_key(
    project: Path, tmp_path: Path
) -> None:
    env = f"{PREFIX}image-{secrets.token_hex(2)}"
    missing = tmp_path / "nowhere.qcow2"
    config = staging(env)
    config["virtstack:vms"][0]["image"] = str(missing)
    assert refused(project, env, config, 2) == [
        f"error: virtstack:vms[0].image: {missing} cannot be read (No such file or directory)"
    ]


def test_a_vm_image_volume_that_is_not_there_is_refused_naming_the_key(
    project: Path, tmp_path: Path
) -> None:
    env = f"{PREFIX}volume-{secrets.token_hex(2)}"
    # A pool with no such volume, then no such pool (not named by env: refused() removes those).
    pool = f"{PREFIX}images-{secrets.token_hex(2)}"
    virsh("pool-create-as", pool, "dir", "--target", str(tmp_path))
    try:
        config = staging(env)
        config["virtstack:vms"][0]["image"] = {"pool": pool, "volume": "cloud.qcow2"}
        assert refused(project, env, config, 2) == [
            f"error: virtstack:vms[0].image: no volume cloud.qcow2 in storage pool {pool} "
            f"on {LIBVIRT_URI}"
        ]
    finally:
        virsh("pool-destroy", pool)
    assert refused(project, env, config, 2) == [
        f"error: virtstack:vms[0].image: no storage pool {pool} on {LIBVIRT_URI}"
    ]


def test_ssh_keys_on_the_container_target_are_refused_naming_the_key(project: Path) -> None:
    env = f"{PREFIX}keys-{secrets.token_hex(2)}"
    config = read_config(PROJECT, "dev")
    config["virtstack:ssh_authorized_keys"] = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA test"]
    [line] = refused(project, env, config, 2)
    assert line == "error: virtstack:ssh_authorized_keys: the container target has no SSH logins"
