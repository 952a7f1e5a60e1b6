"""The Pulumi CLI, run as the Automation API runs it, made safe to interrupt.

The stock runner starts ``pulumi`` in virtstack's own process group, so a Ctrl-C on the
terminal also reaches the language host and the provider plugins directly; and when
Python unwinds on KeyboardInterrupt it stops waiting for ``pulumi``, which then dies on a
closed pipe holding the stack's lock, with its plugins orphaned. Here ``pulumi`` runs in a
session of its own and gets exactly one SIGINT from virtstack, which is Pulumi's own
graceful cancel: operations in flight finish, the state is written, the lock is released
and the plugins are stopped. virtstack waits for that, then reports the interruption. From
just before ``pulumi`` starts until it has ended, a Ctrl-C is queued rather than raised, so
no press can land between starting it and supervising it.

A run's engine events come from the file Pulumi writes them to (``--event-log``), read
as they arrive. Only that reader imports Pulumi's SDK (for its event type, about 0.25 s
of CPU), and only once ``pulumi`` has started: virtstack's own start-up does not wait
for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from virtstack.errors import RunInterruptedError
from virtstack.gate import Gate

if TYPE_CHECKING:
    from virtstack.engineevents import EngineEvent

CANCEL_GRACE = 300.0
"""Seconds Pulumi may take to finish the operations in flight after a Ctrl-C."""

OnOutput = Callable[[str], None]
OnEvent = Callable[["EngineEvent"], None]

INTERRUPTED_BEFORE = "interrupted before Pulumi started: nothing was changed"
INTERRUPTED_HELD = "interrupted before the run declared anything: nothing was changed"

EVENT_POLL = 0.05
"""Seconds between looks at the event file while Pulumi runs (it has no end marker
until the run ends; the last events are read as soon as the process exits)."""


@dataclass(frozen=True)
class Finished:
    """A ``pulumi`` run that ended by itself."""

    code: int
    stdout: str
    stderr: str

    def check(self) -> Finished:
        """This run, unless it failed: then the Automation API's error for it (a
        ConcurrentUpdateError for a locked stack, else a CommandError)."""
        if self.code != 0:
            from pulumi.automation import CommandResult
            from pulumi.automation.errors import create_command_error

            raise create_command_error(CommandResult(self.stdout, self.stderr, self.code))
        return self


def run(
    pulumi: str,
    args: list[str],
    cwd: str,
    additional_env: Mapping[str, str],
    on_output: OnOutput | None = None,
    on_error: OnOutput | None = None,
    on_start: Callable[[], None] | None = None,
) -> Finished:
    """Run ``pulumi args`` in a session of its own; a Ctrl-C becomes its graceful cancel
    (then RunInterruptedError). A run that fails is returned too: see :meth:`Finished.check`.
    ``on_start`` is called once the process runs."""
    with _ctrl_c_queued() as presses:
        process = _Process(pulumi, args, cwd, additional_env, presses, on_output, on_error)
        if on_start is not None:
            on_start()
        return process.wait()


def run_with_events(
    pulumi: str, args: list[str], cwd: str, additional_env: Mapping[str, str], on_event: OnEvent
) -> Finished:
    """:func:`run` with ``--event-log``: each engine event goes to ``on_event`` as it comes
    (from another thread), and every one has gone before this returns."""
    with tempfile.TemporaryDirectory(prefix="virtstack-events-") as tmp:
        path = Path(tmp) / "events.jsonl"
        reader = _EventReader(path, on_event)
        try:
            # Started once `pulumi` runs: its import would only slow virtstack's last steps.
            return run(
                pulumi,
                [*args, "--event-log", str(path)],
                cwd,
                additional_env,
                on_start=reader.start,
            )
        finally:
            reader.finish()


class Held:
    """A run started by :func:`held`, its program waiting at the gate."""

    def __init__(self, process: _Process, gate: Gate, events: Path) -> None:
        self._process = process
        self._gate = gate
        self._events = events
        self.released = False
        self.stopped: Finished | None = None
        """How the run ended, once :meth:`stop` stopped it."""

    def go(self, on_event: OnEvent) -> Finished:
        """Let the run go on and wait for its end, as :func:`run_with_events` does; a
        Ctrl-C pressed while it was held stops it with nothing changed (RunInterruptedError)."""
        self.released = True
        if self._process.interrupted():
            self.stop()
            raise RunInterruptedError(INTERRUPTED_HELD)
        self._gate.go()
        # Only now: the events so far are in the file, and the SDK's import would have
        # competed with the checks that ran meanwhile.
        reader = _EventReader(self._events, on_event)
        reader.start()
        try:
            return self._process.wait()
        finally:
            reader.finish()

    def stop(self) -> None:
        """Fail the program at the gate and wait for the run's end (it changed nothing)."""
        self.released = True
        self._gate.stop()
        self.stopped = self._process.ended()


@contextlib.contextmanager
def held(
    pulumi: str, args: list[str], cwd: str, additional_env: Mapping[str, str]
) -> Iterator[Held]:
    """``pulumi args`` started now, its program held at the gate (:mod:`virtstack.gate`)
    until :meth:`Held.go`: the caller checks meanwhile. Leaving the block otherwise stops
    the run before its program declares anything. Until the run has ended, a Ctrl-C is
    queued, as in :func:`run`."""
    with tempfile.TemporaryDirectory(prefix="virtstack-run-") as tmp:
        gate = Gate(Path(tmp))
        try:
            events = Path(tmp) / "events.jsonl"
            with _ctrl_c_queued() as presses:
                process = _Process(
                    pulumi,
                    [*args, "--event-log", str(events)],
                    cwd,
                    {**additional_env, **gate.variable},
                    presses,
                )
                run = Held(process, gate, events)
                try:
                    yield run
                finally:
                    if not run.released:
                        run.stop()
        finally:
            gate.close()


class _Process:
    """A started ``pulumi`` in a session of its own, its output read as it comes."""

    def __init__(
        self,
        pulumi: str,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        presses: queue.SimpleQueue[int],
        on_output: OnOutput | None = None,
        on_error: OnOutput | None = None,
    ) -> None:
        # Never prompt: a run with nobody to answer must fail, not hang.
        head = args[: args.index("--")] if "--" in args else args
        argv = [pulumi, *([] if "--non-interactive" in head else ["--non-interactive"]), *args]
        env = {**os.environ, **additional_env, "PULUMI_AUTOMATION_API": "true"}
        # Plugins next to the binary first, as the stock runner does.
        env["PATH"] = os.pathsep.join([str(Path(pulumi).parent), env.get("PATH", "")])
        self._presses = presses
        self._process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            encoding="utf-8",
            start_new_session=True,
        )
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [
            threading.Thread(
                target=_read, args=(self._process.stdout, on_output, self._out), daemon=True
            ),
            threading.Thread(
                target=_read, args=(self._process.stderr, on_error, self._err), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()
        threading.Thread(target=_report_exit, args=(self._process, presses), daemon=True).start()

    def interrupted(self) -> bool:
        """Whether a Ctrl-C was pressed since the start (the run's end stays queued)."""
        seen: list[int] = []
        with contextlib.suppress(queue.Empty):
            while True:
                seen.append(self._presses.get_nowait())
        if _EXITED in seen:
            self._presses.put(_EXITED)
        return any(item != _EXITED for item in seen)

    def wait(self) -> Finished:
        """The run's end; a Ctrl-C meanwhile is its graceful cancel (RunInterruptedError)."""
        code = _wait(self._process, self._presses)
        if code is None:
            _cancel(self._process, self._presses)
            raise RunInterruptedError(
                "interrupted: Pulumi cancelled the run after the operations in flight "
                "(the stack is consistent; run the command again to converge)"
            )
        return self.ended()

    def ended(self) -> Finished:
        """The run's end, waited for regardless of Ctrl-C (for a run that was stopped)."""
        code = self._process.wait()
        for reader in self._readers:
            reader.join()
        return Finished(code, "\n".join(self._out), "\n".join(self._err))


class _EventReader(threading.Thread):
    """Reads the event file as Pulumi appends to it, one JSON document a line."""

    def __init__(self, path: Path, on_event: OnEvent) -> None:
        super().__init__(name="pulumi-events", daemon=True)
        self._path = path
        self._on_event = on_event
        self._ended = threading.Event()
        self._failure: BaseException | None = None

    def run(self) -> None:
        try:
            self._follow()
        except BaseException as exc:  # raised again by finish()
            self._failure = exc

    def finish(self) -> None:
        """After the run: deliver what is left, then raise what a callback raised."""
        self._ended.set()
        if self.ident is not None:  # started
            self.join()
        if self._failure is not None:
            raise self._failure

    def _follow(self) -> None:
        from virtstack.engineevents import EngineEvent

        with contextlib.ExitStack() as stack:
            stream: IO[str] | None = None
            partial = ""
            while True:
                ended = self._ended.is_set()  # before reading: nothing is written after
                if stream is None and self._path.exists():
                    stream = stack.enter_context(self._path.open(encoding="utf-8"))
                for line in _lines(stream):
                    if not line.endswith("\n"):
                        partial += line
                        continue
                    self._on_event(EngineEvent.from_json(json.loads(partial + line)))
                    partial = ""
                if ended:
                    return
                self._ended.wait(EVENT_POLL)


def _lines(stream: IO[str] | None) -> Iterator[str]:
    """The lines (the last one maybe partial) that are in the file by now."""
    if stream is None:
        return
    while line := stream.readline():
        yield line


@contextlib.contextmanager
def _ctrl_c_queued() -> Iterator[queue.SimpleQueue[int]]:
    """While ``pulumi`` is started and waited for, a Ctrl-C is queued (in the queue this
    yields), never raised; one pressed before it has started is RunInterruptedError.

    A KeyboardInterrupt raised between starting ``pulumi`` and waiting for it would leave
    it running unsupervised; queued, every press is handled where it is safe.
    ``SimpleQueue.put`` is reentrant, so a signal handler may call it.
    """
    presses: queue.SimpleQueue[int] = queue.SimpleQueue()
    if threading.current_thread() is not threading.main_thread():
        yield presses  # only the main thread receives signals
        return
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: presses.put(signum))
    try:
        if not presses.empty():
            raise RunInterruptedError(INTERRUPTED_BEFORE)
        yield presses
    finally:
        signal.signal(signal.SIGINT, previous)


def _read(stream: IO[str] | None, callback: OnOutput | None, lines: list[str]) -> None:
    assert stream is not None
    for line in iter(stream.readline, ""):
        line = line.rstrip()
        if callback is not None:
            callback(line)
        lines.append(line)
    stream.close()


_EXITED = -1
"""Queued with the presses when ``pulumi`` has ended (signal numbers are positive)."""


def _report_exit(process: subprocess.Popen[str], presses: queue.SimpleQueue[int]) -> None:
    # The end of a run wakes the waiter at once, as a press does, rather than at a poll.
    process.wait()
    presses.put(_EXITED)


def _wait(
    process: subprocess.Popen[str], presses: queue.SimpleQueue[int], timeout: float | None = None
) -> int | None:
    """The process's exit code, or None as soon as a Ctrl-C is pressed."""
    try:
        woken_by = presses.get(timeout=timeout)
    except queue.Empty:
        raise subprocess.TimeoutExpired(process.args, timeout or 0.0) from None
    return process.returncode if woken_by == _EXITED else None


def _cancel(process: subprocess.Popen[str], presses: queue.SimpleQueue[int]) -> None:
    """Pulumi's graceful cancel, then nothing of its process tree left behind."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        # Each further Ctrl-C is passed on: Pulumi's own "force exit" (it may leave the lock).
        while _wait(process, presses, timeout=CANCEL_GRACE) is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    # Plugins or the program that outlived pulumi (it leads its own process group).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
