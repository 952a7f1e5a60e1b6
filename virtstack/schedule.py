"""Scheduled backups without a daemon of our own: a systemd timer and service a user
installs, rendered from ``templates/systemd/``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from virtstack_components.templating import render

from virtstack.errors import UsageError


def unit_name(env: str) -> str:
    return f"virtstack-backup-{env}"


def virtstack_program() -> str:
    """This installation's ``virtstack`` script (beside the running interpreter)."""
    beside = Path(sys.executable).parent / "virtstack"
    return str(beside) if beside.exists() else (shutil.which("virtstack") or "virtstack")


def timer_units(project: Path, env: str, options: list[str], *, on_calendar: str) -> dict[str, str]:
    """The service and timer that run ``virtstack backup ENV OPTIONS``, by file name."""
    argv = [virtstack_program(), "--project", str(project), "backup", env, *options]
    name = unit_name(env)
    return {
        f"{name}.service": render("systemd/backup.service.j2", env=env, argv=argv),
        f"{name}.timer": render(
            "systemd/backup.timer.j2", env=env, on_calendar=on_calendar, delay="15min"
        ),
    }


def write_units(units: dict[str, str], folder: Path) -> list[Path]:
    """Write the units into ``folder`` and have ``systemd-analyze verify`` check them
    (where it is installed); their paths. A unit systemd would refuse or half-read raises
    :class:`UsageError` with systemd's words."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in units.items():
        path = folder / name
        path.write_text(text)
        written.append(path)
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        done = subprocess.run(
            [analyze, "verify", "--man=no", *map(str, written)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0 or done.stderr.strip():
            lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
            raise UsageError("\n".join(lines) or f"systemd-analyze verify failed on {folder}")
    return written
