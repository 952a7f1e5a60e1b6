"""Remote engines for real: ssh:// Docker and qemu+ssh:// libvirt through an sshd of our own.

The module starts an OpenSSH server on this machine's loopback with its own config, host
key and a throwaway client key (the system's ssh configuration is untouched), so the
remote code paths run for real: the dev shape deployed over ``ssh://root@127.0.0.1`` and
checked from outside (HTTP through its load balancer, ``status``, ``scale``, no drift),
with every login counted in the sshd's log to prove the remote path was taken; the lab
shape on the hypervisor target over ``qemu+ssh://root@127.0.0.1/system`` (backends read
through that connection), with a container environment deployed onto its container host
from the images in its registry; and engines that cannot be reached (a wrong ssh option,
a host that never answers) stop ``up`` with one line naming the engine, nothing created.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from tenacity import retry, stop_after_delay, wait_fixed

from tests.engine.cli_support import Deployed, cli, make_project, ok
from tests.engine.guest import cloud_init_done
from tests.engine.harness import PREFIX, PROJECT, remove_leftovers, run, virsh
from tests.engine.test_container_target import dev_config, wait_for_replicas
from tests.engine.vmenv import free_subnet
from tests.support import free_port, unavailable
from virtstack.stackfiles import read_config, stack_file

pytestmark = pytest.mark.engine

SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_ed25519
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The keys live under /tmp, which sshd's ownership checks refuse.
StrictModes no
LogLevel VERBOSE
"""


@dataclass(frozen=True)
class Sshd:
    port: int
    key: Path
    known_hosts: Path
    log: Path

    def opts(self, **override: str) -> list[str]:
        """``engine.ssh_opts`` that reach this server (URIs carry no port: -o Port does)."""
        options = {
            "Port": str(self.port),
            "UserKnownHostsFile": str(self.known_hosts),
            "StrictHostKeyChecking": "yes",
            "IdentitiesOnly": "yes",
        } | override
        return ["-i", str(self.key), *(t for k, v in options.items() for t in ("-o", f"{k}={v}"))]

    def logins(self) -> int:
        """Public-key logins the server accepted so far."""
        return self.log.read_text().count("Accepted publickey for root")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(binary).exists():
        unavailable("no sshd (apt-get install openssh-server)")
    folder = tmp_path_factory.mktemp("sshd")
    port = free_port()
    for name in ("host_ed25519", "client_ed25519"):
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name))
    (folder / "authorized_keys").write_text((folder / "client_ed25519.pub").read_text())
    host_key = (folder / "host_ed25519.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    config = folder / "sshd_config"
    config.write_text(SSHD_CONFIG.format(port=port, dir=folder))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    run(binary, "-t", "-f", str(config))
    log = folder / "sshd.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [binary, "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 10
        while "Server listening" not in log.read_text():
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield Sshd(
            port=port, key=folder / "client_ed25519", known_hosts=folder / "known_hosts", log=log
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


@dataclass
class RemoteEnv(Deployed):
    url: str


@pytest.fixture(scope="module")
def remote_dev(sshd: Sshd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteEnv]:
    """The dev shape on ``ssh://root@127.0.0.1``: this machine's engine, reached over ssh."""
    project = make_project(tmp_path_factory.mktemp("remote-dev"))
    name = f"{PREFIX}rdev-{secrets.token_hex(3)}"
    web_port, registry_port = free_port(), free_port()
    config = dev_config(web_port, registry_port)
    config["virtstack:engine"] = {"uri": "ssh://root@127.0.0.1", "ssh_opts": sshd.opts()}
    stack_file(project, name).write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    env = RemoteEnv(project=project, name=name, url=f"http://127.0.0.1:{web_port}/")
    try:
        before = sshd.logins()
        env.run("up", name, "--yes")
        # Every client (probe, preflight, the provider) logged in over ssh.
        assert sshd.logins() > before
        yield env
    finally:
        cli(project, "destroy", name, "--yes", "--delete-data")
        tags = run(
            "docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
            "--filter", f"reference=127.0.0.1:{registry_port}/*/*",
        ).stdout  # fmt: skip
        for tag in tags.split():
            run("docker", "image", "rm", tag, check=False)
        leftovers = remove_leftovers(name)
        assert leftovers == [], f"destroy left {leftovers}"


def test_dev_over_ssh_serves_through_its_load_balancer(remote_dev: RemoteEnv) -> None:
    wait_for_replicas(remote_dev.url, {f"{remote_dev.name}-web-0", f"{remote_dev.name}-web-1"})


@retry(stop=stop_after_delay(60), wait=wait_fixed(1), reraise=True)
def every_backend_up(env: RemoteEnv) -> None:
    """Until status shows every tier's servers UP: HAProxy's own checks mark a server UP
    a few seconds after its container is healthy, later on a loaded machine."""
    shown = json.loads(env.run("status", env.name, "--json"))
    assert shown["reachable"] is True
    backends = {t["tier"]: [s["status"] for s in t["servers"]] for t in shown["health"]}
    assert set(backends) == {"web", "app", "db"}
    assert all(s.startswith("UP") for statuses in backends.values() for s in statuses), backends


def test_status_reads_backends_over_ssh(remote_dev: RemoteEnv, sshd: Sshd) -> None:
    before = sshd.logins()
    every_backend_up(remote_dev)
    assert sshd.logins() > before


def test_scale_over_ssh_then_nothing_drifts(remote_dev: RemoteEnv) -> None:
    env = remote_dev
    env.run("scale", env.name, "web", "3")
    wait_for_replicas(env.url, {f"{env.name}-web-{i}" for i in range(3)})
    counts = json.loads(env.run("preview", env.name, "--json"))["counts"]
    assert {k: v for k, v in counts.items() if k != "same" and v} == {}


def _new_env(project: Path, target: str, uri: str, opts: list[str]) -> str:
    name = f"{PREFIX}bad-{secrets.token_hex(3)}"
    config: dict[str, object] = {
        "virtstack:target": target,
        "virtstack:engine": {"uri": uri, "ssh_opts": opts},
    }
    if target == "container":
        config["virtstack:tiers"] = [{"name": "web", "image": "virtstack/busybox:1"}]
    else:
        config["virtstack:networks"] = [{"name": "net", "cidr": "192.168.250.0/24"}]
    stack_file(project, name).write_text(yaml.safe_dump({"config": config}))
    return name


@pytest.fixture(scope="module")
def silent_host() -> Iterator[int]:
    """A port that accepts connections and never says a word (an unreachable host)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize(
    ("target", "uri"),
    [("container", "ssh://root@127.0.0.1"), ("hypervisor", "qemu+ssh://root@127.0.0.1/system")],
)
@pytest.mark.parametrize("fault", ["wrong known_hosts", "silent host"])
def test_an_engine_ssh_cannot_reach_stops_up_in_one_line(
    sshd: Sshd,
    silent_host: int,
    tmp_path: Path,
    target: str,
    uri: str,
    fault: str,
) -> None:
    project = make_project(tmp_path)
    empty = tmp_path / "known_hosts"
    empty.touch()
    opts = (
        sshd.opts(UserKnownHostsFile=str(empty))
        if fault == "wrong known_hosts"
        else sshd.opts(Port=str(silent_host))
    )
    name = _new_env(project, target, uri, opts)
    started = time.monotonic()
    result = cli(project, "up", name, "--yes")
    assert result.exit_code == 2, result.output  # bad input: nothing was changed
    [line] = result.stderr.strip().splitlines()
    kind = "docker" if target == "container" else "libvirt"
    assert line.startswith(f"error: {uri}: {kind} engine not reachable ("), line
    detail = "host key" if fault == "wrong known_hosts" else "timed out"
    assert re.search(detail, line, re.IGNORECASE), line
    assert time.monotonic() - started < 60
    assert remove_leftovers(name) == []  # nothing was created


# -- the lab shape on the hypervisor target over qemu+ssh, and a container host in use ---


@dataclass
class RemoteLab:
    project: Path
    name: str
    up_stderr: str

    def outputs(self) -> dict[str, object]:
        found: dict[str, object] = json.loads(
            ok(self.project, "status", self.name, "--json").output
        )["outputs"]
        return found

    def domains(self) -> list[str]:
        names = virsh("list", "--all", "--name").stdout.split()
        return sorted(n for n in names if n.startswith(f"{self.name}-"))


@pytest.fixture(scope="module")
def remote_lab(sshd: Sshd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteLab]:
    """lab on the hypervisor target over qemu+ssh: a web VM behind an HAProxy VM, the
    registry VM and a container host that accepts the test's key."""
    project = make_project(tmp_path_factory.mktemp("remote-lab"))
    name = f"{PREFIX}rlab-{secrets.token_hex(2)}"
    config = read_config(PROJECT, "lab")
    config["virtstack:target"] = "hypervisor"
    config["virtstack:engine"] = {
        "uri": "qemu+ssh://root@127.0.0.1/system",
        "ssh_opts": sshd.opts(),
    }
    config["virtstack:networks"] = [{"name": "net", "cidr": free_subnet()}]
    config["virtstack:tiers"][0]["replicas"] = 1
    config["virtstack:registry"] = {"enabled": True, "auth": False, "size_gib": 2}
    config["virtstack:container_hosts"][0]["ssh_authorized_keys"] = [
        Path(f"{sshd.key}.pub").read_text().strip()
    ]
    stack_file(project, name).write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    try:
        before = sshd.logins()
        done = ok(project, "up", name, "--yes")
        assert sshd.logins() > before
        lab = RemoteLab(project=project, name=name, up_stderr=done.stderr)
        for domain in lab.domains():
            cloud_init_done(domain)
        yield lab
    finally:
        cli(project, "destroy", name, "--yes", "--delete-data")
        leftovers = remove_leftovers(name)
        assert leftovers == [], f"destroy left {leftovers}"


def test_lab_over_qemu_ssh_falls_back_to_emulation_plainly_and_autostarts(
    remote_lab: RemoteLab,
) -> None:
    n = remote_lab.name
    assert remote_lab.domains() == sorted(
        [f"{n}-docker", f"{n}-registry", f"{n}-web-0", f"{n}-web-lb"]
    )
    # KVM does not work on this machine (no vmx/svm): the probe says so and uses QEMU,
    # in the plan and when `up` applies it.
    plan = json.loads(ok(remote_lab.project, "preview", remote_lab.name, "--json").output)
    assert any("KVM does not work on this host" in w for w in plan["warnings"]), plan["warnings"]
    warned = [ln for ln in remote_lab.up_stderr.splitlines() if ln.startswith("warning: ")]
    assert any("KVM does not work on this host" in ln for ln in warned), remote_lab.up_stderr
    for domain in remote_lab.domains():
        assert "<domain type='qemu'" in virsh("dumpxml", domain).stdout
        assert re.search(r"Autostart:\s+enable", virsh("dominfo", domain).stdout)


def test_status_reads_vm_backends_through_the_remote_connection(
    remote_lab: RemoteLab, sshd: Sshd
) -> None:
    before = sshd.logins()
    shown = json.loads(ok(remote_lab.project, "status", remote_lab.name, "--json").output)
    assert shown["reachable"] is True
    [web] = shown["health"]
    assert web["error"] is None, web
    assert [s["status"] for s in web["servers"]] == ["UP"], web
    assert sshd.logins() > before


def test_a_container_environment_deploys_onto_the_container_host(
    remote_lab: RemoteLab, tmp_path: Path, sshd: Sshd
) -> None:
    outputs = remote_lab.outputs()
    host = outputs["container_hosts"][f"{remote_lab.name}-docker"]  # type: ignore[index]
    registry = str(outputs["registry"])
    uri = host["uri"]
    assert uri.startswith("ssh://virtstack@")
    address = uri.rpartition("@")[2]
    opts = [
        "-i", str(sshd.key), "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
        "-o", "StrictHostKeyChecking=accept-new",
    ]  # fmt: skip
    ssh = ["ssh", *opts, "-o", "BatchMode=yes", f"virtstack@{address}"]
    # The host gets the load balancers' image as any fresh engine would (images/build.sh);
    # the web image reaches it only through the VM environment's registry.
    save = subprocess.Popen(
        ["docker", "save", "virtstack/base:bookworm-1", "virtstack/demo:1"],
        stdout=subprocess.PIPE,
    )
    loaded = subprocess.run(
        [*ssh, "docker", "load"], stdin=save.stdout, capture_output=True, text=True, timeout=600
    )
    assert save.wait() == 0
    assert loaded.returncode == 0, loaded.stderr
    image = f"{registry}/virtstack/demo:1"
    pushed = run(
        *ssh, f"docker tag virtstack/demo:1 {image} && docker push {image} "
        f"&& docker image rm {image} virtstack/demo:1", timeout=600,
    )  # fmt: skip
    assert "digest: sha256:" in pushed.stdout

    project = make_project(tmp_path / "on-host")
    name = f"{PREFIX}onhost-{secrets.token_hex(2)}"
    port = 8080
    config = {
        "virtstack:target": "container",
        "virtstack:engine": {"uri": uri, "ssh_opts": opts},
        "virtstack:tiers": [
            {
                "name": "web", "image": image, "replicas": 2, "port": 8080,
                "publish": port, "publish_address": "0.0.0.0",
                # An emulated VM on a busy machine answers slowly: 1 s probes time out.
                "health": {"path": "/healthz", "interval": 5, "timeout": 4, "retries": 3},
            }
        ],
    }  # fmt: skip
    stack_file(project, name).write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    try:
        ok(project, "up", name, "--yes")
        wait_for_replicas(f"http://{address}:{port}/", {f"{name}-web-0", f"{name}-web-1"})
        # One word for the remote shell, which would split the template at its space.
        inspect = ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", image]
        digests = run(*ssh, shlex.join(inspect))
        assert f"{registry}/virtstack/demo@sha256:" in digests.stdout
    finally:
        cli(project, "destroy", name, "--yes")
