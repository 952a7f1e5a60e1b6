"""The VM targets for real: web -> app -> db on hostos, on this machine's libvirtd (TCG).

One environment is shared by the module: web (two VMs) -> app (one VM) -> db (one VM, on a
data disk), each tier behind an HAProxy VM, web published on a loopback port of this host.
Everything is checked from outside the guests: HTTP through the published port, ``virtstack
ssh`` into every VM, the QEMU guest agent. hostos and hypervisor deploy through the same
code (vm_target); the hypervisor differs in its default domain type (kvm, which this
machine cannot run) and its remote engine, so it is covered where it differs: the refusals
at the end.
"""

from __future__ import annotations

import base64
import collections
import ipaddress
import json
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from typer.testing import Result
from virtstack_components.libvirt.addresses import NetworkPlan

from tests.engine.cli_support import cli, make_project, ok, set_key
from tests.engine.guest import run_in
from tests.engine.harness import LIBVIRT_URI, PREFIX, PROJECT, remove_leftovers, run, virsh
from virtstack import pki, tlsfiles
from virtstack.environment import StackRef
from virtstack.naming import POOL_ROOT
from virtstack.runner import PulumiRunner
from virtstack.spec import parse_spec
from virtstack.stackfiles import read_config, stack_file
from virtstack.targets import addressing

pytestmark = pytest.mark.engine

HERE = Path(__file__).resolve().parent
DEMO = base64.b64encode((HERE / "data" / "demo-vm.sh").read_bytes()).decode()
# base64: the script passes systemd's ExecStart, which would expand $ and %, untouched.
DEMO_COMMAND = ["sh", "-c", f"echo {DEMO} | base64 -d > /run/demo.sh && exec sh /run/demo.sh"]
HEALTH = {"path": "/healthz", "interval": 2, "timeout": 1, "retries": 2}


def free_subnet() -> str:
    """A /24 no route on this machine uses yet, for the environment's libvirt network."""
    routes = run("ip", "-4", "route").stdout.split()
    used = [ipaddress.ip_network(r, strict=False) for r in routes if "/" in r]
    for third in range(200, 250):
        net = ipaddress.ip_network(f"192.168.{third}.0/24")
        if not any(net.overlaps(u) for u in used):
            return str(net)
    raise RuntimeError("no free 192.168.200-249.0/24 subnet")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def tier(name: str, replicas: int, upstream: str | None = None) -> dict[str, object]:
    spec: dict[str, object] = {
        "name": name,
        "image": "virtstack/demo:1",
        "command": DEMO_COMMAND,
        "replicas": replicas,
        "health": HEALTH,
        "memory": 384,
    }
    return spec | ({"upstream": upstream} if upstream else {})


def dev_on_vms(port: int) -> dict[str, object]:
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


@dataclass
class VmEnv:
    project: Path
    name: str
    port: int

    def run(self, *args: str) -> str:
        return ok(self.project, *args).output

    def set(self, path: str, value: object) -> None:
        set_key(self.project, self.name, path, value)

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


@pytest.fixture(scope="module")
def vm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmEnv]:
    project = make_project(tmp_path_factory.mktemp("hostos"))
    name = f"{PREFIX}dev-{secrets.token_hex(2)}"
    env = VmEnv(project=project, name=name, port=free_port())
    stack_file(project, name).write_text(
        yaml.safe_dump({"config": dev_on_vms(env.port)}, sort_keys=False)
    )
    try:
        started = time.monotonic()
        out = env.run("up", name, "--yes")
        print(f"\nhostos dev shape: up returned after {time.monotonic() - started:.0f} s")
        assert "machines ready" in out, out
        yield env
    finally:
        cli(project, "destroy", name, "--yes", "--delete-data")
        leftovers = remove_leftovers(name)
        assert leftovers == [], f"destroy left {leftovers}"


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
    answers = [vm_env.get() for _ in range(200)]
    failed = sum(a is None for a in answers)
    assert failed == 0, f"{failed} of 200 requests failed"
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
    # httpd logs each request: the 200 sent through the published port, and nothing else
    # asked for / (the load balancer checks /healthz).
    requests = {r: sum(ln.endswith(": url:/") for ln in lines if ln.startswith(r)) for r in web}
    assert all(requests.values()), requests
    assert sum(requests.values()) == 200, requests
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
            whole = answer is not None and len(answer.split()) == 6  # web, app and db lines
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
