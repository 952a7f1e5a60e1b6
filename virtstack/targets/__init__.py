"""The targets: each module here turns an environment spec into components on one engine.

A target is a module of this package with a module-level ``TARGET``; they are found by
looking, so adding a target means adding its module (and its stack template,
``templates/stacks/<name>.yaml.j2``), nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from virtstack.configkeys import key
from virtstack.errors import SpecError
from virtstack.targets.base import Capability, DeployContext, Outputs, Target

if TYPE_CHECKING:
    from virtstack.spec import EnvironmentSpec


def discover() -> dict[str, Target]:
    """Every target in this package, by name, in the order of their module names."""
    found: dict[str, Target] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        target = getattr(importlib.import_module(f"{__name__}.{module.name}"), "TARGET", None)
        if isinstance(target, Target):
            found[target.name] = target
    return found


TARGETS: dict[str, Target]
"""Every target by name: made on first use (:func:`__getattr__`)."""


def __getattr__(name: str) -> object:
    # Importing every target (and each one's engine adapter) waits until all are asked for:
    # a run needs its own target alone.
    if name == "TARGETS":
        return _targets()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _targets() -> dict[str, Target]:
    found: dict[str, Target] | None = globals().get("TARGETS")
    if found is None:
        found = globals()["TARGETS"] = discover()
    return found


def get(name: str) -> Target:
    """The target called ``name``."""
    if "TARGETS" not in globals() and name in {m.name for m in pkgutil.iter_modules(__path__)}:
        # A target's module usually bears its name: import that one only.
        target = getattr(importlib.import_module(f"{__name__}.{name}"), "TARGET", None)
        if isinstance(target, Target) and target.name == name:
            return target
    known = _targets()
    try:
        return known[name]
    except KeyError:
        raise SpecError(
            [f"{key('target')}: unknown target {name!r} (targets: {', '.join(known)})"]
        ) from None


def check(spec: EnvironmentSpec) -> Target:
    """The spec's target, once it has confirmed it can honour everything the spec asks."""
    target = get(spec.target)
    problems = list(target.problems(spec))
    if problems:
        raise SpecError(problems)
    return target


__all__ = [
    "TARGETS",
    "Capability",
    "DeployContext",
    "Outputs",
    "Target",
    "check",
    "discover",
    "get",
]
