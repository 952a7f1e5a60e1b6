"""Driving the real CLI in a throwaway project: its own stacks/ and file-backend state.

The project links the repository's program, venv and toolchain, so nothing the tests do
touches the repository's stacks or state.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from typer.testing import CliRunner, Result

from tests.engine.harness import PROJECT, docker_inspect, run
from tests.support import unavailable
from virtstack import stackfiles
from virtstack.cli import app

IMAGES = ("virtstack/busybox:1", "virtstack/base:bookworm-1", "virtstack/demo:1")


def make_project(tmp_path: Path) -> Path:
    """A project directory with the repo's program, venv and toolchain, and no stacks."""
    toolchain = PROJECT / ".virtstack" / "toolchain"
    if not (toolchain / "bin" / "pulumi").exists():
        unavailable(f"no Pulumi toolchain at {toolchain} (tools/toolchain.sh)")
    if run("docker", "version", check=False).returncode != 0:
        unavailable("no Docker engine")
    for image in IMAGES:
        if docker_inspect(image) is None:
            unavailable(f"image {image} is not built (images/build.sh)")
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    shutil.copy2(PROJECT / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copy2(PROJECT / "stacks" / "__main__.py", project / "stacks" / "__main__.py")
    (project / ".venv").symlink_to(PROJECT / ".venv")
    (project / ".virtstack").mkdir()
    (project / ".virtstack" / "toolchain").symlink_to(toolchain.resolve())
    return project


def cli(project: Path, *args: str, input: str | None = None) -> Result:
    """``virtstack --project PROJECT ARGS``; a crash (not an exit code) fails the test."""
    result = CliRunner().invoke(app, ["--project", str(project), *args], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def ok(project: Path, *args: str) -> Result:
    """Like :func:`cli`, and the command must succeed."""
    result = cli(project, *args)
    assert result.exit_code == 0, f"virtstack {' '.join(args)}:\n{result.output}"
    return result


def set_key(project: Path, env: str, path: str, value: object) -> None:
    """Change one key of ``env``'s stack file, as a user editing it would."""
    file = stackfiles.stack_file(project, env)
    document = stackfiles.load_file(file)
    stackfiles.set_value(document, stackfiles.parse_path(path), value)
    file.write_text(stackfiles.dump(document))


@dataclass
class Deployed:
    """An environment a test module deployed, driven through the CLI as a user would."""

    project: Path
    name: str
    outputs: list[str] = field(default_factory=list, kw_only=True)
    """Everything the CLI printed, to search for leaked secrets."""

    def cli(self, *args: str) -> Result:
        """``virtstack ARGS`` in the environment's project, whatever its exit code."""
        result = cli(self.project, *args)
        self.outputs.append(result.output)
        return result

    def run(self, *args: str) -> str:
        """Like :meth:`cli`, and the command must succeed: its output."""
        result = self.cli(*args)
        assert result.exit_code == 0, f"virtstack {' '.join(args)}:\n{result.output}"
        return result.output

    def set(self, path: str, value: object) -> None:
        """Change one key of the environment's stack file."""
        set_key(self.project, self.name, path, value)
