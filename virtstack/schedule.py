"""Scheduled backups without a daemon of our own: a systemd timer and service a user
installs, rendered from ``templates/systemd/``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from virtstack_components.templating import render


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
    """Write the units into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in units.items():
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written
