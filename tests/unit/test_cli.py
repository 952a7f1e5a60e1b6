"""The CLI end to end on a copy of the project, with only the Pulumi engine stood in for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.unit.fixtures.cli_support import (
    FakeEngine,
    copy_project,
    events,
    invoke,
    make_services,
)
from virtstack import stackedit
from virtstack.cli import EXIT_BAD_INPUT, EXIT_FAILED, find_project
from virtstack.errors import OperationError, SpecError, ToolchainMissingError, UsageError
from virtstack.health import Reachability, ServerHealth, TierHealth, probe
from virtstack.operations import PASSWORD_CONFIG_KEY, StackOutput
from virtstack.spec import parse_spec
from virtstack.targets import TARGETS

PREVIEW = "handmade-preview-changes.json"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project layout: commands may write its stacks/ freely."""
    return copy_project(tmp_path / "project")


def config_of(project: Path, env: str) -> dict:
    return yaml.safe_load((project / "stacks" / f"Pulumi.{env}.yaml").read_text())["config"]


def set_key(project: Path, env: str, path: str, value: object) -> None:
    """Edit a stack file of the test project (as a user would before running a command)."""
    file = project / "stacks" / f"Pulumi.{env}.yaml"
    document = stackedit.load_file(file)
    stackedit.set_value(document, stackedit.parse_path(path), value)
    file.write_text(stackedit.dump(document))


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


# -- project discovery ------------------------------------------------------------------


def test_the_project_is_found_from_a_subdirectory(project: Path) -> None:
    (project / "stacks" / "deep").mkdir()
    assert find_project(project / "stacks" / "deep") == project


def test_outside_a_project_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no virtstack project"):
        find_project(tmp_path)
    result = invoke(tmp_path, make_services(), "up", "dev")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "no Pulumi.yaml" in result.stderr


# -- targets ----------------------------------------------------------------------------


def test_targets_matrix_is_the_one_specs_are_checked_against(project: Path) -> None:
    def docker_down(engine: str, uri: str) -> Reachability:
        return Reachability(engine=engine, uri=uri, reachable=engine != "docker", detail="why")

    result = invoke(project, make_services(probe=docker_down), "targets", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert set(shown) == set(TARGETS)
    for name, target in TARGETS.items():
        assert shown[name]["capabilities"] == sorted(c.value for c in target.capabilities)
        assert shown[name]["reachable"] is (target.engine != "docker")


def test_targets_table_shows_capabilities_and_reachability(project: Path) -> None:
    def docker_down(engine: str, uri: str) -> Reachability:
        ok = engine != "docker"
        return Reachability(engine=engine, uri=uri, reachable=ok, detail="up" if ok else "refused")

    result = invoke(project, make_services(probe=docker_down), "targets")
    assert result.exit_code == 0, result.output
    for name in TARGETS:
        assert name in result.stdout
    assert "threshold scaling" in result.stdout
    assert "✗ refused" in result.stdout


# -- new --------------------------------------------------------------------------------


def test_new_renders_the_target_template_and_initialises_the_stack(project: Path) -> None:
    engine = FakeEngine()
    result = invoke(project, make_services(engine), "new", "qa", "--target", "container")
    assert result.exit_code == 0, result.output
    text = (project / "stacks" / "Pulumi.qa.yaml").read_text()
    assert text.startswith("# qa: a container environment")
    config = config_of(project, "qa")
    spec = parse_spec(config)
    assert spec.target == "container"
    # Free host ports: dev publishes 8080 and its registry listens on 5000.
    assert spec.tiers[0].publish == 8081
    assert spec.registry.port == 5001
    assert engine.ops() == ["init", "set_secret"]
    assert config[PASSWORD_CONFIG_KEY] == {"secure": "v1:fake-ciphertext"}
    assert len(engine.secrets[PASSWORD_CONFIG_KEY]) >= 24


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
    class NoToolchain(FakeEngine):
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
    engine = FakeEngine()
    services = make_services(engine)
    result = invoke(project, services, "new", "qa", "-t", "container", "--set", setting)
    assert result.exit_code == EXIT_BAD_INPUT
    assert message in result.stderr
    assert not (project / "stacks" / "Pulumi.qa.yaml").exists()
    assert engine.calls == []


def test_new_with_an_unknown_target_names_the_targets(project: Path) -> None:
    result = invoke(project, make_services(), "new", "qa", "--target", "kubernetes")
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: virtstack:target: unknown target 'kubernetes' "
        "(targets: hostos, hypervisor, container)"
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
    engine = FakeEngine()
    result = invoke(project, make_services(engine), "new", "dev", "-t", "container", "--force")
    assert result.exit_code == 0, result.output
    document = yaml.safe_load(path.read_text())
    assert document["encryptionsalt"] == "v1:salt"
    assert document["config"][PASSWORD_CONFIG_KEY] == {"secure": "v1:kept"}
    assert "set_secret" not in engine.ops()  # the kept password is still valid
    assert parse_spec(document["config"]).tiers[0].name == "web"


def test_new_from_another_environment_drops_its_secrets(project: Path) -> None:
    path = project / "stacks" / "Pulumi.dev.yaml"
    path.write_text(
        "encryptionsalt: v1:salt\n" + path.read_text()
        + f"  {PASSWORD_CONFIG_KEY}:\n    secure: v1:dev-only\n"
    )  # fmt: skip
    engine = FakeEngine()
    result = invoke(
        project, make_services(engine),
        "new", "dev2", "--from", "dev",
        "--set", "tiers[0].publish=8090", "--set", "registry.port=5002",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = (project / "stacks" / "Pulumi.dev2.yaml").read_text()
    assert text.startswith("# dev2: created by `virtstack new dev2 --from dev`.")
    document = yaml.safe_load(text)
    assert "encryptionsalt" not in document
    assert document["config"][PASSWORD_CONFIG_KEY] == {"secure": "v1:fake-ciphertext"}
    assert engine.secrets  # a new password of its own
    spec = parse_spec(document["config"])
    assert [t.name for t in spec.tiers] == ["web", "app", "db"]
    assert spec.tiers[0].publish == 8090


def test_new_from_a_missing_environment(project: Path) -> None:
    result = invoke(project, make_services(), "new", "qa", "--from", "nope")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "no environment 'nope' (environments: dev, lab, staging)" in result.stderr


def test_new_without_target_and_no_terminal_is_an_error_not_a_prompt(project: Path) -> None:
    result = invoke(project, make_services(interactive=False), "new", "qa", input="container\n")
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: new qa: --target is required (one of hostos, hypervisor, container)"
    ]
    assert not (project / "stacks" / "Pulumi.qa.yaml").exists()


def test_new_without_target_on_a_terminal_asks_for_it(project: Path) -> None:
    result = invoke(
        project, make_services(interactive=True), "new", "qa", input="docker\nhypervisor\n"
    )
    assert result.exit_code == 0, result.output
    assert "Please select one of the available options" in result.stdout  # "docker" refused
    assert parse_spec(config_of(project, "qa")).target == "hypervisor"


# -- preview ----------------------------------------------------------------------------


def test_preview_shows_the_plan_and_writes_markdown(project: Path, tmp_path: Path) -> None:
    engine = FakeEngine(preview_events=events(PREVIEW))
    markdown = tmp_path / "dev.md"
    result = invoke(project, make_services(engine), "preview", "dev", "--markdown", str(markdown))
    assert result.exit_code == 0, result.output
    assert "1 to create, 3 to update, 1 to replace, 2 to delete" in result.stdout
    assert "ServiceTier dev-web" in result.stdout
    text = markdown.read_text()
    assert text.startswith("### `dev` (container): 1 to create, 3 to update, 1 to replace")
    assert "| **replace** | `dev-web-lb` |" in text
    # dev's registry uses auth and the copied stack file has no password yet.
    assert engine.ops() == ["set_secret", "preview"]


def test_preview_of_a_recorded_engine_stream(project: Path, tmp_path: Path) -> None:
    engine = FakeEngine(preview_events=events("recorded-preview-changes.json"))
    markdown = tmp_path / "dev.md"
    result = invoke(project, make_services(engine), "preview", "dev", "--markdown", str(markdown))
    assert result.exit_code == 0, result.output
    text = markdown.read_text()
    assert text.startswith("### `dev` (container): 1 to create, 2 to replace, 3 to delete")
    assert "`uploads[0].content`: `default-server inter 2s" in text


def test_preview_json_is_only_json(project: Path) -> None:
    engine = FakeEngine(preview_events=events(PREVIEW))
    result = invoke(project, make_services(engine), "preview", "dev", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["counts"] == {
        "create": 1, "update": 3, "replace": 1, "delete": 2, "import": 0, "same": 4,
    }  # fmt: skip
    assert summary["env"] == "dev"
    assert summary["target"] == "container"


def test_preview_markdown_to_stdout(project: Path) -> None:
    engine = FakeEngine(preview_events=events(PREVIEW))
    result = invoke(project, make_services(engine), "preview", "dev", "--markdown", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("### `dev` (container)")


@pytest.mark.parametrize("uri", ["unix:///nonexistent.sock", "tcp://127.0.0.1:1"])
def test_unreachable_docker_engine_stops_before_pulumi(project: Path, uri: str) -> None:
    set_key(project, "dev", "engine.uri", uri)
    engine = FakeEngine()
    # The real probe: the docker client is asked and fails (or is missing, equally fatal).
    result = invoke(project, make_services(engine, probe=probe), "preview", "dev")
    assert result.exit_code == EXIT_FAILED
    [line] = errors(result)
    assert line.startswith(f"error: {uri}: docker engine not reachable (")
    assert line.endswith("start it or fix virtstack:engine.uri")
    assert engine.calls == []


def test_preview_failure_is_one_line_per_engine_error_and_lands_in_markdown(
    project: Path, tmp_path: Path
) -> None:
    engine = FakeEngine(
        fail=OperationError("preview", "dev", ["dev-web-lb: image not found", "second problem"])
    )
    markdown = tmp_path / "dev.md"
    result = invoke(project, make_services(engine), "preview", "dev", "--markdown", str(markdown))
    assert result.exit_code == EXIT_FAILED
    assert errors(result) == [
        "error: preview dev: dev-web-lb: image not found",
        "error: preview dev: second problem",
    ]
    text = markdown.read_text()
    assert text.startswith("### `dev` (container): preview failed")
    assert "> - dev-web-lb: image not found" in text


def test_spec_errors_name_the_key_and_reach_the_markdown(project: Path, tmp_path: Path) -> None:
    set_key(project, "dev", "tiers[1].replicas", 9)
    set_key(project, "dev", "tiers[2].volume", None)
    markdown = tmp_path / "dev.md"
    engine = FakeEngine()
    result = invoke(project, make_services(engine), "preview", "dev", "--markdown", str(markdown))
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: virtstack:tiers[1].replicas: 9 is outside scaling min..max (2..6)",
        "error: virtstack:tiers[2].volume: stateful tier 'db' needs a volume",
    ]
    assert "virtstack:tiers[1].replicas: 9 is outside" in markdown.read_text()
    assert engine.calls == []


def test_missing_environment_lists_the_known_ones(project: Path) -> None:
    result = invoke(project, make_services(), "preview", "prod")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "no environment 'prod' (environments: dev, lab, staging)" in result.stderr


def test_target_override_reaches_the_engine_and_leaves_the_file(project: Path) -> None:
    before = (project / "stacks" / "Pulumi.lab.yaml").read_text()
    engine = FakeEngine(preview_events=events(PREVIEW))
    result = invoke(project, make_services(engine), "preview", "lab", "--target", "hypervisor")
    assert result.exit_code == 0, result.output
    assert engine.calls == [("preview", "lab", "hypervisor")]
    assert (project / "stacks" / "Pulumi.lab.yaml").read_text() == before


def test_target_override_is_checked_like_the_file(project: Path) -> None:
    engine = FakeEngine()
    result = invoke(project, make_services(engine), "preview", "dev", "--target", "hostos")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "virtstack:engine.uri: 'unix:///var/run/docker.sock' is not a libvirt endpoint" in (
        result.stderr
    )
    assert engine.calls == []


# -- up ---------------------------------------------------------------------------------


def _outputs() -> dict[str, StackOutput]:
    return {
        "target": StackOutput("container", False),
        "urls": StackOutput({"web": "http://127.0.0.1:8080/"}, False),
        "registry": StackOutput("127.0.0.1:5000", False),
        "registry_username": StackOutput("virtstack", False),
        "registry_password": StackOutput("hunter2-secret", True),
        "tiers": StackOutput({"web": {"endpoint": "dev-web:80", "replicas": ["dev-web-0"]}}, False),
    }


def test_up_generates_the_password_once_and_summarises(project: Path) -> None:
    engine = FakeEngine(run_events=events("recorded-up-create.json"), stack_outputs=_outputs())
    services = make_services(engine)
    first = invoke(project, services, "up", "dev")
    assert first.exit_code == 0, first.output
    assert engine.ops() == ["set_secret", "up", "outputs"]
    assert "dev: 7 created" in first.stdout
    assert "http://127.0.0.1:8080/" in first.stdout
    assert "127.0.0.1:5000" in first.stdout
    assert "hunter2-secret" not in first.stdout
    second = invoke(project, services, "up", "dev")
    assert second.exit_code == 0, second.output
    assert engine.ops() == ["set_secret", "up", "outputs", "up", "outputs"]


def test_up_on_a_terminal_shows_the_plan_and_asks(project: Path) -> None:
    engine = FakeEngine(preview_events=events(PREVIEW), stack_outputs=_outputs())
    services = make_services(engine, interactive=True)
    declined = invoke(project, services, "up", "dev", input="n\n")
    assert declined.exit_code == EXIT_FAILED
    assert "ServiceTier dev-web" in declined.stdout
    assert "Apply these changes to dev?" in declined.stdout
    assert engine.ops() == ["set_secret", "preview"]
    accepted = invoke(project, services, "up", "dev", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert engine.ops()[-3:] == ["preview", "up", "outputs"]
    engine.calls.clear()
    assert invoke(project, services, "up", "dev", "--yes").exit_code == 0
    assert engine.ops() == ["up", "outputs"]


def test_up_on_an_unreachable_engine_changes_nothing(project: Path) -> None:
    set_key(project, "dev", "engine.uri", "unix:///nonexistent.sock")
    before = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    engine = FakeEngine()
    result = invoke(project, make_services(engine, probe=probe), "up", "dev")
    assert result.exit_code == EXIT_FAILED
    assert "unix:///nonexistent.sock: docker engine not reachable" in result.stderr
    assert engine.calls == []
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == before


@pytest.mark.parametrize("command", ["up", "preview", "scale"])
def test_live_engine_problems_stop_the_run_before_the_engine(project: Path, command: str) -> None:
    engine = FakeEngine()
    services = make_services(engine)

    def taken(spec: object, env: str) -> None:
        raise SpecError(["virtstack:tiers[0].publish: 127.0.0.1:8080 is already in use by x"])

    services.preflight = taken
    args = ["scale", "dev", "web", "3"] if command == "scale" else [command, "dev"]
    before = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    result = invoke(project, services, *args)
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == before
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: virtstack:tiers[0].publish: 127.0.0.1:8080 is already in use by x"
    ]
    assert engine.ops() == []


def test_up_failure_exits_1_with_the_engine_errors(project: Path) -> None:
    engine = FakeEngine(fail=OperationError("up", "lab", ["lab-pool: permission denied"]))
    result = invoke(project, make_services(engine), "up", "lab")
    assert result.exit_code == EXIT_FAILED
    assert errors(result) == ["error: up lab: lab-pool: permission denied"]


# -- destroy ----------------------------------------------------------------------------


def test_destroy_without_yes_and_no_terminal_is_refused(project: Path) -> None:
    engine = FakeEngine()
    result = invoke(project, make_services(engine), "destroy", "dev", input="y\n")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "pass --yes to confirm (no terminal to ask on)" in result.stderr
    assert engine.calls == []


def test_destroy_asks_on_a_terminal_and_no_means_no(project: Path) -> None:
    engine = FakeEngine()
    result = invoke(project, make_services(engine, interactive=True), "destroy", "dev", input="n\n")
    assert result.exit_code == EXIT_FAILED
    assert "Destroy dev on unix:///var/run/docker.sock (its data is kept)?" in result.stdout
    assert engine.calls == []


def test_destroy_keeps_data_and_says_so(project: Path) -> None:
    engine = FakeEngine(run_events=events("recorded-destroy.json"))
    services = make_services(engine, interactive=True, data=["dev-db-data-0", "dev-registry-data"])
    result = invoke(project, services, "destroy", "dev", input="y\n")
    assert result.exit_code == 0, result.output
    assert engine.ops() == ["destroy"]
    assert "dev: 3 deleted" in result.stdout
    assert "kept data: dev-db-data-0, dev-registry-data (destroy dev --delete-data" in result.stdout
    assert services.delete_data.calls == []


def test_destroy_delete_data_removes_the_spec_volumes(project: Path) -> None:
    engine = FakeEngine()
    services = make_services(engine, data=["dev-db-data-0", "dev-registry-data"])
    result = invoke(project, services, "destroy", "dev", "--yes", "--delete-data")
    assert result.exit_code == 0, result.output
    [(spec, env, kind, uri)] = services.delete_data.calls
    assert (env, kind, uri) == ("dev", "docker", "unix:///var/run/docker.sock")
    assert spec.tiers[2].volume.name == "db-data"
    assert "deleted data: dev-db-data-0, dev-registry-data" in result.stdout


def test_destroy_on_an_unreachable_engine(project: Path) -> None:
    set_key(project, "dev", "engine.uri", "tcp://127.0.0.1:1")
    engine = FakeEngine()
    result = invoke(project, make_services(engine, probe=probe), "destroy", "dev", "--yes")
    assert result.exit_code == EXIT_FAILED
    assert "tcp://127.0.0.1:1: docker engine not reachable" in result.stderr
    assert engine.calls == []


# -- refresh ----------------------------------------------------------------------------


def test_refresh_runs_and_summarises(project: Path) -> None:
    engine = FakeEngine(run_events=events(PREVIEW))
    result = invoke(project, make_services(engine), "refresh", "dev")
    assert result.exit_code == 0, result.output
    assert engine.ops() == ["refresh"]
    assert "dev: " in result.stdout


# -- status -----------------------------------------------------------------------------


def test_status_shows_outputs_and_backend_health(project: Path) -> None:
    health = [
        TierHealth(
            tier="web",
            lb="dev-web-lb",
            servers=[
                ServerHealth(name="dev-web-1", address="", status="UP", check="L7OK 200"),
                ServerHealth(name="dev-web-2", address="", status="DOWN", check="L4CON"),
            ],
            unused_slots=8,
        )
    ]
    engine = FakeEngine(stack_outputs=_outputs())
    services = make_services(engine, lb_health=health)
    result = invoke(project, services, "status", "dev")
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8080/" in result.stdout
    assert "hunter2-secret" not in result.stdout
    for text in ("dev-web-lb", "dev-web-1", "UP", "DOWN", "L4CON", "(8 empty slots)"):
        assert text in result.stdout
    [(_, env, kind, _, values)] = services.lb_health.calls
    assert (env, kind, values["registry_password"]) == ("dev", "docker", "[secret]")


def test_status_json(project: Path) -> None:
    engine = FakeEngine(stack_outputs=_outputs())
    result = invoke(project, make_services(engine), "status", "dev", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["outputs"]["urls"] == {"web": "http://127.0.0.1:8080/"}
    assert shown["outputs"]["registry_password"] == "[secret]"


def test_status_on_an_unreachable_engine_still_shows_outputs(project: Path) -> None:
    set_key(project, "dev", "engine.uri", "unix:///nonexistent.sock")
    engine = FakeEngine(stack_outputs=_outputs())
    services = make_services(engine, probe=probe)
    result = invoke(project, services, "status", "dev")
    assert result.exit_code == EXIT_FAILED
    assert "http://127.0.0.1:8080/" in result.stdout
    assert "unix:///nonexistent.sock: docker engine not reachable" in result.stderr
    assert services.lb_health.calls == []


# -- scale ------------------------------------------------------------------------------


def test_scale_writes_only_the_replica_count_then_runs_up(project: Path) -> None:
    path = project / "stacks" / "Pulumi.dev.yaml"
    before = path.read_text().splitlines()
    engine = FakeEngine(stack_outputs=_outputs())
    result = invoke(project, make_services(engine), "scale", "dev", "app", "5")
    assert result.exit_code == 0, result.output
    after = path.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=False) if a != b]
    assert changed == [("      replicas: 2", "      replicas: 5")]
    assert len(after) == len(before) + 2  # the generated password secret, appended
    assert parse_spec(config_of(project, "dev")).tier("app").replicas == 5
    assert "virtstack:tiers[1].replicas: 2 → 5" in result.stdout
    assert engine.ops() == ["set_secret", "up", "outputs"]


@pytest.mark.parametrize("replicas", ["1", "7"])
def test_scale_outside_min_max_names_the_key(project: Path, replicas: str) -> None:
    before = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    engine = FakeEngine()
    result = invoke(project, make_services(engine), "scale", "dev", "web", replicas)
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        f"error: virtstack:tiers[0].replicas: {replicas} is outside scaling min..max (2..6)"
    ]
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == before
    assert engine.calls == []


def test_scale_unknown_tier(project: Path) -> None:
    result = invoke(project, make_services(), "scale", "dev", "cache", "2")
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: virtstack:tiers: no tier named 'cache' (tiers: ['web', 'app', 'db'])"
    ]


def test_scale_negative_is_rejected_by_the_cli(project: Path) -> None:
    result = invoke(project, make_services(), "scale", "dev", "web", "-1")
    assert result.exit_code == EXIT_BAD_INPUT


def test_scale_on_an_unreachable_engine_leaves_the_file(project: Path) -> None:
    set_key(project, "dev", "engine.uri", "unix:///nonexistent.sock")
    before = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    engine = FakeEngine()
    result = invoke(project, make_services(engine, probe=probe), "scale", "dev", "web", "3")
    assert result.exit_code == EXIT_FAILED
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == before
    assert engine.calls == []


def test_engine_errors_outside_virtstack_are_not_swallowed(project: Path) -> None:
    # Only VirtstackError is a message; a bug stays a traceback (exit code != 1/2 contract).
    engine = FakeEngine(fail=RuntimeError("bug"))
    result = invoke(project, make_services(engine), "up", "lab")
    assert isinstance(result.exception, RuntimeError)


# -- autoscale --------------------------------------------------------------------------


def _haproxy_counter(backend: str, requests: int) -> str:
    return f"# pxname,svname,req_tot,type\n{backend},BACKEND,{requests},1\n"


def test_autoscale_adds_a_replica_above_the_threshold(project: Path) -> None:
    # dev: web and app have 2 replicas and a rule of 500 requests/replica/minute.
    totals = {"dev-web-lb": iter([0, 25]), "dev-app-lb": iter([0, 4])}  # over 1 s
    engine = FakeEngine(stack_outputs=_outputs())
    services = make_services(engine)
    services.read_stats = lambda uri, lb: _haproxy_counter(
        f"be_{lb.removesuffix('-lb')}", next(totals[lb])
    )
    result = invoke(project, services, "autoscale", "dev", "--window", "1")
    assert result.exit_code == 0, result.output
    assert "web: 750 requests/replica/min (threshold 500), 2 replicas → 3" in result.stdout
    assert "app: 120 requests/replica/min (threshold 500), 2 replicas stays" in result.stdout
    spec = parse_spec(stackedit.plain(stackedit.load_file(project / "stacks" / "Pulumi.dev.yaml")))
    assert spec.tier("web").replicas == 3
    assert spec.tier("app").replicas == 2
    assert "up" in engine.ops()


def test_autoscale_is_refused_on_a_vm_target(project: Path) -> None:
    engine = FakeEngine()
    result = invoke(project, make_services(engine), "autoscale", "lab", "--window", "1")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "the hostos target has no threshold scaling" in result.stderr
    assert engine.ops() == []


def test_libvirt_environments_run_one_operation_at_a_time(project: Path) -> None:
    from virtstack.operations import StackRef, _parallel

    assert _parallel(StackRef(project=project, env="lab")) == 1
    assert _parallel(StackRef(project=project, env="staging")) == 1
    assert _parallel(StackRef(project=project, env="dev")) is None
    # The target override decides, not the file.
    assert _parallel(StackRef(project=project, env="staging", target="hostos")) == 1
