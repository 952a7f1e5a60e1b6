"""Shell completion: environment names from stacks/, tier names from the chosen one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import typer

from tests.unit.fixtures.cli_support import REPO
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack.cli import app
from virtstack.cli.base import complete_env, complete_tier


def _ctx(project: Path, **params: str) -> typer.Context:
    command = typer.main.get_command(app)
    root = typer.Context(command)
    root.params = {"project": str(project)}
    ctx = typer.Context(command, parent=root)
    ctx.params = dict(params)
    return ctx


def test_environment_names(project: Path) -> None:
    assert complete_env(_ctx(project), "") == ["cluster", "dev", "lab", "staging"]
    assert complete_env(_ctx(project), "st") == ["staging"]


def test_tier_names_of_the_environment_given(project: Path) -> None:
    assert complete_tier(_ctx(project, env="dev"), "") == ["web", "app", "db"]
    assert complete_tier(_ctx(project, env="dev"), "a") == ["app"]
    assert complete_tier(_ctx(project, env="nope"), "") == []
    assert complete_tier(_ctx(project), "") == []


def test_outside_a_project_nothing_is_offered(tmp_path: Path) -> None:
    assert complete_env(_ctx(tmp_path), "") == []


def test_the_shell_asks_through_typer() -> None:
    """Click's completion protocol, as the installed shell script runs it."""
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "virtstack")],
        env={**os.environ, "_VIRTSTACK_COMPLETE": "complete_bash",
             "COMP_WORDS": "virtstack scale dev ", "COMP_CWORD": "3"},
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.stdout.split() == ["web", "app", "db"], done.stderr
