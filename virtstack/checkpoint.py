"""A stack's latest checkpoint, read straight from the project's local file backend.

``pulumi stack output`` costs a CLI start (about half a second) to read one JSON file;
commands that only show outputs read that file here instead. Secret outputs stay
encrypted in it (the passphrase is Pulumi's business): they come back masked, marked
secret, exactly as ``pulumi stack output`` without ``--show-secrets`` shows them.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from virtstack.environment import StackRef

SECRET_SIGNATURE = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")
"""How Pulumi marks a secret value in its state (the key and value of its signature)."""
MASK = "[secret]"
"""What a secret output shows instead of its value (``pulumi stack output``'s mask)."""
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class StackOutput:
    """One stack output and whether Pulumi keeps it secret."""

    value: Any
    secret: bool


def stack_dir(project: Path) -> Path:
    """Where the local backend keeps the project's stacks (one folder per project name)."""
    return project / ".virtstack" / "state" / ".pulumi" / "stacks"


def checkpoint_file(ref: StackRef) -> Path | None:
    """The stack's checkpoint file (plain or gzipped), or None when it has none."""
    root = stack_dir(ref.project)
    for name in (f"{ref.env}.json", f"{ref.env}.json.gz"):
        found = sorted(root.glob(f"*/{name}"))
        if found:
            return found[0]
    return None


def read(path: Path) -> dict[str, Any]:
    """A checkpoint file's document."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip's magic: Pulumi gzips state when asked to
        data = gzip.decompress(data)
    document: dict[str, Any] = json.loads(data)
    return document


def outputs(ref: StackRef) -> dict[str, StackOutput] | None:
    """The stack's outputs, secrets masked; None when the backend has no such stack."""
    path = checkpoint_file(ref)
    if path is None:
        return None
    latest = read(path).get("checkpoint", {}).get("latest") or {}
    for resource in latest.get("resources") or []:
        if resource.get("type") == STACK_TYPE and not resource.get("parent"):
            return {
                name: StackOutput(MASK, True) if _has_secret(value) else StackOutput(value, False)
                for name, value in (resource.get("outputs") or {}).items()
            }
    return {}


def _has_secret(value: Any) -> bool:
    """Whether ``value`` is (or holds) a secret: Pulumi masks the whole output then."""
    if isinstance(value, dict):
        key, mark = SECRET_SIGNATURE
        return value.get(key) == mark or any(_has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return False
