"""`virtstack up` and `refresh`: the password, the plan and question, the summary."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.unit.fixtures.cli_support import (
    PREVIEW,
    FakeAdapter,
    FakeRunner,
    errors,
    events,
    events_from_json,
    invoke,
    make_services,
    outputs,
    set_key,
)
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack.cli import EXIT_BAD_INPUT, EXIT_FAILED
from virtstack.errors import OperationError
from virtstack.secrets import PASSWORD_CONFIG_KEY

# -- up -----------------------------------------------------------------------------------


def test_up_generates_the_password_once_and_summarises(project: Path) -> None:
    runner = FakeRunner(run_events=events("recorded-up-create.json"), stack_outputs=outputs())
    services = make_services(runner)
    first = invoke(project, services, "up", "dev")
    assert first.exit_code == 0, first.output
    assert runner.ops() == ["set_secret", "up", "outputs"]
    assert "dev: 7 created" in first.stdout
    assert "http://127.0.0.1:8080/" in first.stdout
    assert "127.0.0.1:5000" in first.stdout
    assert "hunter2-secret" not in first.stdout
    second = invoke(project, services, "up", "dev")
    assert second.exit_code == 0, second.output
    # The password made, the run starts while the engine is checked (virtstack.gate).
    assert runner.ops() == ["set_secret", "up", "outputs", "start_up", "up", "outputs"]


def test_up_prints_the_programs_warnings_once_each(project: Path) -> None:
    warned = events_from_json(
        {"sequence": i, "timestamp": i, "diagnosticEvent": {
            "message": "KVM does not work on this host: emulated\n", "color": "never",
            "severity": "warning",
        }}
        for i in (1, 2)
    )  # fmt: skip
    runner = FakeRunner(run_events=[*events("recorded-up-create.json"), *warned])
    result = invoke(project, make_services(runner), "up", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning: KVM does not work on this host: emulated\n") == 1
    assert "dev: 7 created" in result.stdout


def test_up_on_a_terminal_shows_the_plan_and_asks(project: Path) -> None:
    runner = FakeRunner(preview_events=events(PREVIEW), stack_outputs=outputs())
    services = make_services(runner, interactive=True)
    declined = invoke(project, services, "up", "dev", input="n\n")
    assert declined.exit_code == EXIT_FAILED
    assert "ServiceTier dev-web" in declined.stdout
    assert "Apply these changes to dev?" in declined.stdout
    assert runner.ops() == ["set_secret", "preview"]
    accepted = invoke(project, services, "up", "dev", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert runner.ops()[-3:] == ["preview", "up", "outputs"]
    runner.calls.clear()
    assert invoke(project, services, "up", "dev", "--yes").exit_code == 0
    assert runner.ops() == ["start_up", "up", "outputs"]


def test_up_on_an_unreachable_engine_changes_nothing(project: Path) -> None:
    set_key(project, "dev", "engine.uri", "unix:///nonexistent.sock")
    before = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    runner = FakeRunner()
    services = make_services(runner, adapter=FakeAdapter(reachable=False))
    result = invoke(project, services, "up", "dev")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "unix:///nonexistent.sock: docker engine not reachable" in result.stderr
    assert runner.calls == []
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == before


def test_checks_that_fail_while_the_run_starts_stop_it_before_it_goes_on(
    project: Path,
) -> None:
    runner = FakeRunner(run_events=events("recorded-up-create.json"))
    assert invoke(project, make_services(runner), "up", "dev").exit_code == 0  # the password
    runner.calls.clear()
    calls: list[Any] = runner.calls  # the adapter's checks and the runner's steps, in order
    taken = FakeAdapter(
        problems=["virtstack:tiers[0].publish: 127.0.0.1:8080 is already in use by x"],
        calls=calls,
    )
    result = invoke(project, make_services(runner, adapter=taken), "up", "dev")
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: virtstack:tiers[0].publish: 127.0.0.1:8080 is already in use by x"
    ]
    steps = [c[0] for c in calls]
    assert steps[0] == "start_up"  # Pulumi started first, then the engine was asked
    assert "preflight" in steps
    assert "up" not in steps  # and the run never went on


def test_a_spec_error_found_while_the_run_starts_stops_it(project: Path) -> None:
    runner = FakeRunner(run_events=events("recorded-up-create.json"))
    assert invoke(project, make_services(runner), "up", "dev").exit_code == 0  # the stack
    runner.calls.clear()
    set_key(project, "dev", "virtstack:tiers[0].replicas", -1)
    result = invoke(project, make_services(runner), "up", "dev", "--yes")
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: virtstack:tiers[0].replicas: Input should be greater than or equal to 0 (got -1)"
    ]
    assert runner.ops() == ["start_up"]  # started from the file, stopped before it went on


def test_a_run_on_a_stack_not_made_yet_waits_for_the_checked_spec(project: Path) -> None:
    assert invoke(project, make_services(FakeRunner()), "up", "dev").exit_code == 0
    fresh = FakeRunner(run_events=events("recorded-up-create.json"))  # no stack in its backend
    good = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    set_key(project, "dev", "virtstack:tiers[0].replicas", -1)
    refused = invoke(project, make_services(fresh), "up", "dev", "--yes")
    assert refused.exit_code == EXIT_BAD_INPUT
    assert fresh.ops() == []  # a config with errors makes no stack
    (project / "stacks" / "Pulumi.dev.yaml").write_text(good)
    again = invoke(project, make_services(fresh), "up", "dev", "--yes")
    assert again.exit_code == 0, again.output
    assert fresh.ops() == ["up", "outputs"]


def test_up_starts_pulumi_before_the_spec_models_load(project: Path) -> None:
    """pydantic (the spec's models; typer loads it too from 0.29 on) loads while Pulumi starts."""
    set_key(project, "dev", PASSWORD_CONFIG_KEY, {"secure": "v1:fake-ciphertext"})
    code = textwrap.dedent("""
        import sys
        from virtstack import runner
        from virtstack.cli import main

        def start_up(self, ref, target):
            print(sorted(m for m in ("pydantic", "virtstack.spec") if m in sys.modules))
            raise SystemExit(0)

        runner.PulumiRunner.has_stack = lambda self, ref: True
        runner.PulumiRunner.start_up = start_up
        sys.argv = ["virtstack", "--project", sys.argv[1], "up", "dev", "--yes"]
        main()
    """)
    argv = [sys.executable, "-c", code, str(project)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


@pytest.mark.parametrize("command", ["up", "preview", "scale"])
def test_live_engine_problems_stop_the_run_before_the_engine(project: Path, command: str) -> None:
    runner = FakeRunner()
    taken = FakeAdapter(
        problems=["virtstack:tiers[0].publish: 127.0.0.1:8080 is already in use by x"]
    )
    services = make_services(runner, adapter=taken)
    args = ["scale", "dev", "web", "3"] if command == "scale" else [command, "dev"]
    before = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    result = invoke(project, services, *args)
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == before
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: virtstack:tiers[0].publish: 127.0.0.1:8080 is already in use by x"
    ]
    assert runner.ops() == []


def test_up_failure_exits_1_with_the_engine_errors(project: Path) -> None:
    runner = FakeRunner(fail=OperationError("up", "lab", ["lab-pool: permission denied"]))
    result = invoke(project, make_services(runner), "up", "lab")
    assert result.exit_code == EXIT_FAILED
    assert errors(result) == ["error: up lab: lab-pool: permission denied"]


# -- refresh ------------------------------------------------------------------------------


def test_refresh_runs_and_summarises(project: Path) -> None:
    runner = FakeRunner(run_events=events(PREVIEW))
    result = invoke(project, make_services(runner), "refresh", "dev")
    assert result.exit_code == 0, result.output
    assert runner.ops() == ["refresh"]
    assert "dev: " in result.stdout


def test_refresh_runs_inside_the_registry_tunnel_up_opens(project: Path) -> None:
    # One record of both: the order shows Pulumi refreshed while the tunnel was open.
    calls: list[Any] = []
    adapter = FakeAdapter(calls=calls)
    runner = FakeRunner(run_events=events(PREVIEW), calls=calls)
    result = invoke(project, make_services(runner, adapter=adapter), "refresh", "dev")
    assert result.exit_code == 0, result.output
    assert [c[0] for c in calls] == ["probe", "registry_tunnel", "refresh", "close_tunnel"]
    [(_, spec, uri)] = [c for c in calls if c[0] == "registry_tunnel"]
    assert spec.registry.enabled
    assert spec.tiers
    assert uri == "unix:///var/run/docker.sock"
