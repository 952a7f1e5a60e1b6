"""A preview's plan, from Pulumi's structured engine events.

Built from ``ResourcePreEvent`` metadata (op, urn, parent, diffs, replace keys, old and
new inputs), never from the CLI's text. Resources are grouped under the component that
owns them: a service tier, or else the top-level component (registry, VM, stack).
Secret values arrive blinded from the engine and are shown as ``[secret]``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from virtstack_components import names

from virtstack.plan.events import (
    CHANGES,
    OPS,
    RANK,
    SECRET_SIG,
    Op,
    diagnostic_lines,
    mask,
    split_urn,
)

if TYPE_CHECKING:
    from virtstack.engineevents import EngineEvent

STACK_TYPE = "pulumi:pulumi:Stack"
_VALUE_WIDTH = 60


@dataclass(frozen=True, order=True)
class Group:
    """The component a resource belongs to, for grouping a plan."""

    type: str
    name: str

    @property
    def label(self) -> str:
        if not self.type:
            return "stack"
        return f"{self.type.rpartition(':')[2]} {self.name}".strip()


_STACK_GROUP = Group("", "")


@dataclass
class Change:
    """One resource's planned change."""

    urn: str
    name: str
    type: str
    op: Op
    group: Group
    diffs: list[str] = field(default_factory=list)
    """Properties that change (detailed paths when the provider gives them)."""
    replace_keys: list[str] = field(default_factory=list)
    """Properties whose change forces the replacement."""
    values: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Changed properties: old and new value, masked and shortened."""
    retained: bool = False
    """A delete the engine only forgets: the resource (data) stays on the engine."""

    def as_json(self) -> dict[str, Any]:
        return {
            "op": self.op.value,
            "name": self.name,
            "type": self.type,
            "urn": self.urn,
            "diffs": self.diffs,
            "replace_keys": self.replace_keys,
            "values": {k: {"old": o, "new": n} for k, (o, n) in self.values.items()},
            "retained": self.retained,
        }


@dataclass
class Plan:
    """Everything a preview would do to one environment."""

    env: str
    target: str = ""
    changes: list[Change] = field(default_factory=list)
    """Custom resources that change, sorted by group then name."""
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        found = {op.value: 0 for op in CHANGES}
        for change in self.changes:
            found[change.op.value] += 1
        return found | {Op.SAME.value: self.unchanged}

    def groups(self) -> dict[Group, list[Change]]:
        grouped: dict[Group, list[Change]] = {}
        for change in self.changes:
            grouped.setdefault(change.group, []).append(change)
        return grouped

    def replacements(self) -> list[Change]:
        return [c for c in self.changes if c.op is Op.REPLACE]

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def headline(self) -> str:
        return f"{tally(self.changes)} ({self.unchanged} unchanged)"

    def as_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "target": self.target,
            "counts": self.counts(),
            "groups": [
                {
                    "group": g.label,
                    "type": g.type,
                    "name": g.name,
                    "changes": [c.as_json() for c in cs],
                }
                for g, cs in self.groups().items()
            ],
            "errors": self.errors,
            "warnings": self.warnings,
        }


def tally(changes: Iterable[Change]) -> str:
    """``2 to create, 1 to replace``, in a fixed order of operations."""
    ops = [c.op for c in changes]
    parts = [f"{ops.count(op)} to {op.value}" for op in CHANGES if op in ops]
    return ", ".join(parts) or "no changes"


def show(value: Any, width: int = _VALUE_WIDTH) -> str:
    """A short one-line rendering of an input value (masked)."""
    if value is _MISSING or value is None:
        return "(none)"
    masked = mask(value)
    text = masked if isinstance(masked, str) else json.dumps(masked, sort_keys=True)
    text = " ".join(text.split())  # one line, however the value was laid out
    return text if len(text) <= width else text[: width - 1] + "…"


def show_change(old: Any, new: Any) -> tuple[str, str]:
    """Old and new value, shortened; of multi-line text (config files) the changed lines."""
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        lines = list(difflib.ndiff(old.splitlines(), new.splitlines()))
        gone = [ln[2:].strip() for ln in lines if ln.startswith("- ")]
        came = [ln[2:].strip() for ln in lines if ln.startswith("+ ")]
        return show(" ⏎ ".join(gone) or "(no lines)"), show(" ⏎ ".join(came) or "(no lines)")
    return show(old), show(new)


_MISSING = object()
_PATH_STEP = re.compile(r'\[(\d+)\]|\["([^"]*)"\]|([^.\[\]]+)')


def lookup(value: Any, path: str) -> Any:
    """The value at a Pulumi property path (``uploads[0].content``), or a marker if absent."""
    for index, quoted, name in _PATH_STEP.findall(path):
        if index:
            if not isinstance(value, list) or int(index) >= len(value):
                return _MISSING
            value = value[int(index)]
        else:
            if not isinstance(value, Mapping) or (quoted or name) not in value:
                return _MISSING
            value = value[quoted or name]
    return value


@dataclass
class _Seen:
    type: str
    name: str
    parent: str
    custom: bool
    ops: list[Op] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    old: Mapping[str, Any] = field(default_factory=dict)
    new: Mapping[str, Any] = field(default_factory=dict)
    retained: bool = False


def plan(events: Iterable[EngineEvent], env: str, target: str = "") -> Plan:
    """The plan a preview's event stream describes."""
    seen: dict[str, _Seen] = {}
    result = Plan(env=env, target=target)
    for event in events:
        if event.diagnostic_event is not None:
            d = event.diagnostic_event
            if d.severity == "error":
                result.errors += diagnostic_lines(d.message)
            elif d.severity == "warning":
                result.warnings += diagnostic_lines(d.message)
        if event.resource_pre_event is None:
            continue
        m = event.resource_pre_event.metadata
        op = OPS.get(m.op)
        if op is None:  # reads, refreshes: nothing in the program changes
            continue
        state = m.new or m.old
        type_, name = split_urn(m.urn)
        entry = seen.get(m.urn)
        if entry is None:
            # The engine leaves `custom` out for components (and the stack): False then.
            entry = seen[m.urn] = _Seen(
                type=m.type or type_,
                name=name,
                parent=state.parent if state is not None else "",
                custom=bool(state is not None and state.custom),
            )
        entry.ops.append(op)
        # Detailed paths (uploads[0].content) when the provider gives them, else top keys.
        for path in list(m.detailed_diff or {}) or m.diffs or []:
            if path not in entry.diffs:
                entry.diffs.append(path)
        entry.keys += [k for k in m.keys or [] if k not in entry.keys]
        if m.old is not None and m.old.retain_on_delete:
            entry.retained = True
        if m.old is not None and m.old.inputs:
            entry.old = m.old.inputs
        if m.new is not None and m.new.inputs:
            entry.new = m.new.inputs
    for urn, entry in seen.items():
        if not entry.custom:
            continue
        op = max(entry.ops, key=RANK.index)
        if op is Op.SAME:
            result.unchanged += 1
            continue
        change = Change(
            urn=urn,
            name=entry.name,
            type=entry.type,
            op=op,
            group=_group(urn, entry, seen),
            diffs=entry.diffs if op in (Op.UPDATE, Op.REPLACE) else [],
            replace_keys=entry.keys if op is Op.REPLACE else [],
            retained=entry.retained and op is Op.DELETE,
        )
        if op in (Op.UPDATE, Op.REPLACE):
            change.values = _values(change.diffs, entry.old, entry.new)
        result.changes.append(change)
    result.changes.sort(key=lambda c: (c.group, c.name, c.type))
    return result


def _values(
    paths: list[str], old: Mapping[str, Any], new: Mapping[str, Any]
) -> dict[str, tuple[str, str]]:
    """Old and new value of each changed path, down to the leaves that differ.

    Providers often name only the property (``uploads``); the leaves show what in it
    changed (``uploads[0].content``).
    """
    found: dict[str, tuple[str, str]] = {}
    for path in paths:
        resized = _resized_list(path, old, new)
        if resized is not None:
            found.setdefault(*resized)
            continue
        before, after = lookup(old, path), lookup(new, path)
        if before is _MISSING and after is _MISSING:
            path = _top(path)
            before, after = old.get(path, _MISSING), new.get(path, _MISSING)
        for leaf, (b, a) in list(_leaves(path, before, after))[:_MAX_LEAVES]:
            found.setdefault(leaf, show_change(b, a))
    return found


_MAX_LEAVES = 6
_INDEXED = re.compile(r"(?P<list>.+)\[\d+\]")


def _resized_list(
    path: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[str, tuple[str, str]] | None:
    """A list that grew or shrank: its items removed and added, not shifted indexes.

    ``envs[2]`` of a list that lost an item names whatever moved into slot 2; what
    changed is the item that left.
    """
    match = _INDEXED.fullmatch(path)
    if match is None:
        return None
    before, after = lookup(old, match["list"]), lookup(new, match["list"])
    if not (isinstance(before, list) and isinstance(after, list)) or len(before) == len(after):
        return None
    gone = [item for item in before if item not in after]
    came = [item for item in after if item not in before]
    return match["list"], (_items(gone), _items(came))


def _items(items: list[Any]) -> str:
    return show(items[0] if len(items) == 1 else items or None)


def _leaves(path: str, old: Any, new: Any) -> Iterator[tuple[str, tuple[Any, Any]]]:
    """The paths under ``path`` where ``old`` and ``new`` differ, with both values."""
    if isinstance(old, Mapping) and isinstance(new, Mapping) and SECRET_SIG not in old:
        for k in dict.fromkeys([*old, *new]):
            if k.startswith("__"):  # the engine's bookkeeping (__defaults), not inputs
                continue
            o, n = old.get(k, _MISSING), new.get(k, _MISSING)
            if o != n:
                yield from _leaves(f"{path}.{k}", o, n)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (o, n) in enumerate(zip(old, new, strict=True)):
            if o != n:
                yield from _leaves(f"{path}[{i}]", o, n)
    else:
        yield path, (old, new)


def covered(path: str, shown: Mapping[str, Any]) -> bool:
    """Whether a changed path is already shown: itself, its property, or a leaf under it."""
    return any(
        key in (path, _top(path)) or key.startswith((f"{path}.", f"{path}[")) for key in shown
    )


def _top(path: str) -> str:
    """The top-level property of a detailed diff path (``envs[0]`` -> ``envs``)."""
    return path.split(".", 1)[0].split("[", 1)[0]


def _group(urn: str, entry: _Seen, seen: Mapping[str, _Seen]) -> Group:
    """The nearest service-tier ancestor, else the top-level component, else the stack."""
    chain: list[Group] = []
    parent = entry.parent
    while parent and parent in seen and seen[parent].type != STACK_TYPE:
        chain.append(Group(seen[parent].type, seen[parent].name))
        parent = seen[parent].parent
    if not chain and parent and parent not in seen:
        # The parent left no event (a partial stream): its type is still in the URN.
        types = urn.split("::")[2].split("$") if urn.count("::") >= 3 else []
        if len(types) > 1 and types[-2] != STACK_TYPE:
            return Group(types[-2], "")
    for group in chain:
        if names.is_tier_type(group.type):
            return group
    return chain[-1] if chain else _STACK_GROUP
