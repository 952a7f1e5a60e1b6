"""Runs that collide, are interrupted or leave things behind: locks, unlock, data checks."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from tests.unit.fixtures.cli_support import (
    FakeAdapter,
    FakeRunner,
    errors,
    invoke,
    make_services,
    outputs,
    set_key,
)
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack import locks
from virtstack.cli import EXIT_BAD_INPUT, EXIT_FAILED
from virtstack.cli.base import EXIT_INTERRUPTED
from virtstack.engines.base import DataItem
from virtstack.errors import OperationError, RunInterruptedError


def test_a_second_command_on_a_held_environment_is_refused_naming_the_holder(
    project: Path,
) -> None:
    held, release = threading.Event(), threading.Event()

    def first() -> None:
        with locks.hold(project, "dev", "up"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        held.wait(10)
        runner = FakeRunner()
        result = invoke(project, make_services(runner), "up", "dev", "--yes")
    finally:
        release.set()
        thread.join()
    assert result.exit_code == EXIT_FAILED
    [line] = errors(result)
    assert line.startswith("error: dev: busy: `virtstack up` (pid ")
    assert runner.ops() == []  # refused before Pulumi was asked anything
    # Released with the holder: the next command runs.
    assert invoke(project, make_services(FakeRunner()), "up", "dev", "--yes").exit_code == 0


def test_an_interrupted_run_exits_130(project: Path) -> None:
    runner = FakeRunner(fail=RunInterruptedError("interrupted: Pulumi cancelled the run"))
    result = invoke(project, make_services(runner), "up", "dev", "--yes")
    assert result.exit_code == EXIT_INTERRUPTED
    assert errors(result) == ["error: interrupted: Pulumi cancelled the run"]


def test_a_ctrl_c_outside_a_pulumi_run_exits_130_saying_so(project: Path) -> None:
    runner = FakeRunner(fail=KeyboardInterrupt())  # e.g. during the engine checks
    result = invoke(project, make_services(runner), "up", "dev", "--yes")
    assert result.exit_code == EXIT_INTERRUPTED
    assert errors(result) == ["error: interrupted: run the command again to converge"]


def test_unlock_clears_a_stale_lock_and_says_whose(project: Path) -> None:
    runner = FakeRunner(locked_by=["pid 4242 (root@ci, since 2026-11-27)"])
    result = invoke(project, make_services(runner), "unlock", "dev")
    assert result.exit_code == 0, result.output
    assert "dev: cleared the lock of pid 4242 (root@ci, since 2026-11-27)" in result.stdout
    again = invoke(project, make_services(runner), "unlock", "dev")
    assert "dev: not locked" in again.stdout


def test_up_refuses_orphaned_data_unless_asked_to_keep_it(project: Path) -> None:
    adapter = FakeAdapter(items=[DataItem(name="dev_old-data_0", owned=True)])
    runner = FakeRunner(stack_outputs=outputs())
    result = invoke(project, make_services(runner, adapter=adapter), "up", "dev", "--yes")
    assert result.exit_code == EXIT_BAD_INPUT
    [line] = errors(result)
    assert "dev_old-data_0 holds data the spec no longer declares" in line
    assert "up" not in runner.ops()
    kept = invoke(
        project,
        make_services(runner, adapter=adapter),
        "up",
        "dev",
        "--yes",
        "--keep-orphaned-data",
    )
    assert kept.exit_code == 0, kept.output
    assert "up" in runner.ops()


def test_migrate_data_reports_each_copy(project: Path) -> None:
    adapter = FakeAdapter(migrated={"dev-db-data-0": "dev_db-data_0"})
    result = invoke(project, make_services(adapter=adapter), "migrate-data", "dev")
    assert result.exit_code == 0, result.output
    assert "dev: copied dev-db-data-0 → dev_db-data_0" in result.stdout


def test_a_plaintext_registry_password_is_refused(project: Path) -> None:
    set_key(project, "dev", "virtstack:registry_password", "hunter2")
    runner = FakeRunner(stacks={"dev"})  # would start before the check, but for this secret
    result = invoke(project, make_services(runner), "up", "dev", "--yes")
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: virtstack:registry_password: must be a Pulumi secret, not plaintext "
        "(pulumi config set --secret virtstack:registry_password < file)"
    ]
    assert runner.ops() == []
    assert "hunter2" not in result.output


def test_scale_writes_the_stack_file_only_after_the_deploy_succeeded(project: Path) -> None:
    path = project / "stacks" / "Pulumi.dev.yaml"
    set_key(project, "dev", "virtstack:registry_password", {"secure": "v1:fake-ciphertext"})
    before = path.read_text()
    runner = FakeRunner(fail=OperationError("up", "dev", ["the engine said no"]))
    result = invoke(project, make_services(runner), "scale", "dev", "web", "3")
    assert result.exit_code == EXIT_FAILED
    assert path.read_text() == before
    ok = invoke(
        project, make_services(FakeRunner(stack_outputs=outputs())), "scale", "dev", "web", "3"
    )
    assert ok.exit_code == 0, ok.output
    assert "replicas: 3" in path.read_text()


def test_preview_says_what_becomes_of_orphaned_data(project: Path) -> None:
    adapter = FakeAdapter(items=[DataItem(name="dev_old-data_0", owned=True)])
    runner = FakeRunner()
    result = invoke(project, make_services(runner, adapter=adapter), "preview", "dev", "--json")
    assert result.exit_code == 0, result.output
    [warning] = json.loads(result.stdout)["warnings"]
    assert warning.startswith("dev_old-data_0 holds data the spec no longer declares")
    assert "it stays on the engine; `up` refuses" in warning


def test_a_misspelt_namespace_is_refused_not_ignored(project: Path) -> None:
    set_key(project, "dev", "virtstak:tiers", [])
    result = invoke(project, make_services(FakeRunner()), "up", "dev", "--yes")
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: virtstak:tiers: not a virtstack key; did you mean virtstack:tiers?"
    ]


def test_publishing_beyond_loopback_warns(project: Path) -> None:
    set_key(project, "dev", "tiers[0].publish_address", "0.0.0.0")
    result = invoke(project, make_services(FakeRunner(stack_outputs=outputs())), "up", "dev", "-y")
    assert result.exit_code == 0, result.output
    assert (
        "warning: virtstack:tiers[0].publish_address: 0.0.0.0 publishes web on every network "
        "this host is on"
    ) in result.stderr


def test_a_public_open_registry_beside_a_public_tier_is_refused(project: Path) -> None:
    set_key(project, "dev", "tiers[0].publish_address", "0.0.0.0")
    set_key(project, "dev", "registry.address", "0.0.0.0")
    set_key(project, "dev", "registry.auth", False)
    runner = FakeRunner()
    result = invoke(project, make_services(runner), "up", "dev", "--yes")
    assert result.exit_code == EXIT_BAD_INPUT
    [line] = errors(result)
    assert line.startswith("error: virtstack:registry.auth: an unauthenticated registry on 0.0.0.0")
    assert runner.ops() == []
