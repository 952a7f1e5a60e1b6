"""`virtstack targets` and what every command shares: the project, bad input, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.fixtures.cli_support import FakeAdapter, FakeRunner, invoke, make_services
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack.cli import EXIT_BAD_INPUT
from virtstack.environment import find_project
from virtstack.errors import UsageError
from virtstack.session import Services
from virtstack.targets import TARGETS

# -- project discovery and bad input ----------------------------------------------------


def test_the_project_is_found_from_a_subdirectory(project: Path) -> None:
    (project / "stacks" / "deep").mkdir()
    assert find_project(project / "stacks" / "deep") == project


def test_outside_a_project_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no virtstack project"):
        find_project(tmp_path)
    result = invoke(tmp_path, make_services(), "up", "dev")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "no Pulumi.yaml" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config:\n  virtstack:target: [container\n", "Pulumi.dev.yaml:3: not valid YAML"),
        ("- a\n- b\n", "Pulumi.dev.yaml: a stack file is a mapping with a config: key"),
        ("config: 3\n", "Pulumi.dev.yaml:1: config: is not a mapping"),
        ("config:\n  7: x\n", "Pulumi.dev.yaml:2: config key 7 is not a string"),
    ],
)
def test_a_broken_stack_file_is_bad_input(project: Path, text: str, message: str) -> None:
    (project / "stacks" / "Pulumi.dev.yaml").write_text(text)
    runner = FakeRunner()
    result = invoke(project, make_services(runner), "up", "dev")
    assert result.exit_code == EXIT_BAD_INPUT
    assert message in result.stderr
    assert runner.calls == []


# -- targets ----------------------------------------------------------------------------


def _docker_down() -> Services:
    """Every target's own kind of engine; Docker's does not answer."""
    adapters = {
        "docker": FakeAdapter(reachable=False),
        "libvirt": FakeAdapter(kind="libvirt"),
        "swarm": FakeAdapter(kind="swarm"),
    }
    return Services(
        runner=FakeRunner(),
        interactive=lambda: False,
        adapter=lambda t: adapters[t.adapter.kind],
    )


def test_targets_json_lists_capabilities_and_reachability(project: Path) -> None:
    result = invoke(project, _docker_down(), "targets", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    vm = ["SSH logins", "VMs", "container hosts", "persistent data", "registry"]
    assert {name: t["capabilities"] for name, t in shown.items()} == {
        "hostos": [*vm, "service tiers"],
        # What the hypervisor adds to hostos: a remote host, KVM where it works, autostart.
        "hypervisor": [
            "KVM with the host CPU", "SSH logins", "VMs", "autostart with the host",
            "container hosts", "persistent data", "registry", "remote engine", "service tiers",
        ],
        "container": [
            "persistent data", "registry", "remote engine", "service tiers", "threshold scaling",
        ],
        "swarm": ["persistent data", "registry", "remote engine", "service tiers"],
    }  # fmt: skip
    assert {name: t["engine"] for name, t in shown.items()} == {
        "hostos": "libvirt", "hypervisor": "libvirt", "container": "docker", "swarm": "swarm",
    }  # fmt: skip
    assert {name: t["reachable"] for name, t in shown.items()} == {
        "hostos": True, "hypervisor": True, "container": False, "swarm": True,
    }  # fmt: skip
    assert shown["container"]["detail"] == "refused"


def test_targets_table_shows_capabilities_and_reachability(project: Path) -> None:
    result = invoke(project, _docker_down(), "targets")
    assert result.exit_code == 0, result.output
    for name in TARGETS:
        assert name in result.stdout
    assert "threshold scaling" in result.stdout
    assert "✗ refused" in result.stdout
