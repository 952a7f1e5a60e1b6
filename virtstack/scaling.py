"""Scale edits: a tier's new replica count, written into its stack file.

The new count is checked like any other edit before anything is written, so a scale is
never drift: the stack file always says what is deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from virtstack import stackfiles
from virtstack.configkeys import NAMESPACE, key
from virtstack.environment import Environment, StackRef, check_config
from virtstack.errors import SpecError

if TYPE_CHECKING:
    from ruamel.yaml.comments import CommentedMap


@dataclass(frozen=True, kw_only=True)
class ScaleChange:
    """A tier's new replica count, checked, in the stack file's round-trip document."""

    path: Path
    key: str
    old: int
    document: CommentedMap
    environment: Environment
    """The environment as it will be once the change is written."""

    def write(self) -> None:
        """Save the stack file (every other line as it was)."""
        self.path.write_text(stackfiles.dump(self.document))


def plan_scale(ref: StackRef, tier: str, replicas: int) -> ScaleChange:
    """Set tier ``tier``'s replicas to ``replicas`` and check the result; nothing is written."""
    document = stackfiles.load_stack(ref.project, ref.env)
    current = check_config(stackfiles.plain(document), ref.target)
    names = [t.name for t in current.spec.tiers]
    if tier not in names:
        raise SpecError([f"{key('tiers')}: no tier named {tier!r} (tiers: {names})"])
    index = names.index(tier)
    path = stackfiles.ConfigPath(f"{NAMESPACE}:tiers", (index, "replicas"))
    stackfiles.set_value(document, path, replicas)
    return ScaleChange(
        path=stackfiles.stack_file(ref.project, ref.env),
        key=key("tiers", index, "replicas"),
        old=current.spec.tier(tier).replicas,
        document=document,
        environment=check_config(stackfiles.plain(document), ref.target),
    )
