"""The engine adapters: probes, preflight checks, data and stats, with the clients stood in."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from virtstack import pki, tlsfiles
from virtstack.engines import hostcmd
from virtstack.engines.base import DataItem, Tunnel
from virtstack.engines.docker import DockerAdapter
from virtstack.engines.libvirt import LibvirtAdapter
from virtstack.engines.swarm import SwarmAdapter
from virtstack.errors import EngineCommandError, EngineUnreachableError
from virtstack.spec import parse_spec

REPO = Path(__file__).resolve().parents[2]
DOCKER = DockerAdapter()
LIBVIRT = LibvirtAdapter()


def spec_of(env: str, **extra: object):
    config = yaml.safe_load((REPO / "stacks" / f"Pulumi.{env}.yaml").read_text())["config"]
    return parse_spec({**config, **extra})


# -- the clients (real docker and virsh; failures are fast and local) -------------------


@pytest.mark.parametrize("uri", ["unix:///nonexistent.sock", "tcp://127.0.0.1:1"])
def test_docker_engine_that_is_not_there(uri: str) -> None:
    found = DOCKER.probe(uri)
    assert not found.reachable
    assert found.engine == "docker"
    assert found.detail  # the client's own reason, or that the client is missing


def test_libvirt_that_is_not_there() -> None:
    found = LIBVIRT.probe("qemu+ssh://nobody@127.0.0.1:1/system")
    assert not found.reachable
    assert found.detail


def test_a_hanging_client_counts_as_unreachable() -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(10)"]
    with pytest.raises(EngineUnreachableError, match=r"no answer within 0\.3s"):
        hostcmd.run(argv, uri="tcp://example:1", timeout=0.3)


def test_a_failing_command_reports_its_first_error_line() -> None:
    argv = [sys.executable, "-c", "import sys; sys.exit('\\nerror: nope\\nmore')"]
    with pytest.raises(EngineCommandError, match=r"^tcp://h:1: nope$"):
        hostcmd.run(argv, uri="tcp://h:1")


def test_a_missing_client() -> None:
    with pytest.raises(EngineUnreachableError, match="the no-such-client client is not installed"):
        hostcmd.run(["no-such-client", "version"], uri="unix:///x")


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("unix:///var/run/docker.sock", True),
        ("tcp://127.0.0.1:2375", True),
        ("tcp://docker1.example:2376", False),
        ("ssh://admin@docker1.example", False),
        ("qemu:///system", True),
        ("qemu+unix:///system", True),
        ("qemu+ssh://admin@kvm1.example/system", False),
    ],
)
def test_local_and_remote_engines(uri: str, local: bool) -> None:
    assert hostcmd.is_local(uri) is local


# -- Docker preflight ---------------------------------------------------------------------

SPEC = parse_spec(
    {
        "virtstack:target": "container",
        "virtstack:registry": {"enabled": True, "port": 5000},
        "virtstack:tiers": [
            {"name": "web", "image": "virtstack/demo:1", "publish": 8080, "upstream": "db"},
            {"name": "db", "image": "virtstack/db:2"},
        ],
    }
)
URI = "unix:///var/run/docker.sock"
ALL_IMAGES = {"virtstack/demo:1", "virtstack/db:2", "virtstack/base:bookworm-1"}


def problems(
    monkeypatch: pytest.MonkeyPatch,
    present: set[str],
    holders: dict[int, str | None],
    uri: str = URI,
) -> list[str]:
    monkeypatch.setattr(
        DockerAdapter, "image_exists", lambda self, uri, *images: set(images) <= present
    )
    monkeypatch.setattr(
        DockerAdapter, "port_owner", lambda self, uri, address, port: holders.get(port)
    )
    return DOCKER.preflight(SPEC, "dev", uri)


def test_nothing_to_report_when_images_exist_and_ports_are_free(monkeypatch) -> None:
    assert problems(monkeypatch, ALL_IMAGES, {}) == []


def test_a_missing_image_names_the_tier_key_and_the_engine(monkeypatch) -> None:
    assert problems(monkeypatch, ALL_IMAGES - {"virtstack/db:2"}, {}) == [
        "virtstack:tiers[1].image: image 'virtstack/db:2' is not on the engine "
        "unix:///var/run/docker.sock (build it: images/build.sh)"
    ]


def test_a_port_held_by_someone_else_is_reported(monkeypatch) -> None:
    assert problems(monkeypatch, ALL_IMAGES, {8080: "other-app", 5000: ""}) == [
        "virtstack:tiers[0].publish: 127.0.0.1:8080 is already in use by container other-app",
        "virtstack:registry.port: 127.0.0.1:5000 is already in use by another process",
    ]


def test_the_environments_own_containers_may_hold_its_ports(monkeypatch) -> None:
    assert problems(monkeypatch, ALL_IMAGES, {8080: "dev-web-lb", 5000: "dev-registry"}) == []


def test_preflight_asks_the_engine_every_question_at_once(monkeypatch) -> None:
    # 3 images in one question and 2 ports: each check waits until all 3 are under way
    # (asked one by one, the first would wait for ever; the barrier breaks after 5 s).
    everyone = threading.Barrier(3, timeout=5)

    def image_exists(self: DockerAdapter, uri: str, *images: str) -> bool:
        assert set(images) == ALL_IMAGES
        everyone.wait()
        return True

    def port_owner(self: DockerAdapter, uri: str, address: str, port: int) -> None:
        everyone.wait()

    monkeypatch.setattr(DockerAdapter, "image_exists", image_exists)
    monkeypatch.setattr(DockerAdapter, "port_owner", port_owner)
    assert DOCKER.preflight(SPEC, "dev", URI) == []


def test_remote_engines_skip_the_port_probe(monkeypatch) -> None:
    assert problems(monkeypatch, ALL_IMAGES, {8080: "other"}, uri="ssh://a@h.example") == []


def test_port_owner_sees_a_real_listener(monkeypatch) -> None:
    monkeypatch.setattr(hostcmd, "run", lambda argv, uri, timeout=8.0: "")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert DOCKER.port_owner(URI, "127.0.0.1", port) == ""
    assert DOCKER.port_owner(URI, "127.0.0.1", port) is None


# -- libvirt preflight --------------------------------------------------------------------

VM_SPEC = parse_spec(
    {
        "virtstack:target": "hostos",
        "virtstack:engine": {"pool_path": "/nonexistent-parent/pools/lab"},
        "virtstack:networks": [{"name": "lab", "cidr": "192.168.151.0/24"}],
        "virtstack:vms": [{"name": "big", "memory": 65536}, {"name": "small", "memory": 512}],
    }
)


@pytest.fixture
def host_memory(monkeypatch: pytest.MonkeyPatch):
    def set_memory(mib: int) -> None:
        monkeypatch.setattr(LibvirtAdapter, "host_memory_mib", lambda self, uri: mib)

    return set_memory


def test_libvirt_problems_name_oversized_vms(host_memory) -> None:
    host_memory(24000)
    # Missing folders above the pool are fine: libvirt makes them.
    assert list(LIBVIRT._problems(VM_SPEC, "lab", "qemu:///system")) == [
        "virtstack:vms[0].memory: 65536 MiB is more than the host qemu:///system has (24000 MiB)",
        "virtstack:vms: all the environment's VMs together need 66048 MiB, more than the host "
        "qemu:///system has (24000 MiB)",
    ]


def test_libvirt_problems_name_a_pool_path_blocked_by_a_file(host_memory, tmp_path) -> None:
    host_memory(999999)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    spec = VM_SPEC.model_copy(
        update={"engine": VM_SPEC.engine.model_copy(update={"pool_path": f"{blocker}/pools/lab"})}
    )
    assert list(LIBVIRT._problems(spec, "lab", "qemu:///system")) == [
        f"virtstack:engine.pool_path: {blocker} is not a directory, "
        f"so pool {blocker}/pools/lab cannot be made"
    ]


def test_libvirt_problems_skip_the_path_on_a_remote_host(host_memory) -> None:
    host_memory(99999)
    assert list(LIBVIRT._problems(VM_SPEC, "lab", "qemu+ssh://h/system")) == []


def test_libvirt_preflight_wants_a_built_guest_image(host_memory, tmp_path) -> None:
    host_memory(99999)
    spec = VM_SPEC.model_copy(
        update={"images": VM_SPEC.images.model_copy(update={"guest": str(tmp_path)})}
    )
    [missing] = LIBVIRT.preflight(spec, "lab", "qemu+ssh://h/system")
    assert missing.startswith(f"virtstack:images.guest: no guest image at {tmp_path}")


# -- data -----------------------------------------------------------------------------------


def test_docker_data_is_listed_and_removed_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []

    def run(argv, *, uri, timeout=0):
        ran.append(list(argv))
        if "ls" in argv:
            return (
                "dev_db-data_0\tdev\ndev_db-data_1\tdev\ndev_other\tdev\n"
                "dev_registry-data\tdev\ndev-db-data-2\t\nshop-db_data_0\tshop-db\n"
            )
        return ""

    monkeypatch.setattr(hostcmd, "run", run)
    removed = DOCKER.delete_data(spec_of("dev"), "dev", "unix:///d.sock")
    assert removed == ["dev_db-data_0", "dev_db-data_1", "dev_registry-data"]
    assert ran[-1] == ["docker", "--host", "unix:///d.sock", "volume", "rm", *removed]


def test_libvirt_data_disks_in_the_data_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_of("lab", **{"virtstack:registry": {"enabled": True}})
    listing = {
        "pool-list": "lab-pool\nlab-data\nother-pool\n",
        "vol-info": "Name:           x\nCapacity:       10737418240 bytes\n",
        "vol-list": (
            " lab_registry-data.qcow2   /p/lab_registry-data.qcow2\n"
            " lab-web-root-ab.qcow2      /p/lab-web-root-ab.qcow2\n"
        ),
    }
    calls: list[list[str]] = []

    def run(argv, *, uri, timeout=0):
        calls.append(list(argv))
        if "vol-delete" in argv or (argv[-2].startswith("pool-") and argv[-2] != "pool-list"):
            return ""
        return next(out for cmd, out in listing.items() if cmd in argv)

    monkeypatch.setattr(hostcmd, "run", run)
    assert LIBVIRT.delete_data(spec, "lab", "qemu:///system") == ["lab_registry-data.qcow2"]
    [delete] = [c for c in calls if "vol-delete" in c]
    assert delete[-3:] == ["--pool", "lab-data", "lab_registry-data.qcow2"]
    # Other volumes are still in the data pool: it stays.
    assert not [c for c in calls if "pool-undefine" in c]
    # Once nothing is left in it, the data pool goes as well.
    listing["vol-list"] = ""
    calls.clear()
    assert LIBVIRT.delete_data(spec, "lab", "qemu:///system") == []
    assert [c[-2] for c in calls if c[-1] == "lab-data" and "pool" in c[-2]] == [
        "pool-destroy",
        "pool-delete",
        "pool-undefine",
    ]


def test_data_names_are_the_specs_and_every_replica_index() -> None:
    from virtstack.naming import data_pattern

    pattern = data_pattern(spec_of("dev"), "dev")
    for name in ("dev_db-data_0", "dev_db-data_11", "dev_registry-data"):
        assert pattern.fullmatch(name), name
    for name in (
        "dev_db-data",
        "dev_db-data_x",
        "staging_db-data_0",
        "xdev_registry-data",
        "dev-db-data-0",
    ):
        assert not pattern.fullmatch(name), name
    assert not data_pattern(spec_of("lab"), "lab").fullmatch("lab-")


# -- load-balancer stats ------------------------------------------------------------------


def test_container_lbs_are_read_through_docker_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(hostcmd, "run", lambda argv, *, uri, timeout=0: ran.append(argv) or "csv")
    assert DOCKER.lb_stats(spec_of("dev"), "dev", "unix:///d.sock", {}, "web") == "csv"
    assert ran == [
        ["docker", "--host", "unix:///d.sock", "exec", "dev-web-lb", "busybox", "wget", "-q",
         "-O-", "http://127.0.0.1:8404/stats;csv"]
    ]  # fmt: skip


def test_vm_lbs_are_read_inside_the_vm_through_its_guest_agent(monkeypatch) -> None:
    asked: list[dict[str, object]] = []
    out = base64.b64encode(b"csv").decode()

    def run(argv, *, uri, timeout=0):
        request = json.loads(argv[-1])
        asked.append({"domain": argv[-2], **request})
        if request["execute"] == "guest-exec":
            return json.dumps({"return": {"pid": 7}})
        return json.dumps({"return": {"exited": True, "exitcode": 0, "out-data": out}})

    monkeypatch.setattr(hostcmd, "run", run)
    assert LIBVIRT.lb_stats(spec_of("lab"), "lab", "qemu+ssh://h/system", {}, "web") == "csv"
    assert asked[0] == {
        "domain": "lab-web-lb",
        "execute": "guest-exec",
        "arguments": {
            "path": "/bin/busybox",
            "arg": ["wget", "-q", "-O-", "http://127.0.0.1:8404/stats;csv"],
            "capture-output": True,
        },
    }
    assert asked[1] == {
        "domain": "lab-web-lb",
        "execute": "guest-exec-status",
        "arguments": {"pid": 7},
    }


def test_ssh_engines_get_their_options_through_a_private_ssh(tmp_path: Path) -> None:
    # A stand-in client prints which ssh it would run and that ssh's script.
    client = tmp_path / "client"
    client.write_text(
        '#!/bin/sh\nssh=$(command -v ssh); echo "$ssh"\n'
        'case "$ssh" in */virtstack-ssh-*) cat "$ssh";; esac\n'
    )
    client.chmod(0o755)
    uri = hostcmd.EngineUri("ssh://root@h", ["-i", "/k ey", "-o", "UserKnownHostsFile=/kh"])
    out = hostcmd.run([str(client)], uri=uri).splitlines()
    wrapper = out[2]
    assert out[0].startswith("/tmp/virtstack-ssh-")
    assert not Path(out[0]).exists()  # removed after the run
    for expected in ("'/k ey'", "UserKnownHostsFile=/kh", "BatchMode=yes"):
        assert expected in wrapper
    assert f"ConnectTimeout={hostcmd.SSH_CONNECT_TIMEOUT}" in wrapper
    # Options the user gave come first: ssh keeps an option's first value.
    assert wrapper.index("/k ey") < wrapper.index("BatchMode")
    # A local engine runs the clients as they are.
    local = hostcmd.run([str(client)], uri="unix:///var/run/docker.sock").splitlines()
    assert not local[0].startswith("/tmp/virtstack-ssh-")


def test_tcp_engines_with_tls_give_docker_their_certificates() -> None:
    uri = hostcmd.EngineUri("tcp://h:2376", tls=("/ca", "/cert", "/key"))
    assert hostcmd.docker_argv(uri, "ps")[2:] == [
        "tcp://h:2376", "--tlsverify", "--tlscacert", "/ca", "--tlscert", "/cert",
        "--tlskey", "/key", "ps",
    ]  # fmt: skip


def test_virsh_reasons_follow_its_generic_first_line() -> None:
    text = (
        "error: failed to connect to the hypervisor\n"
        "error: Cannot recv data: Host key verification failed.\n"
    )
    assert hostcmd.first_line(text) == (
        "failed to connect to the hypervisor: Cannot recv data: Host key verification failed."
    )


def test_the_libvirt_provider_gets_ssh_options_as_uri_parameters() -> None:
    from virtstack.engines.libvirt import provider_uri, ssh_problems

    uri = hostcmd.EngineUri(
        "qemu+ssh://root@127.0.0.1/system",
        ["-i", "/k", "-o", "UserKnownHostsFile=/kh", "-oBatchMode=yes", "-p", "2222"],
    )
    assert provider_uri(uri) == (
        "qemu+ssh://root@127.0.0.1:2222/system?keyfile=%2Fk&sshauth=privkey&knownhosts=%2Fkh"
    )
    assert provider_uri(hostcmd.EngineUri("qemu:///system")) == "qemu:///system"
    jump = hostcmd.EngineUri("qemu+ssh://h/system", ["-i", "/k", "-J", "bastion"])
    assert ssh_problems(jump) == [
        "virtstack:engine.ssh_opts[2]: the libvirt provider's ssh client cannot take "
        "ProxyJump (it takes -i, UserKnownHostsFile, StrictHostKeyChecking, Port, User)"
    ]


@pytest.mark.parametrize(
    ("signs", "problem"),
    [
        ({"/dev/kvm", "vmx"}, None),
        ({"/dev/kvm", "svm"}, None),
        ({"/dev/kvm"}, "the host CPU has no virtualization extensions (vmx/svm)"),
        ({"vmx"}, "the host has no /dev/kvm"),
    ],
)
def test_kvm_works_only_with_the_device_and_virtualization_extensions(
    monkeypatch, signs: set[str], problem: str | None
) -> None:
    monkeypatch.setattr(LibvirtAdapter, "kvm_signs", lambda self, uri: signs)
    assert LIBVIRT.kvm_problem("qemu:///system") == problem


def test_a_remote_hosts_kvm_signs_are_read_on_the_host_over_ssh(monkeypatch) -> None:
    asked = []

    def fake_ssh_run(uri, *command, timeout=hostcmd.DEFAULT_TIMEOUT):
        asked.append((uri, command))
        return "vmx\n/dev/kvm\n"

    monkeypatch.setattr(hostcmd, "ssh_run", fake_ssh_run)
    uri = hostcmd.EngineUri("qemu+ssh://root@h/system", ["-i", "/k"])
    assert LIBVIRT.kvm_signs(uri) == {"vmx", "/dev/kvm"}
    [(used, command)] = asked
    assert used is uri
    assert command[:2] == ("sh", "-c")
    assert "/proc/cpuinfo" in command[2]


def test_without_a_shell_kvm_signs_come_from_libvirts_capabilities(monkeypatch) -> None:
    caps = (
        "<capabilities><host><cpu><feature name='svm'/></cpu></host>"
        "<guest><arch name='x86_64'><domain type='qemu'/><domain type='kvm'/></arch></guest>"
        "</capabilities>"
    )
    monkeypatch.setattr(hostcmd, "run", lambda argv, *, uri, timeout: caps)
    assert LIBVIRT.kvm_signs("qemu+tcp://h/system") == {"svm", "/dev/kvm"}


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (["-i /k"], "[0]: '-i /k': give the option and its value as two items"),
        (["-o"], "[0]: '-o' needs a value"),
        (["-oBatchMode"], "[0]: 'BatchMode': write -o Keyword=value"),
        (["-i", "/k", "nope"], "[2]: 'nope' is not an ssh option (start with '-')"),
        (["-R", "1:h:2"], "[0]: '-R': virtstack does not pass ssh option -R"),
    ],
)  # fmt: skip
def test_ssh_options_ssh_would_misread_are_refused(opts: list[str], message: str) -> None:
    from virtstack.errors import SpecError

    with pytest.raises(SpecError) as caught:
        parse_spec({"virtstack:target": "container", "virtstack:engine": {"ssh_opts": opts}})
    assert caught.value.problems == ["virtstack:engine.ssh_opts" + message]


def test_docker_data_items_are_the_envs_labelled_volumes_and_its_old_names(monkeypatch) -> None:
    listing = (
        "dev_db-data_0\tdev\n"  # this environment's, labelled
        "dev-db-data-1\t\n"  # virtstack 0.1's name, unlabelled
        "dev-web-cache\tdev-web\n"  # another environment's, whatever its name
        "shop_db-data_0\tshop\n"
    )
    monkeypatch.setattr(hostcmd, "run", lambda argv, *, uri, timeout=0: listing)
    assert DOCKER.data_items("dev", "unix:///d.sock") == [
        DataItem(name="dev_db-data_0", owned=True),
        DataItem(name="dev-db-data-1", owned=False),
    ]


def test_libvirt_problems_add_up_every_vm_of_the_environment(host_memory) -> None:
    host_memory(4000)
    spec = parse_spec(
        {
            "virtstack:target": "hostos",
            "virtstack:networks": [{"name": "lab", "cidr": "192.168.151.0/24"}],
            "virtstack:vms": [{"name": "a", "memory": 3000}, {"name": "b", "memory": 2000}],
        }
    )
    assert list(LIBVIRT._problems(spec, "lab", "qemu+ssh://h/system")) == [
        "virtstack:vms: all the environment's VMs together need 5000 MiB, more than the host "
        "qemu+ssh://h/system has (4000 MiB)"
    ]


def test_docker_replicas_say_where_they_run_their_restarts_and_start(monkeypatch) -> None:
    answers = iter(
        [
            "c1 c2\n",
            "/dev-web-0\tdev-web\trunning (healthy)\t2\t2026-11-27T05:00:00Z\t10.1.0.5 \n"
            "/dev-web-1\tdev-web\trunning (starting)\t0\t2026-11-27T05:01:00Z\t10.1.0.6 \n",
        ]
    )
    monkeypatch.setattr(hostcmd, "run", lambda argv, *, uri, timeout=0: next(answers))
    found = DOCKER.replicas(spec_of("dev"), "dev", "unix:///d.sock")
    assert [(r.replica, r.tier, r.state, r.restarts, r.address) for r in found] == [
        ("dev-web-0", "web", "running (healthy)", 2, "10.1.0.5"),
        ("dev-web-1", "web", "running (starting)", 0, "10.1.0.6"),
    ]
    assert found[0].node == "unix:///d.sock"


def test_status_joins_each_replica_with_its_load_balancers_view() -> None:
    from virtstack.engines.base import ReplicaPlacement, ServerHealth, TierHealth
    from virtstack.report import lb_view

    tiers = [
        TierHealth(
            tier="web",
            lb="dev-web-lb",
            servers=[
                ServerHealth(name="dev-web-slot1", address="10.1.0.5:8080", status="UP", check=""),
                ServerHealth(name="lab-web-0", address="192.0.2.4:8080", status="DOWN", check=""),
            ],
        )
    ]
    container = ReplicaPlacement(replica="dev-web-0", node="u", state="running", address="10.1.0.5")
    vm = ReplicaPlacement(replica="lab-web-0", node="u", state="running")
    gone = ReplicaPlacement(replica="dev-web-9", node="u", state="exited", address="10.1.0.9")
    assert [lb_view(r, tiers) for r in (container, vm, gone)] == ["UP", "DOWN", ""]


def test_vm_logs_are_the_services_journal_through_the_guest_agent(monkeypatch) -> None:
    from virtstack.engines import guestagent

    asked: list[list[str]] = []
    pages = iter(
        [
            "2026-11-27T05:00:00.1+0000 lab-web-0 httpd[9]: one\n-- cursor: c1\n",
            "2026-11-27T05:00:02.1+0000 lab-web-0 httpd[9]: two\n-- cursor: c2\n",
        ]
    )

    def run(uri, domain, argv, timeout=0):
        asked.append(argv)
        return guestagent.Exec(0, next(pages), "")

    monkeypatch.setattr(guestagent, "run", run)
    monkeypatch.setattr(guestagent, "FOLLOW_EVERY", 0)
    lines = guestagent.journal(
        "qemu:///system", "lab-web-0", "virtstack-lab-web", follow=True, since="10m"
    )
    assert [next(lines), next(lines)] == [
        "2026-11-27T05:00:00.1+0000 lab-web-0 httpd[9]: one",
        "2026-11-27T05:00:02.1+0000 lab-web-0 httpd[9]: two",
    ]
    assert asked[0][-2:] == ["--since", "-10m"]
    assert asked[1][-2:] == ["--after-cursor", "c1"]
    sources = LIBVIRT.log_sources("lab", "qemu:///system", ["lab-web-0"], follow=False, since=None)
    assert sources["lab-web-0"][-4:] == [
        "journal",
        "qemu:///system",
        "lab-web-0",
        "virtstack-lab-web",
    ]


# -- the registry tunnel of remote Docker engines ---------------------------------------

FAKE_SSH = """
import socket, sys, time
address, port = sys.argv[sys.argv.index("-L") + 1].split(":")[:2]
with socket.socket() as s:
    s.bind((address, int(port))); s.listen(1)
    open(sys.argv[1], "w").write(" ".join(sys.argv[2:]))
    time.sleep(60)
"""


@pytest.fixture
def another_engine(monkeypatch):
    """The engine at an ssh:// URI is not this machine's (their ids differ)."""
    monkeypatch.setattr(DockerAdapter, "engine_id", lambda self, uri: uri)


def test_a_remote_engines_registry_is_tunnelled_for_the_run(
    another_engine, monkeypatch, tmp_path: Path
) -> None:
    script, argv_file = tmp_path / "ssh.py", tmp_path / "argv"
    script.write_text(FAKE_SSH)
    monkeypatch.setattr(
        hostcmd, "ssh_argv", lambda uri: [sys.executable, str(script), str(argv_file)]
    )
    port = _free_port()
    tunnel = DOCKER.forward_registry("ssh://me@host:2200", "127.0.0.1", port)
    try:
        forward = f"127.0.0.1:{port}:127.0.0.1:{port}"
        assert argv_file.read_text() == (
            f"-p 2200 -N -o ExitOnForwardFailure=yes -L {forward} -- me@host"
        )
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        tunnel.close()
    assert tunnel.process is not None
    assert tunnel.process.returncode is not None


def test_no_tunnel_to_this_machines_own_engine(monkeypatch) -> None:
    monkeypatch.setattr(DockerAdapter, "engine_id", lambda self, uri: "same")
    assert DOCKER.forward_registry("ssh://root@127.0.0.1", "127.0.0.1", 1).process is None
    assert DOCKER.forward_registry("unix:///var/run/docker.sock", "127.0.0.1", 1).process is None


def test_the_registry_is_tunnelled_where_pulumi_pushes_to_it(monkeypatch) -> None:
    opened = []

    def forward(self, uri: str, address: str, port: int) -> Tunnel:
        opened.append((uri, address, port))
        return Tunnel()

    monkeypatch.setattr(DockerAdapter, "forward_registry", forward)
    dev = spec_of("dev", **{"virtstack:registry": {"enabled": True, "port": 5001}})
    DOCKER.registry_tunnel(dev, "ssh://me@host")
    assert opened == [("ssh://me@host", "127.0.0.1", 5001)]
    # No registry, or no tier image to push: no digest is read, so no tunnel.
    DOCKER.registry_tunnel(spec_of("dev", **{"virtstack:registry": {"enabled": False}}), "ssh://h")
    DOCKER.registry_tunnel(spec_of("dev", **{"virtstack:tiers": []}), "ssh://h")
    # A Swarm's registry answers at its manager's address; a VM registry gets no pushes.
    assert SwarmAdapter().registry_tunnel(dev, "ssh://h").process is None
    assert LIBVIRT.registry_tunnel(spec_of("lab"), "qemu+ssh://h/system").process is None
    assert opened == [("ssh://me@host", "127.0.0.1", 5001)]


def test_a_tunnel_closes_when_its_block_ends() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    with Tunnel(process) as tunnel:
        assert tunnel.process is not None
        assert tunnel.process.poll() is None
    assert process.returncode is not None


def test_a_registry_port_taken_here_is_refused(another_engine) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        with pytest.raises(EngineCommandError, match=rf"127.0.0.1:{port} is taken on this machine"):
            DOCKER.forward_registry("ssh://h", "127.0.0.1", port)


def test_a_tunnel_ssh_cannot_open_names_the_engine(another_engine, monkeypatch) -> None:
    monkeypatch.setattr(
        hostcmd, "ssh_argv", lambda uri: ["sh", "-c", "echo 'ssh: refused' >&2; exit 255", "ssh"]
    )
    with pytest.raises(
        EngineUnreachableError, match=r"^ssh://h: no tunnel to its registry .*\(ssh: refused\)"
    ):
        DOCKER.forward_registry("ssh://h", "127.0.0.1", _free_port())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("lb_runs", [False, True])
def test_libvirt_problems_name_a_published_port_someone_else_holds(
    host_memory, monkeypatch: pytest.MonkeyPatch, lb_runs: bool
) -> None:
    host_memory(99999)
    monkeypatch.setattr(LibvirtAdapter, "_runs", lambda self, uri, domain: lb_runs)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        spec = parse_spec(
            {
                "virtstack:target": "hostos",
                "virtstack:networks": [{"name": "lab", "cidr": "192.168.151.0/24"}],
                "virtstack:tiers": [
                    {"name": "web", "image": "x", "command": ["true"], "publish": port}
                ],
            }
        )
        found = list(LIBVIRT._problems(spec, "lab", "qemu:///system"))
    # The environment's own load-balancer VM holding it is no problem.
    assert found == (
        []
        if lb_runs
        else [f"virtstack:tiers[0].publish: 127.0.0.1:{port} is already in use by another process"]
    )


# -- the engine's trust in the environment's registry CA --------------------------------

LOCAL = "unix:///var/run/docker.sock"


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.crt"
    path.write_text("-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n")
    return path


def test_docker_checks_no_certificate_on_loopback_so_nothing_is_installed(
    ca_file: Path, tls_home: Path
) -> None:
    found = DockerAdapter().trust_registry(LOCAL, "127.0.0.1", 5000, ca_file)
    assert found is None
    assert not (tls_home / "certs.d").exists()


def test_a_local_engine_verifies_a_registry_beyond_loopback_by_the_ca(
    ca_file: Path, tls_home: Path
) -> None:
    found = DockerAdapter().trust_registry(LOCAL, "10.9.0.1", 5443, ca_file)
    assert found is None
    assert (tls_home / "certs.d" / "10.9.0.1:5443" / "ca.crt").read_text() == ca_file.read_text()


def test_a_remote_engines_trust_is_the_users_to_set_up(ca_file: Path, tls_home: Path) -> None:
    found = DockerAdapter().trust_registry("ssh://ops@build", "10.9.0.1", 5443, ca_file)
    assert found == (
        f"ssh://ops@build: the engine must trust {ca_file} for its registry "
        f"(as {tls_home}/certs.d/10.9.0.1:5443/ca.crt)"
    )
    assert not (tls_home / "certs.d").exists()


def test_an_unwritable_certs_folder_is_a_warning_naming_it(
    ca_file: Path, tls_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tls_home / "blocked"
    blocked.write_text("a file where a folder should be")
    monkeypatch.setattr("virtstack.engines.docker.CERTS_D", blocked)
    found = DockerAdapter().trust_registry(LOCAL, "10.9.0.1", 5443, ca_file)
    assert found is not None
    assert found.startswith(f"{blocked}/10.9.0.1:5443/ca.crt: cannot install the registry's CA")


def test_destroy_removes_the_ca_copy_up_installed_and_nothing_else(tls_home: Path) -> None:
    made = pki.registry_cert(tls_home, "dev", ["10.9.0.1"])
    other = pki.registry_cert(tls_home, "qa", ["10.9.0.2"])
    adapter = DockerAdapter()
    assert adapter.trust_registry(LOCAL, "10.9.0.1", 5443, made.ca_file) is None
    assert adapter.trust_registry(LOCAL, "10.9.0.1", 5444, made.ca_file) is None
    assert adapter.trust_registry(LOCAL, "10.9.0.2", 5443, other.ca_file) is None
    certs = tls_home / "certs.d"
    (certs / "10.9.0.1:5444" / "client.cert").write_text("the user's")  # not ours
    assert tlsfiles.remove_installed(tls_home, "dev") == [
        certs / "10.9.0.1:5443" / "ca.crt",
        certs / "10.9.0.1:5444" / "ca.crt",
    ]
    assert sorted(p.name for p in certs.iterdir()) == ["10.9.0.1:5444", "10.9.0.2:5443"]
    assert [p.name for p in (certs / "10.9.0.1:5444").iterdir()] == ["client.cert"]
    assert (certs / "10.9.0.2:5443" / "ca.crt").read_text() == other.ca
    assert tlsfiles.remove_installed(tls_home, "dev") == []  # nothing noted any more


def test_a_ca_copy_replaced_since_up_is_not_removed(tls_home: Path) -> None:
    made = pki.registry_cert(tls_home, "dev", ["10.9.0.1"])
    assert DockerAdapter().trust_registry(LOCAL, "10.9.0.1", 5443, made.ca_file) is None
    copy = tls_home / "certs.d" / "10.9.0.1:5443" / "ca.crt"
    copy.write_text("another environment's CA, installed at the same address since")
    assert tlsfiles.remove_installed(tls_home, "dev") == []
    assert copy.read_text().startswith("another environment's CA")
