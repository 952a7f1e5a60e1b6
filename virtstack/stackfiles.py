"""Stack files (stacks/Pulumi.<env>.yaml): where each environment's spec is kept.

One YAML library for all of them: ruamel's round-trip mode, so an edit (change one key)
keeps every comment, the key order and the quoting. Paths are written the way
:func:`virtstack.configkeys.key` prints them, with or without the namespace:
``tiers[0].replicas``, ``registry.enabled``, ``virtstack:engine.uri``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.error import YAMLError as RuamelYAMLError

from virtstack.configkeys import NAMESPACE
from virtstack.errors import EnvironmentNotFoundError, StackFileError, UsageError

_HEAD = re.compile(r"(?P<head>(?:[A-Za-z_][\w-]*:)?[A-Za-z_][\w-]*)(?P<rest>.*)", re.DOTALL)
_STEP = re.compile(r"\.(?P<key>[A-Za-z_][\w-]*)|\[(?P<index>\d+)\]")


def stack_file(project: Path, env: str) -> Path:
    """The stack file of environment ``env`` in ``project``."""
    return project / "stacks" / f"Pulumi.{env}.yaml"


def environments(project: Path) -> list[str]:
    """Every environment that has a stack file, by name."""
    return sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for p in (project / "stacks").glob("Pulumi.*.yaml")
    )


def load_stack(project: Path, env: str) -> CommentedMap:
    """Environment ``env``'s stack file for round-trip editing; missing: not found."""
    path = stack_file(project, env)
    if not path.is_file():
        known = ", ".join(environments(project)) or "none"
        raise EnvironmentNotFoundError(f"{path}: no environment {env!r} (environments: {known})")
    return load_file(path)


def read_config(project: Path, env: str) -> dict[str, Any]:
    """The ``config:`` mapping of environment ``env`` as plain data (secrets stay encrypted)."""
    return plain(load_stack(project, env))


def _yaml() -> YAML:
    rt = YAML()  # round-trip: comments, key order and quoting survive
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap long values (ssh keys, commands)
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


def _problem(exc: RuamelYAMLError, where: str) -> str:
    """``file:line: not valid YAML (problem)`` from a parser error."""
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = f"{where}:{mark.line + 1}" if mark is not None else where
        return f"{line}: not valid YAML ({exc.problem or exc.context})"
    return f"{where}: not valid YAML ({' '.join(str(exc).split())})"


def load(text: str, where: str) -> CommentedMap:
    """A stack file's document for round-trip editing (``where`` names it in errors).

    Raises :class:`StackFileError` unless it is a mapping whose ``config:`` is a mapping
    with string keys; a missing ``config:`` is an empty one.
    """
    try:
        document = _yaml().load(text)
    except RuamelYAMLError as exc:
        raise StackFileError(_problem(exc, where)) from None
    if document is None:
        document = CommentedMap()
    if not isinstance(document, CommentedMap):
        raise StackFileError(f"{where}: a stack file is a mapping with a config: key")
    config = document.get("config")
    if config is None:
        document["config"] = CommentedMap()
    elif not isinstance(config, CommentedMap):
        raise StackFileError(f"{where}:{_line(document, 'config')}: config: is not a mapping")
    for name in document["config"]:
        if not isinstance(name, str):
            at = _line(document["config"], name)
            raise StackFileError(f"{where}:{at}: config key {name!r} is not a string")
    return document


def _line(mapping: CommentedMap, name: Any) -> int:
    """The 1-based line of ``name`` in ``mapping``, as the parser saw it."""
    return int(mapping.lc.key(name)[0]) + 1


def load_file(path: Path) -> CommentedMap:
    """The stack file at ``path`` for round-trip editing."""
    return load(path.read_text(), str(path))


def dump(document: CommentedMap) -> str:
    """The document as YAML text, comments included."""
    out = io.StringIO()
    _yaml().dump(document, out)
    return out.getvalue()


def plain(document: CommentedMap) -> dict[str, Any]:
    """The ``config:`` mapping as plain data: exactly what would be written."""
    config = _plain(document.get("config") or {})
    return config if isinstance(config, dict) else {}


def _plain(node: Any) -> Any:
    """Round-trip nodes (commented maps, scalar subclasses) as plain Python values."""
    if isinstance(node, dict):
        return {_plain(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    for kind in (bool, int, float, str):  # bool first: it is an int
        if isinstance(node, kind):
            return kind(node)
    return node


@dataclass(frozen=True)
class ConfigPath:
    """A location in a stack's ``config:`` mapping: the config key, then keys and indexes."""

    key: str
    """The namespaced config key (``virtstack:tiers``)."""
    steps: tuple[str | int, ...]

    def __str__(self) -> str:
        return self.key + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in self.steps)


def parse_path(text: str) -> ConfigPath:
    """``tiers[0].replicas`` as a :class:`ConfigPath` (the namespace defaults to virtstack)."""
    head = _HEAD.fullmatch(text.strip())
    if head is None:
        raise UsageError(f"{text!r}: not a config path (like tiers[0].replicas)")
    steps: list[str | int] = []
    rest = head["rest"]
    position = 0
    for step in _STEP.finditer(rest):
        if step.start() != position:
            break
        steps.append(int(step["index"]) if step["index"] is not None else step["key"])
        position = step.end()
    if position != len(rest):
        raise UsageError(f"{text!r}: not a config path (like tiers[0].replicas)")
    name = head["head"]
    return ConfigPath(name if ":" in name else f"{NAMESPACE}:{name}", tuple(steps))


def parse_assignment(text: str) -> tuple[ConfigPath, Any]:
    """``key=value`` from ``--set``: the path, and the value read as YAML."""
    path, sep, raw = text.partition("=")
    if not sep:
        raise UsageError(f"--set {text!r}: expected key=value (like tiers[0].replicas=3)")
    try:
        value = YAML(typ="safe", pure=True).load(raw)
    except RuamelYAMLError as exc:
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise UsageError(f"--set {text!r}: the value is not valid YAML ({problem})") from None
    return parse_path(path), value


def set_value(document: CommentedMap, path: ConfigPath, value: Any) -> None:
    """Set ``path`` in the document's ``config:`` to ``value``.

    Missing mappings are created; a list grows by one when the index is its length
    (``tiers[2].name=x`` on a two-tier list adds a tier).
    """
    node: Any = document["config"]
    steps: tuple[str | int, ...] = (path.key, *path.steps)
    for i, step in enumerate(steps):
        where = ConfigPath(path.key, path.steps[:i])  # the location of node[step]
        if isinstance(step, int):
            if not isinstance(node, list):
                raise UsageError(f"{ConfigPath(path.key, path.steps[: i - 1])}: is not a list")
            if step > len(node):
                raise UsageError(f"{where}: index out of range ({len(node)} items)")
        elif not isinstance(node, dict):
            raise UsageError(f"{ConfigPath(path.key, path.steps[: i - 1])}: is not a mapping")
        if i == len(steps) - 1:
            if isinstance(step, int) and step == len(node):
                node.append(value)
            else:
                node[step] = value
            return
        nxt = steps[i + 1]
        if isinstance(step, int) and step == len(node):
            node.append(_empty_for(nxt))
        elif isinstance(step, str) and node.get(step) is None:
            node[step] = _empty_for(nxt)
        node = node[step]


def _empty_for(step: str | int) -> CommentedMap | CommentedSeq:
    return CommentedSeq() if isinstance(step, int) else CommentedMap()
