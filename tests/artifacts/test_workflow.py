"""The GitHub Actions workflows pass actionlint, their shell scripts shellcheck.

actionlint is a Go program: ``go install github.com/rhysd/actionlint/cmd/actionlint@latest``
(it lands in ``$(go env GOPATH)/bin``, looked up here too). shellcheck is Debian's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.support import require_tool

PROJECT = Path(__file__).resolve().parents[2]
WORKFLOW = PROJECT / ".github" / "workflows" / "preview.yml"
INSTALL = {
    "actionlint": "go install github.com/rhysd/actionlint/cmd/actionlint@latest",
    "shellcheck": "apt-get install shellcheck",
}


def _tool(name: str) -> str:
    gopath = Path(os.environ.get("GOPATH") or Path.home() / "go")
    gobin = [Path(os.environ["GOBIN"])] if os.environ.get("GOBIN") else []
    return require_tool(name, INSTALL[name], [*gobin, gopath / "bin"])


def actionlint(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("actionlint"), "-no-color", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_workflows_pass_actionlint() -> None:
    result = actionlint(PROJECT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_scripts_pass_shellcheck() -> None:
    result = actionlint(PROJECT, f"-shellcheck={_tool('shellcheck')}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # actionlint's project root
    shutil.copytree(PROJECT / ".github", tmp_path / ".github")
    broken = tmp_path / ".github" / "workflows" / "preview.yml"
    # A misspelt step output: actionlint knows which outputs each step id has.
    broken.write_text(
        WORKFLOW.read_text().replace("steps.preview.outputs.failed", "steps.previw.outputs.failed")
    )
    result = actionlint(tmp_path)
    assert result.returncode != 0
    assert "previw" in result.stdout


def test_the_workflow_previews_changed_stacks_into_one_comment() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    # PyYAML reads the `on:` key as the boolean True (YAML 1.1).
    trigger = workflow[True]["pull_request"]
    assert trigger["paths"] == ["stacks/Pulumi.*.yaml"]
    scripts = "\n".join(s.get("run", "") for s in workflow["jobs"]["preview"]["steps"])
    assert 'virtstack preview "$env" --markdown "previews/$env.md"' in scripts
    assert "gh pr comment" in scripts
    assert "--edit-last" in scripts
