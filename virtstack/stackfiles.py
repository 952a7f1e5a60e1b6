"""Stack files: stacks/Pulumi.<env>.yaml, where each environment's spec is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from virtstack.errors import EnvironmentNotFoundError, VirtstackError


def stack_file(project: Path, env: str) -> Path:
    """The stack file of environment ``env`` in ``project``."""
    return project / "stacks" / f"Pulumi.{env}.yaml"


def environments(project: Path) -> list[str]:
    """Every environment that has a stack file, by name."""
    return sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for p in (project / "stacks").glob("Pulumi.*.yaml")
    )


def read_config(project: Path, env: str) -> dict[str, Any]:
    """The ``config:`` mapping of environment ``env`` (secrets stay encrypted)."""
    path = stack_file(project, env)
    if not path.is_file():
        known = ", ".join(environments(project)) or "none"
        raise EnvironmentNotFoundError(f"{path}: no environment {env!r} (environments: {known})")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise VirtstackError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    config = document.get("config") if isinstance(document, dict) else None
    return dict(config) if isinstance(config, dict) else {}
