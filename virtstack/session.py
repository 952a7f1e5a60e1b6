"""A command's session: its environment, loaded and checked once, and what it uses to
reach the outside world (Pulumi, the engine). Light to import: ``up`` opens its session
before it starts Pulumi, and imports the rest of virtstack while Pulumi starts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from virtstack.environment import Environment, StackRef, load

if TYPE_CHECKING:
    from virtstack.engines.base import EngineAdapter
    from virtstack.runner import Runner
    from virtstack.targets import Target

AdapterFor = Callable[["Target"], "EngineAdapter"]


def _target_adapter(target: Target) -> EngineAdapter:
    return target.adapter


@dataclass
class Services:
    """What commands use to reach the outside world; tests swap single parts."""

    runner: Runner
    interactive: Callable[[], bool]
    """Whether a person can answer prompts (stdin is a terminal)."""
    adapter: AdapterFor = field(default=_target_adapter)
    """The engine adapter of a target (probe, preflight, data, load-balancer stats)."""

    @classmethod
    def default(cls) -> Services:
        from virtstack.runner import PulumiRunner

        return cls(runner=PulumiRunner(), interactive=lambda: sys.stdin.isatty())


@dataclass(frozen=True, kw_only=True)
class Session:
    """One command's environment, checked once, and what reaches the outside world."""

    ref: StackRef
    environment: Environment
    runner: Runner
    adapter: EngineAdapter

    @property
    def env(self) -> str:
        return self.ref.env


def open_session(
    ref: StackRef, services: Services, *, environment: Environment | None = None
) -> Session:
    """The environment loaded and checked (unless given), without asking the engine."""
    environment = environment or load(ref)
    adapter = services.adapter(environment.target)
    return Session(ref=ref, environment=environment, runner=services.runner, adapter=adapter)
