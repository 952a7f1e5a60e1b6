"""One virtstack command at a time per environment, and who holds it when refused.

Pulumi locks a stack only while it runs an update, and its lock outlives a crash; ours is
an ``flock`` the kernel drops with the process, held for the whole command (the stack
file edits of ``scale`` included), so a second ``up`` is refused at once with one line
naming the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from virtstack.errors import EnvironmentBusyError


def lock_path(project: Path, env: str) -> Path:
    """Where environment ``env``'s lock lives (beside the local state, never committed)."""
    return project / ".virtstack" / "locks" / f"{env}.lock"


@contextlib.contextmanager
def hold(project: Path, env: str, command: str) -> Iterator[None]:
    """Hold ``env`` for ``command``, or raise :class:`EnvironmentBusyError` naming the holder."""
    path = lock_path(project, env)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EnvironmentBusyError(f"{env}: busy: {holder(path)}; try again after it") from None
        handle.seek(0)
        handle.truncate()
        json.dump(
            {
                "pid": os.getpid(),
                "command": command,
                "user": getpass.getuser(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "argv": sys.argv,
            },
            handle,
        )
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def holder(path: Path) -> str:
    """Who holds the lock at ``path``, in words."""
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another virtstack command holds it"
    return (
        f"`virtstack {info.get('command', '?')}` (pid {info.get('pid', '?')}, "
        f"{info.get('user', '?')}@{info.get('host', '?')}, since {info.get('since', '?')})"
    )


def process_running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (someone else's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
