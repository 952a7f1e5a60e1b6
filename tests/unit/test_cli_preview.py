"""`virtstack preview`: the plan on a terminal, as markdown and JSON; what stops it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.fixtures.cli_support import (
    PREVIEW,
    FakeAdapter,
    FakeRunner,
    errors,
    events,
    invoke,
    make_services,
    set_key,
)
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack.cli import EXIT_BAD_INPUT, EXIT_FAILED
from virtstack.errors import OperationError


def test_preview_shows_the_plan_and_writes_markdown(project: Path, tmp_path: Path) -> None:
    runner = FakeRunner(preview_events=events(PREVIEW))
    before = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    markdown = tmp_path / "dev.md"
    result = invoke(project, make_services(runner), "preview", "dev", "--markdown", str(markdown))
    assert result.exit_code == 0, result.output
    assert "1 to create, 3 to update, 1 to replace, 2 to delete" in result.stdout
    assert "ServiceTier dev-web" in result.stdout
    text = markdown.read_text()
    assert text.startswith("### `dev` (container): 1 to create, 3 to update, 1 to replace")
    assert "| **replace** | `dev-web-lb` |" in text
    # dev's registry uses auth and the copied stack file has no password yet; still a
    # preview changes nothing, the stack file included: no password is generated.
    assert runner.ops() == ["preview"]
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == before


def test_preview_of_a_recorded_engine_stream(project: Path, tmp_path: Path) -> None:
    runner = FakeRunner(preview_events=events("recorded-preview-changes.json"))
    markdown = tmp_path / "dev.md"
    result = invoke(project, make_services(runner), "preview", "dev", "--markdown", str(markdown))
    assert result.exit_code == 0, result.output
    text = markdown.read_text()
    assert text.startswith("### `dev` (container): 1 to create, 2 to replace, 3 to delete")
    assert "`uploads[0].content`: `default-server inter 2s" in text


def test_preview_json_is_only_json(project: Path) -> None:
    runner = FakeRunner(preview_events=events(PREVIEW))
    result = invoke(project, make_services(runner), "preview", "dev", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["counts"] == {
        "create": 1, "update": 3, "replace": 1, "delete": 2, "import": 0, "same": 4,
    }  # fmt: skip
    assert summary["env"] == "dev"
    assert summary["target"] == "container"


def test_preview_markdown_to_stdout(project: Path) -> None:
    runner = FakeRunner(preview_events=events(PREVIEW))
    result = invoke(project, make_services(runner), "preview", "dev", "--markdown", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("### `dev` (container)")


@pytest.mark.parametrize("uri", ["unix:///nonexistent.sock", "tcp://127.0.0.1:1"])
def test_unreachable_docker_engine_stops_before_pulumi(project: Path, uri: str) -> None:
    set_key(project, "dev", "engine.uri", uri)
    set_key(project, "dev", "engine.insecure", True)  # tcp:// without TLS, said out loud
    runner = FakeRunner()
    # The real probe: the docker client is asked and fails (or is missing, equally fatal).
    result = invoke(
        project, make_services(runner, adapter=FakeAdapter(reachable=False)), "preview", "dev"
    )
    assert result.exit_code == EXIT_BAD_INPUT
    [line] = errors(result)
    assert line.startswith(f"error: {uri}: docker engine not reachable (")
    assert line.endswith("start it or fix virtstack:engine.uri")
    assert runner.calls == []


def test_preview_failure_is_one_line_per_engine_error_and_lands_in_markdown(
    project: Path, tmp_path: Path
) -> None:
    runner = FakeRunner(
        fail=OperationError("preview", "dev", ["dev-web-lb: image not found", "second problem"])
    )
    markdown = tmp_path / "dev.md"
    result = invoke(project, make_services(runner), "preview", "dev", "--markdown", str(markdown))
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
    runner = FakeRunner()
    result = invoke(project, make_services(runner), "preview", "dev", "--markdown", str(markdown))
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: virtstack:tiers[1].replicas: 9 is outside scaling min..max (2..6)",
        "error: virtstack:tiers[2].volume: stateful tier 'db' needs a volume",
    ]
    assert "virtstack:tiers[1].replicas: 9 is outside" in markdown.read_text()
    assert runner.calls == []


def test_missing_environment_lists_the_known_ones(project: Path) -> None:
    result = invoke(project, make_services(), "preview", "prod")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "no environment 'prod' (environments: cluster, dev, lab, staging)" in result.stderr


def test_target_override_reaches_the_engine_and_leaves_the_file(project: Path) -> None:
    before = (project / "stacks" / "Pulumi.lab.yaml").read_text()
    runner = FakeRunner(preview_events=events(PREVIEW))
    result = invoke(project, make_services(runner), "preview", "lab", "--target", "hypervisor")
    assert result.exit_code == 0, result.output
    assert runner.calls == [("preview", "lab", "hypervisor")]
    assert (project / "stacks" / "Pulumi.lab.yaml").read_text() == before


def test_target_override_is_checked_like_the_file(project: Path) -> None:
    runner = FakeRunner()
    result = invoke(project, make_services(runner), "preview", "dev", "--target", "hostos")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "virtstack:engine.uri: 'unix:///var/run/docker.sock' is not a libvirt endpoint" in (
        result.stderr
    )
    assert runner.calls == []
