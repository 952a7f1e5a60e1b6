"""virtstack.runner: Pulumi's Automation API behind the Runner protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.fixtures.cli_support import (
    FakeAdapter,
    copy_project,
    events,
    read_yaml,
)
from virtstack import pulumicmd, runner
from virtstack.engineevents import DiagnosticEvent, EngineEvent
from virtstack.environment import StackRef, load
from virtstack.errors import ToolchainMissingError


def test_the_real_runner_without_a_toolchain(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "p")
    ref = StackRef(project=project, env="dev")
    with pytest.raises(ToolchainMissingError, match="no Pulumi toolchain at"):
        runner.PulumiRunner().preview(ref, lambda event: None)


def test_the_target_override_is_a_copy_of_the_stack_file(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "p")
    original = project / "stacks" / "Pulumi.lab.yaml"
    before = original.read_text()
    ref = StackRef(project=project, env="lab", target="hypervisor")
    with runner._config_file(ref) as path:
        assert path is not None
        copied = read_yaml(Path(path))
    assert not Path(path).exists()  # removed after the run
    assert copied["config"]["virtstack:target"] == "hypervisor"
    assert {k: v for k, v in copied["config"].items() if k != "virtstack:target"} == {
        k: v for k, v in read_yaml(original)["config"].items() if k != "virtstack:target"
    }
    assert original.read_text() == before
    with runner._config_file(StackRef(project=project, env="lab")) as none:
        assert none is None


def test_event_log_keeps_the_specific_errors() -> None:
    log = runner.EventLog()
    for event in events("handmade-preview-changes.json")[:2]:
        log(event)
    messages = ("dev-web-lb: image not found\n", "update failed", "dev-web-lb: image not found")
    for message in messages:
        log(EngineEvent(1, 1, diagnostic_event=DiagnosticEvent(message, "never", "error")))
    assert log.errors() == ["dev-web-lb: image not found"]
    assert len(log.events) == 5


@pytest.mark.parametrize(("parallel", "expected"), [(1, ["--parallel", "1"]), (None, [])])
def test_the_engine_adapter_sets_how_many_operations_run_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: int | None, expected: list[str]
) -> None:
    project = copy_project(tmp_path / "p")
    ref = StackRef(project=project, env="dev")
    runs: list[list[str]] = []

    def record(pulumi: str, args: list[str], *rest: Any) -> pulumicmd.Finished:
        runs.append(args)
        return pulumicmd.Finished(0, "", "")

    monkeypatch.setattr(runner.PulumiRunner, "init", lambda self, ref: None)
    monkeypatch.setattr(runner, "stack_environment", lambda ref: {})
    monkeypatch.setattr(runner, "_pulumi", lambda ref: "pulumi")
    monkeypatch.setattr(pulumicmd, "run_with_events", record)
    environment = load(ref)
    # The environment's adapter is its target's: stand one in on a copy of the target.
    target = _with_adapter(environment.target, FakeAdapter(parallel=parallel))
    environment = type(environment)(config=environment.config, spec=environment.spec, target=target)
    runner.PulumiRunner().up(ref, environment, lambda event: None)
    runner.PulumiRunner().destroy(ref, environment, lambda event: None)
    assert [args[: args.index("--color")] for args in runs] == [
        ["up", "--yes", "--skip-preview", *expected],
        ["destroy", "--yes", "--skip-preview", *expected],
    ]


def _with_adapter(target: Any, adapter: FakeAdapter) -> Any:
    from dataclasses import replace

    return replace(target, adapter=adapter)
