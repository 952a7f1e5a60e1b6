"""The targets: each module here turns an environment spec into components on one engine.

A target is a module of this package with a module-level ``TARGET``; they are found by
looking, so adding a target means adding its module (and its stack template,
``templates/stacks/<name>.yaml.j2``), nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil

from virtstack.errors import SpecError
from virtstack.spec import EnvironmentSpec, key
from virtstack.targets.base import Capability, DeployContext, Outputs, Target


def discover() -> dict[str, Target]:
    """Every target in this package, by name, in the order of their module names."""
    found: dict[str, Target] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        target = getattr(importlib.import_module(f"{__name__}.{module.name}"), "TARGET", None)
        if isinstance(target, Target):
            found[target.name] = target
    return found


TARGETS: dict[str, Target] = discover()


def get(name: str) -> Target:
    """The target called ``name``."""
    try:
        return TARGETS[name]
    except KeyError:
        raise SpecError(
            [f"{key('target')}: unknown target {name!r} (targets: {', '.join(TARGETS)})"]
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
