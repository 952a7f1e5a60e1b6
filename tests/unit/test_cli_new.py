"""`virtstack new`: stack files from templates or other environments, and the stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.fixtures.cli_support import (
    FakeRunner,
    config_of,
    errors,
    invoke,
    make_services,
    read_yaml,
)
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack.cli import EXIT_BAD_INPUT
from virtstack.errors import ToolchainMissingError
from virtstack.secrets import PASSWORD_CONFIG_KEY
from virtstack.spec import parse_spec
from virtstack.targets import TARGETS


def test_new_renders_the_target_template_and_initialises_the_stack(project: Path) -> None:
    runner = FakeRunner()
    result = invoke(project, make_services(runner), "new", "qa", "--target", "container")
    assert result.exit_code == 0, result.output
    text = (project / "stacks" / "Pulumi.qa.yaml").read_text()
    assert text.startswith("# qa: a container environment")
    config = config_of(project, "qa")
    spec = parse_spec(config)
    assert spec.target == "container"
    # Free host ports: dev publishes 8080 and its registry listens on 5000.
    assert spec.tiers[0].publish == 8081
    assert spec.registry.port == 5001
    assert runner.ops() == ["init", "set_secret"]
    assert config[PASSWORD_CONFIG_KEY] == {"secure": "v1:fake-ciphertext"}
    assert len(runner.secrets[PASSWORD_CONFIG_KEY]) >= 24


@pytest.mark.parametrize("target", ["hostos", "hypervisor"])
def test_new_vm_environment_gets_a_network_clear_of_the_others(project: Path, target: str) -> None:
    result = invoke(project, make_services(), "new", "vm1", "-t", target)
    assert result.exit_code == 0, result.output
    spec = parse_spec(config_of(project, "vm1"))
    others = [
        n.cidr for env in ("lab", "staging") for n in parse_spec(config_of(project, env)).networks
    ]
    assert spec.target == target
    assert not any(spec.networks[0].cidr.overlaps(o) for o in others)


def test_new_without_toolchain_writes_the_file_and_defers_the_stack(project: Path) -> None:
    class NoToolchain(FakeRunner):
        def init(self, ref):
            raise ToolchainMissingError("no Pulumi toolchain at /x")

    result = invoke(project, make_services(NoToolchain()), "new", "qa", "-t", "container")
    assert result.exit_code == 0, result.output
    assert (project / "stacks" / "Pulumi.qa.yaml").is_file()
    assert "initialised and the registry password generated on first `virtstack up qa`" in (
        result.stdout
    )


def test_new_applies_set_values_and_keeps_the_template_comments(project: Path) -> None:
    result = invoke(
        project,
        make_services(),
        "new", "qa", "-t", "container",
        "--set", "tiers[0].replicas=3",
        "--set", "registry.enabled=false",
        "--set", "tiers[1].env.MODE=fast",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    spec = parse_spec(config_of(project, "qa"))
    assert spec.tiers[0].replicas == 3
    assert spec.registry.enabled is False
    assert spec.tiers[1].env == {"MODE": "fast"}
    text = (project / "stacks" / "Pulumi.qa.yaml").read_text()
    assert "# unix:///var/run/docker.sock here" in text


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("tiers[0].replicas", "expected key=value"),
        ("tiers[0]replicas=3", "not a config path"),
        ("tiers[7].replicas=3", "virtstack:tiers[7]: index out of range (2 items)"),
        ("tiers[0].replicas=[", "not valid YAML"),
        ("tiers[0].replicas=9", "virtstack:tiers[0].replicas: 9 is outside scaling min..max"),
        ("tiers[0].colour=red", "virtstack:tiers[0].colour: unknown key"),
    ],
)
def test_new_with_a_bad_set_writes_nothing(project: Path, setting: str, message: str) -> None:
    runner = FakeRunner()
    services = make_services(runner)
    result = invoke(project, services, "new", "qa", "-t", "container", "--set", setting)
    assert result.exit_code == EXIT_BAD_INPUT
    assert message in result.stderr
    assert not (project / "stacks" / "Pulumi.qa.yaml").exists()
    assert runner.calls == []


def test_new_with_an_unknown_target_names_the_targets(project: Path) -> None:
    result = invoke(project, make_services(), "new", "qa", "--target", "kubernetes")
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        f"error: virtstack:target: unknown target 'kubernetes' (targets: {', '.join(TARGETS)})"
    ]
    assert not (project / "stacks" / "Pulumi.qa.yaml").exists()


def test_new_refuses_an_invalid_environment_name(project: Path) -> None:
    result = invoke(project, make_services(), "new", "QA_1", "-t", "container")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "environment names are DNS labels" in result.stderr


def test_new_refuses_to_overwrite_without_force(project: Path) -> None:
    before = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    result = invoke(project, make_services(), "new", "dev", "-t", "container")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "environment 'dev' exists (--force overwrites it)" in result.stderr
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == before


def test_new_force_overwrites_but_keeps_the_stack_salt_and_secrets(project: Path) -> None:
    path = project / "stacks" / "Pulumi.dev.yaml"
    path.write_text(
        "encryptionsalt: v1:salt\n" + path.read_text()
        + f"  {PASSWORD_CONFIG_KEY}:\n    secure: v1:kept\n"
    )  # fmt: skip
    runner = FakeRunner()
    result = invoke(project, make_services(runner), "new", "dev", "-t", "container", "--force")
    assert result.exit_code == 0, result.output
    document = read_yaml(path)
    assert document["encryptionsalt"] == "v1:salt"
    assert document["config"][PASSWORD_CONFIG_KEY] == {"secure": "v1:kept"}
    assert "set_secret" not in runner.ops()  # the kept password is still valid
    assert parse_spec(document["config"]).tiers[0].name == "web"


def test_new_from_another_environment_drops_its_secrets(project: Path) -> None:
    path = project / "stacks" / "Pulumi.dev.yaml"
    path.write_text(
        "encryptionsalt: v1:salt\n" + path.read_text()
        + f"  {PASSWORD_CONFIG_KEY}:\n    secure: v1:dev-only\n"
    )  # fmt: skip
    runner = FakeRunner()
    result = invoke(
        project, make_services(runner),
        "new", "dev2", "--from", "dev",
        "--set", "tiers[0].publish=8090", "--set", "registry.port=5002",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = (project / "stacks" / "Pulumi.dev2.yaml").read_text()
    assert text.startswith("# dev2: created by `virtstack new dev2 --from dev`.")
    document = read_yaml(project / "stacks" / "Pulumi.dev2.yaml")
    assert "encryptionsalt" not in document
    assert document["config"][PASSWORD_CONFIG_KEY] == {"secure": "v1:fake-ciphertext"}
    assert runner.secrets  # a new password of its own
    spec = parse_spec(document["config"])
    assert [t.name for t in spec.tiers] == ["web", "app", "db"]
    assert spec.tiers[0].publish == 8090


def test_new_from_a_missing_environment(project: Path) -> None:
    result = invoke(project, make_services(), "new", "qa", "--from", "nope")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "no environment 'nope' (environments: cluster, dev, lab, staging)" in result.stderr


def test_new_without_target_and_no_terminal_is_an_error_not_a_prompt(project: Path) -> None:
    result = invoke(project, make_services(interactive=False), "new", "qa", input="container\n")
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [f"error: new qa: --target is required (one of {', '.join(TARGETS)})"]
    assert not (project / "stacks" / "Pulumi.qa.yaml").exists()


def test_new_without_target_on_a_terminal_asks_for_it(project: Path) -> None:
    result = invoke(
        project, make_services(interactive=True), "new", "qa", input="docker\nhypervisor\n"
    )
    assert result.exit_code == 0, result.output
    assert "Please select one of the available options" in result.stdout  # "docker" refused
    assert parse_spec(config_of(project, "qa")).target == "hypervisor"
