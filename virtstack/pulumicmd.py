"""The Pulumi CLI as the Automation API runs it, made safe to interrupt.

The stock runner starts ``pulumi`` in virtstack's own process group, so a Ctrl-C on the
terminal also reaches the language host and the provider plugins directly; and when
Python unwinds on KeyboardInterrupt it stops waiting for ``pulumi``, which then dies on a
closed pipe holding the stack's lock, with its plugins orphaned. Here ``pulumi`` runs in a
session of its own and gets exactly one SIGINT from virtstack, which is Pulumi's own
graceful cancel: operations in flight finish, the state is written, the lock is released
and the plugins are stopped. virtstack waits for that, then reports the interruption. From
just before ``pulumi`` starts until it has ended, a Ctrl-C is queued rather than raised, so
no press can land between starting it and supervising it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

from pulumi.automation import CommandResult, PulumiCommand
from pulumi.automation.errors import create_command_error
from semver import VersionInfo

from virtstack.errors import RunInterruptedError

CANCEL_GRACE = 300.0
"""Seconds Pulumi may take to finish the operations in flight after a Ctrl-C."""

OnOutput = Callable[[str], None]

INTERRUPTED_BEFORE = "interrupted before Pulumi started: nothing was changed"


class GracefulPulumiCommand(PulumiCommand):
    """``pulumi`` in its own session; a Ctrl-C becomes Pulumi's graceful cancel."""

    def __init__(self, root: str | None = None, *, known_version: str | None = None) -> None:
        if known_version is None:
            super().__init__(root)
            return
        # The toolchain's own stamp: `pulumi version` would take a CLI start to say it.
        self.command = os.path.join(root, "bin", "pulumi") if root else "pulumi"
        self.version = VersionInfo.parse(known_version.removeprefix("v"))

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: OnOutput | None = None,
        on_error: OnOutput | None = None,
    ) -> CommandResult:
        # Never prompt: a run with nobody to answer must fail, not hang.
        head = args[: args.index("--")] if "--" in args else args
        argv = [
            self.command,
            *([] if "--non-interactive" in head else ["--non-interactive"]),
            *args,
        ]
        env = {**os.environ, **additional_env, "PULUMI_AUTOMATION_API": "true"}
        # Plugins next to the binary first, as the stock runner does.
        env["PATH"] = os.pathsep.join([str(Path(self.command).parent), env.get("PATH", "")])
        presses: queue.SimpleQueue[int] = queue.SimpleQueue()
        with _ctrl_c_queued(presses):
            if not presses.empty():
                raise RunInterruptedError(INTERRUPTED_BEFORE)
            process = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=env,
                encoding="utf-8",
                start_new_session=True,
            )
            out: list[str] = []
            err: list[str] = []
            readers = [
                threading.Thread(target=_read, args=(process.stdout, on_output, out), daemon=True),
                threading.Thread(target=_read, args=(process.stderr, on_error, err), daemon=True),
            ]
            for reader in readers:
                reader.start()
            threading.Thread(target=_report_exit, args=(process, presses), daemon=True).start()
            code = _wait(process, presses)
            if code is None:
                _cancel(process, presses)
                raise RunInterruptedError(
                    "interrupted: Pulumi cancelled the run after the operations in flight "
                    "(the stack is consistent; run the command again to converge)"
                )
        for reader in readers:
            reader.join()
        result = CommandResult(stdout="\n".join(out), stderr="\n".join(err), code=code)
        if code != 0:
            raise create_command_error(result)
        return result


@contextlib.contextmanager
def _ctrl_c_queued(presses: queue.SimpleQueue[int]) -> Iterator[None]:
    """While ``pulumi`` is started and waited for, a Ctrl-C is queued, never raised.

    A KeyboardInterrupt raised between starting ``pulumi`` and waiting for it would leave
    it running unsupervised; queued, every press is handled where it is safe.
    ``SimpleQueue.put`` is reentrant, so a signal handler may call it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: presses.put(signum))
    try:
        yield
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
