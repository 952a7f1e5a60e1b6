"""The gate: a Pulumi run that starts before virtstack's own checks have ended.

Starting ``pulumi`` takes about a second (its CLI, the language host, the program's
imports); virtstack's checks of the engine take a few tenths. ``up`` runs them side by
side: it starts the run with :data:`VARIABLE` naming a FIFO, and the program waits there
(:func:`wait`), before it declares anything, for the verdict: :data:`GO`, or anything else
(the checks failed, the user pressed Ctrl-C, virtstack ended), which fails the program
with nothing declared. Pulumi changes nothing for a program that fails (its
history records a failed update, as for any program error).

A run without the variable (``pulumi up -s ENV`` by hand, a preview) never waits.
"""

from __future__ import annotations

import os
import select
from pathlib import Path

from virtstack.errors import RunStoppedError
from virtstack.locks import process_running

VARIABLE = "VIRTSTACK_GATE"
"""The environment variable naming the gate: ``PID:PATH``, virtstack's process and the FIFO."""
GO = "go"
STOP = "stop"
_LOOK = 0.5
"""Seconds between looks at whether virtstack still runs, while the program waits."""


class Gate:
    """virtstack's side: a FIFO in ``directory`` that carries one verdict."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "gate"
        os.mkfifo(self.path, 0o600)
        # Read and write: opening does not wait for the program, and a verdict written
        # before the program opens the FIFO waits in it until this side is closed.
        self._fd: int | None = os.open(self.path, os.O_RDWR)

    @property
    def variable(self) -> dict[str, str]:
        """The environment of a run held at this gate."""
        return {VARIABLE: f"{os.getpid()}:{self.path}"}

    def go(self) -> None:
        """Let the program go on."""
        self._say(GO)

    def stop(self) -> None:
        """Fail the program before it declares anything."""
        self._say(STOP)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _say(self, verdict: str) -> None:
        if self._fd is None:
            raise ValueError("the gate is closed")
        os.write(self._fd, f"{verdict}\n".encode())


def wait() -> None:
    """The program's side: return once virtstack says go (at once when not gated);
    raises :class:`RunStoppedError` otherwise."""
    value = os.environ.get(VARIABLE)
    if not value:
        return
    pid, _, path = value.partition(":")
    try:
        # Not blocking: a FIFO whose writer is gone would hold a blocking open for ever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise RunStoppedError(f"{path}: virtstack's gate is gone (it ended)") from None
    try:
        # Readable: the verdict, or end of file once virtstack closed its side. A virtstack
        # that ended before this side opened shows no end of file: hence its PID.
        while not select.select([fd], [], [], _LOOK)[0]:
            if not process_running(int(pid)):
                break
        verdict = _read(fd)
    finally:
        os.close(fd)
    if verdict != GO:
        raise RunStoppedError(
            "stopped by virtstack before anything was declared (its checks failed, or it "
            "was interrupted)"
        )


def _read(fd: int) -> str:
    try:
        return os.read(fd, 64).decode().strip()
    except BlockingIOError:
        return ""  # nothing written, nobody left to write
