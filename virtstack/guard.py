"""Undo commands that run even if virtstack is killed: a paused replica is unpaused.

:func:`released` starts a watcher in a session of its own, holding the reading end of a
pipe whose writing end only this process has. When the block ends normally this process
runs the commands itself and tells the watcher it is done; if it dies instead (SIGKILL,
a closed terminal, a stopped service), the pipe closes and the watcher runs them.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence

DONE = b"done\n"


def run_all(commands: Sequence[Sequence[str]]) -> list[str]:
    """Run every command, in order, whatever each does; the failures, one line each."""
    failed = []
    for argv in commands:
        try:
            done = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            failed.append(f"{' '.join(argv[-3:])}: {exc}")
            continue
        if done.returncode != 0:
            lines = (done.stderr or done.stdout or "failed").strip().splitlines()
            failed.append(lines[-1] if lines else "failed")
    return failed


@contextlib.contextmanager
def released(commands: Sequence[Sequence[str]], failures: list[str]) -> Iterator[None]:
    """Run ``commands`` when the block ends, however it ends; failures go to ``failures``."""
    if not commands:
        yield
        return
    watcher = subprocess.Popen(
        [sys.executable, "-m", "virtstack.guard", json.dumps([list(c) for c in commands])],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives a signal sent to our process group
    )
    try:
        yield
    finally:
        failures.extend(run_all(commands))
        assert watcher.stdin is not None
        with contextlib.suppress(OSError):
            watcher.stdin.write(DONE)
            watcher.stdin.close()
        watcher.wait()


def _watch(commands: list[list[str]]) -> None:
    """The watcher: run ``commands`` unless told it is done before the pipe closes."""
    received = b""

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(run_all(commands) and 1)

    signal.signal(signal.SIGTERM, stop)  # a stopped service: release, then go
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while chunk := sys.stdin.buffer.read(len(DONE)):
        received += chunk
    if received != DONE:
        run_all(commands)


if __name__ == "__main__":
    _watch(json.loads(sys.argv[1]))
