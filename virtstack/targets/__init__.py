"""The targets: each module turns an environment spec into components on one engine.

Adding a target means writing its module and listing its ``TARGET`` here.
"""

from __future__ import annotations

from virtstack.errors import SpecError
from virtstack.spec import EnvironmentSpec, key
from virtstack.targets import container, hostos, hypervisor
from virtstack.targets.base import Capability, DeployContext, Outputs, Target

TARGETS: dict[str, Target] = {
    t.name: t for t in (hostos.TARGET, hypervisor.TARGET, container.TARGET)
}


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


__all__ = ["TARGETS", "Capability", "DeployContext", "Outputs", "Target", "check", "get"]
