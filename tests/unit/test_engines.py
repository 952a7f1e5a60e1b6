"""The engine adapters: probes, preflight checks, data and stats, with the clients stood in."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import yaml

from virtstack.engines import hostcmd
from virtstack.engines.base import DataItem
from virtstack.engines.docker import DockerAdapter
from virtstack.engines.libvirt import LibvirtAdapter
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
    monkeypatch.setattr(DockerAdapter, "image_exists", lambda self, uri, image: image in present)
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


def test_vm_lbs_need_their_address_in_the_outputs() -> None:
    with pytest.raises(EngineCommandError, match=r"lab-web-lb: no address in the stack outputs"):
        LIBVIRT.lb_stats.retry_with(stop=lambda state: True)(  # type: ignore[attr-defined]
            LIBVIRT, spec_of("lab"), "lab", "qemu:///system", {}, "web"
        )


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
