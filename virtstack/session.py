"""A command's session: its environment, loaded and checked once, and what it uses to
reach the outside world (Pulumi, the engine). Light to import: ``up`` starts Pulumi from
the stack file alone, and loads the spec's models and the rest of virtstack meanwhile.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from virtstack.configkeys import key
from virtstack.environment import Environment, StackRef, check_config, load
from virtstack.errors import SpecError
from virtstack.secrets import registry_password_settled, stack_file_plaintext
from virtstack.stackfiles import read_config

if TYPE_CHECKING:
    from virtstack.engines.base import EngineAdapter
    from virtstack.runner import PendingRun, Runner
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


@contextlib.contextmanager
def up_session(
    ref: StackRef, services: Services, *, start: bool
) -> Iterator[tuple[Session, PendingRun | None]]:
    """The session of an ``up``; with ``start``, and when the stack file alone says how,
    its run too, started before the environment is checked and held until the caller's
    checks pass (:meth:`Runner.start_up`). A problem the check finds leaves the block, which
    stops that run with nothing changed."""
    config = read_config(ref.project, ref.env)
    target = _target_to_start(ref, config, services) if start else None
    with services.runner.start_up(ref, target) if target else contextlib.nullcontext() as started:
        # While Pulumi starts: the spec's models load and check the config.
        yield open_session(ref, services, environment=check_config(config, ref.target)), started


def _target_to_start(ref: StackRef, config: dict[str, Any], services: Services) -> Target | None:
    """The target an ``up`` can start on before ``config`` is checked: the one it names,
    when its stack exists (a config with errors never makes one), Pulumi can read the
    file as it is (no registry password left to generate) and may see it (no plaintext
    secret: Pulumi records each run's config)."""
    from virtstack import targets

    name = ref.target or config.get(key("target"))
    if (
        ref.pending is not None
        or not isinstance(name, str)
        or not services.runner.has_stack(ref)
        or not registry_password_settled(config)
        or stack_file_plaintext(config)
    ):
        return None
    try:
        return targets.get(name)
    except SpecError:
        return None  # the check says what is wrong
