"""Operations on an environment's stack: spec checks, secrets, and Pulumi runs.

The engine-facing part is the :class:`Engine` protocol; :class:`PulumiEngine` drives the
Automation API against the project's local file backend. Everything else here is plain
Python the CLI calls before and after an engine run, so it is tested without one.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from virtstack import stackedit
from virtstack.diff import diagnostic_lines
from virtstack.errors import OperationError, SpecError
from virtstack.spec import NAMESPACE, REGISTRY_PASSWORD_KEY, EnvironmentSpec, key, parse_spec
from virtstack.stackfiles import read_config, stack_file

if TYPE_CHECKING:
    from pulumi.automation import EngineEvent, Stack
    from ruamel.yaml.comments import CommentedMap

    from virtstack.targets import Target

OnEvent = Callable[["EngineEvent"], None]
PASSWORD_CONFIG_KEY = f"{NAMESPACE}:{REGISTRY_PASSWORD_KEY}"


@dataclass(frozen=True, kw_only=True)
class StackRef:
    """One environment's stack in one project, for one run."""

    project: Path
    env: str
    target: str | None = None
    """Overrides the environment's target for this run only; the stack file is untouched."""


@dataclass(frozen=True, kw_only=True)
class Checked:
    """An environment's config, validated: the spec and the target that will deploy it."""

    config: dict[str, Any]
    spec: EnvironmentSpec
    target: Target

    @property
    def uri(self) -> str:
        return self.target.uri(self.spec)


def check_config(config: dict[str, Any], target: str | None = None) -> Checked:
    """Validate a config mapping (with ``target`` overriding its target) against its target."""
    from virtstack import targets  # imports Pulumi: not for --help

    if target is not None:
        config = {**config, f"{NAMESPACE}:target": target}
    spec = parse_spec(config)
    return Checked(config=config, spec=spec, target=targets.check(spec))


def load(ref: StackRef) -> Checked:
    """The environment's stack file, parsed and checked: errors name the config key."""
    return check_config(read_config(ref.project, ref.env), ref.target)


@dataclass(frozen=True, kw_only=True)
class ScaleChange:
    """A tier's new replica count, checked, in the stack file's round-trip document."""

    path: Path
    key: str
    old: int
    document: CommentedMap
    checked: Checked

    def write(self) -> None:
        """Save the stack file (every other line as it was)."""
        self.path.write_text(stackedit.dump(self.document))


def plan_scale(ref: StackRef, tier: str, replicas: int) -> ScaleChange:
    """Set tier ``tier``'s replicas to ``replicas`` and check the result; nothing is written."""
    read_config(ref.project, ref.env)  # a missing environment is EnvironmentNotFoundError
    path = stack_file(ref.project, ref.env)
    document = stackedit.load_file(path)
    tiers = document["config"].get(f"{NAMESPACE}:tiers") or []
    index = next(
        (i for i, t in enumerate(tiers) if isinstance(t, dict) and t.get("name") == tier), None
    )
    if index is None:
        names = [t.get("name") for t in tiers if isinstance(t, dict)]
        raise SpecError([f"{key('tiers')}: no tier named {tier!r} (tiers: {names})"])
    old = int(tiers[index].get("replicas", 1))
    steps: tuple[str | int, ...] = (index, "replicas")
    stackedit.set_value(document, stackedit.ConfigPath(f"{NAMESPACE}:tiers", steps), replicas)
    checked = check_config(stackedit.plain(document), ref.target)
    return ScaleChange(
        path=path, key=key("tiers", index, "replicas"), old=old, document=document, checked=checked
    )


def needs_registry_password(spec: EnvironmentSpec) -> bool:
    """Whether the environment's registry wants the password secret."""
    return spec.registry.enabled and spec.registry.auth


def has_registry_password(ref: StackRef) -> bool:
    """Whether the stack file holds the registry password (encrypted, so not read here)."""
    return PASSWORD_CONFIG_KEY in read_config(ref.project, ref.env)


def new_password() -> str:
    """A random registry password (URL-safe, so it survives htpasswd and docker login)."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class StackOutput:
    """One stack output and whether Pulumi keeps it secret."""

    value: Any
    secret: bool


class Engine(Protocol):
    """What the CLI needs from Pulumi. Each run reports progress through ``on_event``."""

    def init(self, ref: StackRef) -> None:
        """Create the stack in the backend unless it exists."""

    def set_secret(self, ref: StackRef, name: str, value: str) -> None:
        """Store ``value`` encrypted under config key ``name`` in the stack file."""

    def preview(self, ref: StackRef, on_event: OnEvent) -> None: ...

    def up(self, ref: StackRef, on_event: OnEvent) -> None: ...

    def destroy(self, ref: StackRef, on_event: OnEvent) -> None: ...

    def refresh(self, ref: StackRef, on_event: OnEvent) -> None: ...

    def outputs(self, ref: StackRef) -> dict[str, StackOutput]: ...


def ensure_registry_password(engine: Engine, ref: StackRef, spec: EnvironmentSpec) -> bool:
    """Generate and store the registry password if the spec needs one and it is unset.

    Returns whether a password was generated.
    """
    if not needs_registry_password(spec) or has_registry_password(ref):
        return False
    engine.set_secret(ref, PASSWORD_CONFIG_KEY, new_password())
    return True


class EventLog:
    """Collects a run's engine events and forwards each to ``forward``."""

    def __init__(self, forward: OnEvent | None = None) -> None:
        self.events: list[EngineEvent] = []
        self._forward = forward

    def __call__(self, event: EngineEvent) -> None:
        self.events.append(event)
        if self._forward is not None:
            self._forward(event)

    def errors(self) -> list[str]:
        """The engine's error diagnostics, one line each, generic summaries dropped.

        Providers repeat their error inside a summary (``1 error occurred: * ...``);
        a line contained in another line already kept adds nothing.
        """
        lines: list[str] = []
        for event in self.events:
            d = event.diagnostic_event
            if d is None or d.severity != "error":
                continue
            for line in diagnostic_lines(d.message):
                if not any(line in kept for kept in lines):
                    lines.append(line)
        specific = [line for line in lines if not _GENERIC.match(line)]
        return specific or lines


# The engine closes a failed run with these; they say nothing the other errors do not.
_GENERIC = re.compile(
    r"^(error: )?(update|preview|destroy|refresh) failed$|^an unhandled error occurred:?$"
    r"|^an unhandled error occurred: Program exited with non-zero exit code: \d+$"
    r"|^Program failed with an unhandled exception:?$|^\d+ errors? occurred:?$"
)


class PulumiEngine:
    """Pulumi's Automation API on the project's program and local file backend."""

    def _stack(self, ref: StackRef) -> Stack:
        from pulumi import automation as auto  # slow import, engine runs only

        env_vars, root = _toolchain_for(ref.project)
        opts = auto.LocalWorkspaceOptions(
            work_dir=str(ref.project),
            env_vars=env_vars,
            pulumi_command=auto.PulumiCommand(root=str(root)),
        )
        return auto.create_or_select_stack(ref.env, work_dir=str(ref.project), opts=opts)

    def init(self, ref: StackRef) -> None:
        with _failures("init", ref, EventLog()):
            self._stack(ref)

    def set_secret(self, ref: StackRef, name: str, value: str) -> None:
        from pulumi.automation import ConfigValue

        with _failures("config", ref, EventLog()):
            self._stack(ref).set_config(name, ConfigValue(value=value, secret=True))

    def preview(self, ref: StackRef, on_event: OnEvent) -> None:
        log = EventLog(on_event)
        with _failures("preview", ref, log), _config_file(ref) as config_file:
            self._stack(ref).preview(on_event=log, config_file=config_file, color="never")

    def up(self, ref: StackRef, on_event: OnEvent) -> None:
        log = EventLog(on_event)
        with _failures("up", ref, log), _config_file(ref) as config_file:
            self._stack(ref).up(
                on_event=log, config_file=config_file, color="never", parallel=_parallel(ref)
            )

    def destroy(self, ref: StackRef, on_event: OnEvent) -> None:
        log = EventLog(on_event)
        with _failures("destroy", ref, log), _config_file(ref) as config_file:
            self._stack(ref).destroy(
                on_event=log, config_file=config_file, color="never", parallel=_parallel(ref)
            )

    def refresh(self, ref: StackRef, on_event: OnEvent) -> None:
        log = EventLog(on_event)
        with _failures("refresh", ref, log), _config_file(ref) as config_file:
            self._stack(ref).refresh(on_event=log, config_file=config_file, color="never")

    def outputs(self, ref: StackRef) -> dict[str, StackOutput]:
        with _failures("outputs", ref, EventLog()):
            found = self._stack(ref).outputs()
        return {name: StackOutput(out.value, out.secret) for name, out in found.items()}


def _parallel(ref: StackRef) -> int | None:
    """How many resource operations the engine may run at once (None: Pulumi's default).

    The libvirt provider shares one connection between operations, and a cloud-init ISO
    upload running beside a domain deletion was seen to hang both forever: on libvirt,
    one operation at a time.
    """
    return 1 if load(ref).target.engine == "libvirt" else None


def _toolchain_for(project: Path) -> tuple[dict[str, str], Path]:
    """Environment variables for the Pulumi CLI and the directory holding ``bin/pulumi``."""
    from virtstack import engine

    env_vars = engine.pulumi_environment(project)  # ToolchainMissingError when not built
    return env_vars, engine.toolchain_dir(project)


@contextlib.contextmanager
def _config_file(ref: StackRef) -> Iterator[str | None]:
    """A copy of the stack file with the target overridden, for one run; else None."""
    if ref.target is None:
        yield None
        return
    document = stackedit.load_file(stack_file(ref.project, ref.env))
    document["config"][f"{NAMESPACE}:target"] = ref.target
    with tempfile.TemporaryDirectory(prefix="virtstack-override-") as tmp:
        path = Path(tmp) / f"Pulumi.{ref.env}.yaml"
        path.write_text(stackedit.dump(document))
        yield str(path)


@contextlib.contextmanager
def _failures(operation: str, ref: StackRef, log: EventLog) -> Iterator[None]:
    """Automation API errors as :class:`OperationError`, one line per engine error."""
    from pulumi.automation import errors as auto_errors

    try:
        yield
    except auto_errors.ConcurrentUpdateError:
        raise OperationError(
            operation, ref.env, ["another update of this stack is running; try again after it"]
        ) from None
    except auto_errors.CommandError as exc:
        problems = log.errors() or _stderr_problems(exc)
        raise OperationError(operation, ref.env, problems) from None


def _stderr_problems(exc: Exception) -> list[str]:
    """Error lines of a failed CLI call when it sent no events (bad config, no stack)."""
    text = str(exc).partition("\n stderr: ")[2] or str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln.removeprefix("error: ") for ln in lines if ln.startswith("error:")]
    return errors or lines[-3:]
