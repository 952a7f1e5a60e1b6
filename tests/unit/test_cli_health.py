"""Engine reachability, HAProxy backend health, data volumes, and the engine boundary."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.fixtures.cli_support import FIXTURES, copy_project, events
from virtstack import data, health, hostcmd, operations
from virtstack.errors import (
    EngineCommandError,
    EngineUnreachableError,
    ToolchainMissingError,
)
from virtstack.spec import parse_spec
from virtstack.stackfiles import read_config

# -- reachability (the real docker and virsh clients; failures are fast and local) ------


@pytest.mark.parametrize("uri", ["unix:///nonexistent.sock", "tcp://127.0.0.1:1"])
def test_docker_engine_that_is_not_there(uri: str) -> None:
    found = health.probe("docker", uri)
    assert not found.reachable
    assert found.detail  # the client's own reason, or that the client is missing


def test_libvirt_that_is_not_there() -> None:
    found = health.probe("libvirt", "qemu+ssh://nobody@127.0.0.1:1/system")
    assert not found.reachable
    assert found.detail


def test_require_reachable_names_uri_and_key() -> None:
    with pytest.raises(EngineUnreachableError) as caught:
        health.require_reachable("docker", "unix:///nonexistent.sock")
    message = str(caught.value)
    assert message.startswith("unix:///nonexistent.sock: docker engine not reachable (")
    assert "\n" not in message


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


# -- HAProxy stats (CSV recorded from a real HAProxy 2.6 with the rendered configs) -----


def test_stats_of_listed_servers() -> None:
    servers, unused = health.parse_stats((FIXTURES / "haproxy-stats-static.csv").read_text())
    assert unused == 0
    assert [(s.name, s.status, s.up) for s in servers] == [
        ("dev-web-0", "UP", True),
        ("dev-web-1", "DOWN", False),
    ]
    assert servers[0].check == "L7OK 200 (Layer7 check passed)"
    assert servers[1].check == "L4CON (Layer4 connection problem: Connection refused)"


def test_stats_of_dns_slots_nobody_answers() -> None:
    servers, unused = health.parse_stats((FIXTURES / "haproxy-stats-dns.csv").read_text())
    assert servers == []
    assert unused == 10


def _spec(env: str = "dev"):
    return parse_spec(read_config(FIXTURES.parents[2], env))


def test_container_lbs_are_read_through_docker_exec() -> None:
    asked: list[tuple[str, str]] = []

    def read(uri: str, lb: str) -> str:
        asked.append((uri, lb))
        return (FIXTURES / "haproxy-stats-static.csv").read_text()

    tiers = health.lb_health(_spec(), "dev", "docker", "unix:///d.sock", {}, read_container=read)
    assert asked == [("unix:///d.sock", f"dev-{t}-lb") for t in ("web", "app", "db")]
    assert [len(t.servers) for t in tiers] == [2, 2, 2]


def test_vm_lbs_are_read_at_their_address_from_the_outputs() -> None:
    asked: list[str] = []

    def read(host: str) -> str:
        asked.append(host)
        return (FIXTURES / "haproxy-stats-static.csv").read_text()

    outputs = {"tiers": {"web": {"endpoint": "192.0.2.7:80"}}}
    [web] = health.lb_health(
        _spec("lab"), "lab", "libvirt", "qemu:///system", outputs, read_http=read
    )
    assert asked == ["192.0.2.7"]
    assert web.lb == "lab-web-lb (192.0.2.7)"
    assert web.error is None


def test_an_unreadable_lb_is_reported_not_raised() -> None:
    def read(uri: str, lb: str) -> str:
        raise EngineCommandError(f"{uri}: No such container: {lb}")

    tiers = health.lb_health(_spec(), "dev", "docker", "unix:///d.sock", {}, read_container=read)
    assert tiers[0].error == "unix:///d.sock: No such container: dev-web-lb"

    [web] = health.lb_health(_spec("lab"), "lab", "libvirt", "qemu:///system", {})
    assert web.error == "lab-web-lb: no address in the stack outputs (run up)"


# -- data volumes -----------------------------------------------------------------------


def test_data_names_are_the_specs_and_every_replica_index() -> None:
    pattern = data.data_pattern(_spec(), "dev")
    for name in ("dev-db-data-0", "dev-db-data-11", "dev-registry-data"):
        assert pattern.fullmatch(name), name
    others = (
        "dev-db-data",
        "dev-db-data-x",
        "staging-db-data-0",
        "dev-web-data-0",
        "xdev-registry-data",
    )
    for name in others:
        assert not pattern.fullmatch(name), name


def test_nothing_matches_without_data() -> None:
    assert not data.data_pattern(_spec("lab"), "lab").fullmatch("lab-")


def test_docker_data_is_listed_and_removed_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []

    def run(argv, *, uri, timeout=0):
        ran.append(list(argv))
        if "ls" in argv:
            return "dev-db-data-0\ndev-db-data-1\ndev-other\ndev-registry-data\n"
        return ""

    monkeypatch.setattr(hostcmd, "run", run)
    removed = data.delete_data(_spec(), "dev", "docker", "unix:///d.sock")
    assert removed == ["dev-db-data-0", "dev-db-data-1", "dev-registry-data"]
    assert ran[-1] == ["docker", "--host", "unix:///d.sock", "volume", "rm", *removed]


def test_libvirt_data_disks_in_the_data_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = parse_spec(
        {**read_config(FIXTURES.parents[2], "lab"), "virtstack:registry": {"enabled": True}}
    )
    listing = {
        "pool-list": "lab-pool\nlab-data\nother-pool\n",
        "vol-list": (
            " lab-registry-data.qcow2   /p/lab-registry-data.qcow2\n"
            " lab-web-root-ab.qcow2      /p/lab-web-root-ab.qcow2\n"
        ),
    }
    deleted: list[str] = []
    calls: list[list[str]] = []

    def run(argv, *, uri, timeout=0):
        calls.append(list(argv))
        if "vol-delete" in argv:
            deleted.append(argv[-1])
            return ""
        return next(out for cmd, out in listing.items() if cmd in argv)

    monkeypatch.setattr(hostcmd, "run", run)
    assert data.delete_data(spec, "lab", "libvirt", "qemu:///system") == ["lab-registry-data.qcow2"]
    assert deleted == ["lab-registry-data.qcow2"]
    [delete] = [c for c in calls if "vol-delete" in c]
    assert delete[-3:] == ["--pool", "lab-data", "lab-registry-data.qcow2"]
    # Other volumes are still in the data pool: it stays.
    assert not [c for c in calls if "pool-undefine" in c]
    # Once nothing is left in it, the data pool goes as well.
    listing["vol-list"] = " lab-registry-data.qcow2   /p/lab-registry-data.qcow2\n"
    after_delete = iter([listing["vol-list"], ""])
    listing_run = run

    def run_emptying(argv, *, uri, timeout=0):
        if "vol-list" in argv:
            calls.append(list(argv))
            return next(after_delete)
        if argv[-2].startswith("pool-") and argv[-2] != "pool-list":
            calls.append(list(argv))
            return ""
        return listing_run(argv, uri=uri, timeout=timeout)

    monkeypatch.setattr(hostcmd, "run", run_emptying)
    calls.clear()
    data.delete_data(spec, "lab", "libvirt", "qemu:///system")
    assert [c[-2] for c in calls if c[-1] == "lab-data" and "pool" in c[-2]] == [
        "pool-destroy",
        "pool-delete",
        "pool-undefine",
    ]


# -- the engine boundary ----------------------------------------------------------------


def test_the_real_engine_without_a_toolchain(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "p")
    ref = operations.StackRef(project=project, env="dev")
    with pytest.raises(ToolchainMissingError, match="no Pulumi toolchain at"):
        operations.PulumiEngine().preview(ref, lambda event: None)


def test_the_target_override_is_a_copy_of_the_stack_file(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "p")
    original = (project / "stacks" / "Pulumi.lab.yaml").read_text()
    ref = operations.StackRef(project=project, env="lab", target="hypervisor")
    with operations._config_file(ref) as path:
        assert path is not None
        copied = yaml.safe_load(Path(path).read_text())
    assert not Path(path).exists()  # removed after the run
    assert copied["config"]["virtstack:target"] == "hypervisor"
    assert {k: v for k, v in copied["config"].items() if k != "virtstack:target"} == {
        k: v for k, v in yaml.safe_load(original)["config"].items() if k != "virtstack:target"
    }
    assert (project / "stacks" / "Pulumi.lab.yaml").read_text() == original
    with operations._config_file(operations.StackRef(project=project, env="lab")) as none:
        assert none is None


def test_event_log_keeps_the_specific_errors() -> None:
    log = operations.EventLog()
    for event in events("handmade-preview-changes.json")[:2]:
        log(event)
    from pulumi.automation import DiagnosticEvent, EngineEvent

    messages = ("dev-web-lb: image not found\n", "update failed", "dev-web-lb: image not found")
    for message in messages:
        log(EngineEvent(1, 1, diagnostic_event=DiagnosticEvent(message, "never", "error")))
    assert log.errors() == ["dev-web-lb: image not found"]
    assert len(log.events) == 5
