"""restic, the backup repository: a thin client over its command line.

The repository's location and password reach restic through its environment
(``RESTIC_REPOSITORY``, ``RESTIC_PASSWORD_FILE``), never its command line, which every
local user can read.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from virtstack.engines.hostcmd import first_line
from virtstack.errors import BackupError, ToolMissingError

TAG_ENV = "virtstack-env="
"""Every snapshot of an environment's backup carries ``virtstack-env=<env>``."""
TAG_ID = "virtstack-backup="
"""... and ``virtstack-backup=<id>``: a backup is the snapshots sharing this tag."""
MANIFEST = "manifest.json"
"""Written last: a backup without one was cut short and does not count."""


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """One restic snapshot: a single file (a tar stream, the declaration, the manifest)."""

    id: str
    time: str
    path: str
    tags: list[str]

    def tag(self, prefix: str) -> str | None:
        """The value of this snapshot's ``prefix<value>`` tag, if any."""
        return next((t.removeprefix(prefix) for t in self.tags if t.startswith(prefix)), None)


@dataclass(frozen=True)
class Repository:
    """A restic repository and the file holding its password."""

    location: str
    password_file: Path

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "RESTIC_REPOSITORY": self.location,
            "RESTIC_PASSWORD_FILE": str(self.password_file),
            "RESTIC_PROGRESS_FPS": "0.2",
        }

    def run(self, *args: str, timeout: float | None = 600) -> str:
        """stdout of ``restic ARGS``; a failure raises with restic's first error line."""
        done = subprocess.run(
            [_restic(), *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise BackupError(f"restic {args[0]}: {_error_line(done.stderr or done.stdout)}")
        return done.stdout

    def ensure(self) -> bool:
        """Create the repository unless it exists; whether it was created."""
        try:
            self.run("cat", "config", timeout=120)
        except BackupError:
            self.run("init", timeout=120)
            return True
        return False

    def backup_stream(
        self, source: IO[bytes] | int, filename: str, tags: Sequence[str], host: str
    ) -> int:
        """Store ``source`` (a stream) as ``/filename``; the bytes it added to the repository."""
        args = ["backup", "--json", "--quiet", "--stdin", "--stdin-filename", filename]
        args += ["--host", host] + [a for t in tags for a in ("--tag", t)]
        done = subprocess.run(
            [_restic(), *args],
            env=self.environment(),
            stdin=source,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BackupError(f"restic backup {filename}: {_error_line(done.stderr)}")
        for line in done.stdout.splitlines():
            record = json.loads(line) if line.startswith("{") else {}
            if record.get("message_type") == "summary":
                return int(record.get("data_added", 0))
        return 0

    def backup_bytes(self, data: bytes, filename: str, tags: Sequence[str], host: str) -> int:
        """Store ``data`` as ``/filename``; the bytes it added."""
        with _pipe(data) as source:
            return self.backup_stream(source, filename, tags, host)

    def snapshots(self, *tags: str) -> list[Snapshot]:
        """Every snapshot carrying all ``tags``, oldest first."""
        args = ["snapshots", "--json"] + [a for t in tags for a in ("--tag", t)]
        found: list[dict[str, Any]] = json.loads(self.run(*args) or "[]") or []
        return [
            Snapshot(
                id=str(s["id"]),
                time=str(s["time"]),
                path=str((s.get("paths") or ["?"])[0]),
                tags=list(s.get("tags") or []),
            )
            for s in found
        ]

    @contextlib.contextmanager
    def dump(self, snapshot: Snapshot) -> Iterator[subprocess.Popen[bytes]]:
        """``restic dump`` of a snapshot's file, its stdout a stream; checked on exit."""
        proc = subprocess.Popen(
            [_restic(), "dump", "--quiet", snapshot.id, snapshot.path],
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        try:
            yield proc
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            if proc.wait() != 0:
                raise BackupError(f"restic dump {snapshot.path}: {_error_line(err)}")

    def read(self, snapshot: Snapshot) -> bytes:
        """A (small) snapshot's file, whole."""
        with self.dump(snapshot) as proc:
            assert proc.stdout is not None
            return proc.stdout.read()

    def check_readable(self, snapshot: Snapshot) -> None:
        """Read every byte of a snapshot's file back: restic authenticates each block."""
        with self.dump(snapshot) as proc:
            assert proc.stdout is not None
            while proc.stdout.read(1 << 20):
                pass

    def forget(self, ids: Sequence[str]) -> None:
        """Drop these snapshots, then the data only they used (stale locks cleared first)."""
        if not ids:
            return
        self.run("unlock")
        self.run("forget", *ids)
        self.run("prune", timeout=None)

    def check(self, subset: str) -> list[str]:
        """``restic check --read-data-subset``: the damage found, one line each."""
        done = subprocess.run(
            [_restic(), "check", f"--read-data-subset={subset}"],
            env=self.environment(),
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode == 0:
            return []
        lines = [ln.strip() for ln in (done.stdout + done.stderr).splitlines()]
        return [ln for ln in lines if _is_damage(ln)] or [_error_line(done.stderr)]


def _is_damage(line: str) -> bool:
    words = ("error", "damaged", "invalid", "mismatch", "wrong", "fatal")
    return bool(line) and any(w in line.lower() for w in words)


def _error_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    fatal = [ln for ln in lines if ln.startswith("Fatal:")]
    return first_line((fatal or lines or ["failed without a message"])[-1]).removeprefix("Fatal: ")


@contextlib.contextmanager
def _pipe(data: bytes) -> Iterator[int]:
    """A pipe's reading end fed ``data`` (small: declarations, states, manifests)."""
    import threading

    read_end, write_end = os.pipe()

    def feed() -> None:
        with os.fdopen(write_end, "wb") as out:
            out.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        yield read_end
    finally:
        os.close(read_end)
        writer.join()


def _restic() -> str:
    found = shutil.which("restic")
    if found is None:
        raise ToolMissingError("restic is not installed here (apt-get install restic)")
    return found
