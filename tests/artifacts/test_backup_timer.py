"""The systemd timer and service of `virtstack backup --print-timer`, checked by systemd."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from virtstack.cli import app

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("calendar", ["daily", "*-*-* 03:30:00", "Mon..Fri 22:00"])
def test_units_pass_systemd_analyze_verify(
    calendar: str, require: Callable[[str], str], tmp_path: Path
) -> None:
    analyze = require("systemd-analyze")
    # A project path with a space and a '$': both must reach virtstack as written.
    project = tmp_path / "my $project"
    (project / "stacks").mkdir(parents=True)
    (project / "Pulumi.yaml").write_text("name: virtstack\nruntime: python\n")
    units = tmp_path / "units"
    result = CliRunner().invoke(
        app,
        ["--project", str(project), "backup", "dev", "--print-timer", "--keep-last", "7",
         "--on-calendar", calendar, "--timer-dir", str(units)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    service, timer = units / "virtstack-backup-dev.service", units / "virtstack-backup-dev.timer"
    assert service.is_file()
    assert timer.is_file()
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(timer), str(service)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert not done.stderr.strip(), done.stderr  # nothing ignored, nothing misread
    assert f"OnCalendar={calendar}\n" in timer.read_text()
    exec_start = next(
        line for line in service.read_text().splitlines() if line.startswith("ExecStart=")
    )
    assert '"' + str(project).replace("$", "$$") + '"' in exec_start
    assert exec_start.endswith("backup dev --keep-last=7")


def test_a_calendar_systemd_cannot_read_is_refused(
    require: Callable[[str], str], tmp_path: Path
) -> None:
    require("systemd-analyze")
    result = CliRunner().invoke(
        app,
        ["--project", str(PROJECT), "backup", "dev", "--print-timer",
         "--on-calendar", "nonsense o'clock", "--timer-dir", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "Failed to parse calendar specification" in result.output
