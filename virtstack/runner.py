"""The runner: Pulumi, which runs the program and keeps the stack's state.

(The *engine* is what runs the workloads, Docker or libvirt; see :mod:`virtstack.engines`.)
:class:`PulumiRunner` runs the Pulumi CLI on the project's local file backend, as the
Automation API would (:mod:`virtstack.pulumicmd`); the CLI only needs the :class:`Runner`
protocol, so it is tested without Pulumi.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from virtstack import checkpoint, pulumicmd, stackfiles, tlsfiles, toolchain
from virtstack.checkpoint import StackOutput
from virtstack.configkeys import NAMESPACE
from virtstack.errors import EnvironmentBusyError, OperationError
from virtstack.locks import process_running
from virtstack.plan.events import diagnostic_lines

if TYPE_CHECKING:
    from virtstack.automation import Stack
    from virtstack.engineevents import EngineEvent
    from virtstack.engines.base import EngineAdapter
    from virtstack.environment import Environment, StackRef
    from virtstack.targets import Target

OnEvent = Callable[["EngineEvent"], None]

__all__ = ["EventLog", "OnEvent", "PendingRun", "PulumiRunner", "Runner", "StackOutput"]


class Runner(Protocol):
    """What the CLI needs from Pulumi. Each run reports progress through ``on_event``.

    ``up`` and ``destroy`` get the checked environment: its engine decides how many
    resource operations may run at once.
    """

    def has_stack(self, ref: StackRef) -> bool:
        """Whether the stack exists in the backend."""
        ...

    def init(self, ref: StackRef) -> None:
        """Create the stack in the backend unless it exists."""

    def set_secret(self, ref: StackRef, name: str, value: str, *, path: bool = False) -> None:
        """Store ``value`` encrypted under config key ``name`` in the stack file (with
        ``path``, ``name`` is a path into an object: ``virtstack:secrets.db``)."""

    def preview(self, ref: StackRef, on_event: OnEvent) -> None: ...

    def up(self, ref: StackRef, environment: Environment, on_event: OnEvent) -> None: ...

    def start_up(self, ref: StackRef, target: Target) -> AbstractContextManager[PendingRun]:
        """``up`` of an environment on ``target``, started now and held before its program
        declares anything, while the caller checks (:mod:`virtstack.gate`), the environment
        itself included: :meth:`PendingRun.go` runs it; leaving the block without that stops
        it with nothing changed."""
        ...

    def destroy(self, ref: StackRef, environment: Environment, on_event: OnEvent) -> None: ...

    def refresh(self, ref: StackRef, on_event: OnEvent) -> None: ...

    def outputs(self, ref: StackRef) -> dict[str, StackOutput]:
        """The stack's outputs, secret ones masked ({} when it was never deployed)."""
        ...

    def export_state(self, ref: StackRef) -> str:
        """The stack's state as JSON (``pulumi stack export``: secrets stay encrypted)."""
        ...

    def unlock(self, ref: StackRef) -> list[str]:
        """Clear a lock a crashed run left on the stack; the holders cleared."""
        ...


class PendingRun(Protocol):
    """A run started by :meth:`Runner.start_up`."""

    def go(self, on_event: OnEvent) -> None:
        """Let the run go on and wait for its end (errors as :meth:`Runner.up` raises)."""


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
        """Pulumi's error diagnostics, one line each, generic summaries dropped.

        Providers repeat their error inside a summary (``1 error occurred: * ...``);
        a line contained in another line already kept adds nothing.
        """
        lines: list[str] = []
        for line in self._diagnostics("error"):
            if not any(line in kept for kept in lines):
                lines.append(line)
        specific = [line for line in lines if not _GENERIC.match(line)]
        return specific or lines

    def warnings(self) -> list[str]:
        """The program's and providers' warnings, one line each, each once."""
        return list(dict.fromkeys(self._diagnostics("warning")))

    def _diagnostics(self, severity: str) -> Iterator[str]:
        """The lines of every diagnostic of ``severity``, in order."""
        for event in self.events:
            d = event.diagnostic_event
            if d is not None and d.severity == severity:
                yield from diagnostic_lines(d.message)


# Pulumi closes a failed run with these; they say nothing the other errors do not.
_GENERIC = re.compile(
    r"^(error: )?(update|preview|destroy|refresh) failed$|^an unhandled error occurred:?$"
    r"|^an unhandled error occurred: Program exited with non-zero exit code: \d+$"
    r"|^Program failed with an unhandled exception:?$|^\d+ errors? occurred:?$"
)


def stack_environment(ref: StackRef) -> dict[str, str]:
    """The variables ``ref``'s Pulumi runs get: the toolchain's, and the one CA they trust.

    The providers (Go: the file is read when they first verify a certificate, after the
    program made the CA) trust the environment's own CA and no other: its registry is the
    only HTTPS server they reach by the system's roots.
    """
    env_vars = toolchain.pulumi_environment(ref.project)  # ToolchainMissingError
    env_vars["SSL_CERT_FILE"] = str(tlsfiles.ca_file(Path(ref.project), ref.env))
    return env_vars


class PulumiRunner:
    """The Pulumi CLI on the project's program and local file backend.

    One runner serves one command: it opens each Automation API stack once, and reads
    outputs from the stack's checkpoint.
    """

    def __init__(self) -> None:
        self._stacks: dict[tuple[Path, str], Stack] = {}

    def _stack(self, ref: StackRef) -> Stack:
        # The target override and a pending edit only change the config file of a run.
        key = (Path(ref.project), ref.env)
        if key not in self._stacks:
            from virtstack import automation  # slow (Pulumi's SDK): the calls it serves only

            self.init(ref)
            self._stacks[key] = automation.open_stack(ref)
        return self._stacks[key]

    def has_stack(self, ref: StackRef) -> bool:
        # A stack with a checkpoint exists: no CLI start to ask.
        return checkpoint.checkpoint_file(ref) is not None

    def init(self, ref: StackRef) -> None:
        if self.has_stack(ref):
            return
        with _failures("init", ref, EventLog()):
            env = stack_environment(ref)  # first: ToolchainMissingError
            done = pulumicmd.run(_pulumi(ref), ["stack", "init", ref.env], str(ref.project), env)
            if done.code != 0 and checkpoint.checkpoint_file(ref) is None:
                done.check()  # not made meanwhile by another command: a real failure

    def set_secret(self, ref: StackRef, name: str, value: str, *, path: bool = False) -> None:
        self.init(ref)
        env = toolchain.pulumi_environment(ref.project)  # first: ToolchainMissingError
        # On standard input, never on a command line: argv is readable by every local user.
        argv = [
            _pulumi(ref),
            "--non-interactive", "config", "set", "--secret", "--stack", ref.env,
            *(["--path"] if path else []), name,
        ]  # fmt: skip
        done = subprocess.run(
            argv,
            input=value,
            capture_output=True,
            text=True,
            cwd=ref.project,
            env={**os.environ, **env},
            check=False,
        )
        if done.returncode != 0:
            problems = [ln.removeprefix("error: ") for ln in done.stderr.splitlines() if ln]
            raise OperationError("config", ref.env, problems[-1:] or ["pulumi config set failed"])

    def unlock(self, ref: StackRef) -> list[str]:
        """Clear Pulumi's lock on the stack, left by a run that crashed; the holders cleared.

        Refused while the holder still runs on this machine.
        """
        found = pulumi_locks(ref.project, ref.env)
        for lock in found:
            if lock.alive():
                raise EnvironmentBusyError(
                    f"{ref.env}: Pulumi's lock is held by a running process: {lock}"
                )
        if found:
            with _failures("cancel", ref, EventLog()):
                self._stack(ref).cancel()
        return [str(lock) for lock in found]

    def preview(self, ref: StackRef, on_event: OnEvent) -> None:
        self._run("preview", ref, [], on_event)

    def up(self, ref: StackRef, environment: Environment, on_event: OnEvent) -> None:
        self._run("up", ref, _applying(environment.adapter), on_event)

    def destroy(self, ref: StackRef, environment: Environment, on_event: OnEvent) -> None:
        self._run("destroy", ref, _applying(environment.adapter), on_event)

    def refresh(self, ref: StackRef, on_event: OnEvent) -> None:
        self._run("refresh", ref, ["--yes", "--skip-preview"], on_event)

    @contextlib.contextmanager
    def start_up(self, ref: StackRef, target: Target) -> Iterator[PendingRun]:
        self.init(ref)
        with _config_file(ref) as config_file:
            args = _arguments("up", ref, _applying(target.adapter), config_file)
            env = _run_environment(ref)  # first: ToolchainMissingError
            with pulumicmd.held(_pulumi(ref), args, str(ref.project), env) as run:
                yield _PendingUp(ref, run)

    def _run(self, operation: str, ref: StackRef, flags: list[str], on_event: OnEvent) -> None:
        """One Pulumi operation, with the arguments the Automation API would give it."""
        log = EventLog(on_event)
        self.init(ref)
        with _failures(operation, ref, log), _config_file(ref) as config_file:
            args = _arguments(operation, ref, flags, config_file)
            env = _run_environment(ref)  # first: ToolchainMissingError
            pulumicmd.run_with_events(_pulumi(ref), args, str(ref.project), env, log).check()

    def outputs(self, ref: StackRef, *, reveal: bool = False) -> dict[str, StackOutput]:
        """The stack's outputs; ``reveal`` decrypts secret ones (two CLI starts)."""
        if not reveal:
            return checkpoint.outputs(ref) or {}
        with _failures("outputs", ref, EventLog()):
            stack = self._stack(ref)
            found = stack.workspace.stack_outputs(stack.name)
        return {name: StackOutput(out.value, out.secret) for name, out in found.items()}

    def export_state(self, ref: StackRef) -> str:
        with _failures("export", ref, EventLog()):
            deployment = self._stack(ref).export_stack()
        return json.dumps({"version": deployment.version, "deployment": deployment.deployment})


@dataclass(frozen=True)
class _PendingUp:
    ref: StackRef
    run: pulumicmd.Held

    def go(self, on_event: OnEvent) -> None:
        log = EventLog(on_event)
        with _failures("up", self.ref, log):
            self.run.go(log).check()


def _run_environment(ref: StackRef) -> dict[str, str]:
    """The variables of a Pulumi operation on ``ref``, as the Automation API sets them."""
    return {"PULUMI_DEBUG_COMMANDS": "true", **stack_environment(ref)}


def _arguments(
    operation: str, ref: StackRef, flags: list[str], config_file: str | None
) -> list[str]:
    """The arguments the Automation API would give ``pulumi operation``, and two it does
    not: virtstack shows its runs from their engine events, never from Pulumi's own display,
    so that display leaves out its outputs table and progress dots (work for nobody)."""
    return [
        operation, *flags, "--color", "never", "--exec-kind", "auto.local",
        "--suppress-outputs", "--suppress-progress",
        "--stack", ref.env, *(["--config-file", config_file] if config_file else []),
    ]  # fmt: skip


@dataclass(frozen=True)
class PulumiLock:
    """A lock Pulumi's file backend keeps while it updates a stack."""

    stack: str
    pid: int
    user: str
    host: str
    since: str

    def alive(self) -> bool:
        """Whether the holder still runs (on this machine; another host's: assume so)."""
        return self.host != socket.gethostname() or process_running(self.pid)

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.user}@{self.host}, since {self.since})"


def pulumi_locks(project: Path, env: str = "*") -> list[PulumiLock]:
    """The locks on stack ``env`` (every stack: ``*``) in the project's local backend."""
    root = project / ".virtstack" / "state" / ".pulumi" / "locks"
    found = []
    for path in sorted(root.glob(f"**/{env}/*.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            info = {}  # half written: nobody can be asked, so it counts as a dead holder's
        found.append(
            PulumiLock(
                stack=path.parent.name,
                pid=int(info.get("pid") or 0),
                user=str(info.get("username", "?")),
                host=str(info.get("hostname", socket.gethostname())),
                since=str(info.get("timestamp", "?")),
            )
        )
    return found


@contextlib.contextmanager
def _config_file(ref: StackRef) -> Iterator[str | None]:
    """A copy of the stack file for one run (target overridden, or a pending edit)."""
    if ref.target is None and ref.pending is None:
        yield None
        return
    # The whole file, not the checked config: the salt and the secrets must come along.
    document = (
        stackfiles.load(ref.pending, str(stackfiles.stack_file(ref.project, ref.env)))
        if ref.pending is not None
        else stackfiles.load_stack(ref.project, ref.env)
    )
    if ref.target is not None:
        document["config"][f"{NAMESPACE}:target"] = ref.target
    with tempfile.TemporaryDirectory(prefix="virtstack-override-") as tmp:
        path = Path(tmp) / f"Pulumi.{ref.env}.yaml"
        path.write_text(stackfiles.dump(document))
        yield str(path)


@contextlib.contextmanager
def _failures(operation: str, ref: StackRef, log: EventLog) -> Iterator[None]:
    """Automation API errors as :class:`OperationError`, one line per Pulumi error."""
    try:
        yield
    except Exception as exc:
        # Imported only now: Pulumi's SDK takes a while, and a run that worked needs none.
        from pulumi.automation import errors as auto_errors

        if isinstance(exc, auto_errors.ConcurrentUpdateError):
            holders = (
                "; ".join(str(lock) for lock in pulumi_locks(ref.project, ref.env))
                or "another process"
            )
            raise EnvironmentBusyError(
                f"{ref.env}: Pulumi's lock on the stack is held by {holders} (if that run "
                f"crashed: virtstack unlock {ref.env})"
            ) from None
        if isinstance(exc, auto_errors.CommandError):
            problems = log.errors() or _stderr_problems(exc)
            raise OperationError(operation, ref.env, problems) from None
        raise


def _stderr_problems(exc: Exception) -> list[str]:
    """Error lines of a failed CLI call when it sent no events (bad config, no stack)."""
    text = str(exc).partition("\n stderr: ")[2] or str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln.removeprefix("error: ") for ln in lines if ln.startswith("error:")]
    return errors or lines[-3:]


def _pulumi(ref: StackRef) -> str:
    """The toolchain's ``pulumi`` for the project; :func:`toolchain.pulumi_environment`,
    called before it, says when there is none."""
    return str(toolchain.toolchain_dir(ref.project) / "bin" / "pulumi")


def _applying(adapter: EngineAdapter) -> list[str]:
    """The flags of a run that applies its changes at once, ``--parallel N`` when the
    engine limits how many operations run at once."""
    parallel = adapter.parallel
    return ["--yes", "--skip-preview", *([] if parallel is None else ["--parallel", str(parallel)])]
