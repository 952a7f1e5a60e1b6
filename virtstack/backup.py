"""Backups of whole environments in a restic repository: data, declaration and state.

A backup is a set of restic snapshots sharing the tag ``virtstack-backup=<id>``: one per
piece of data (a tar stream of a volume), the stack file (``declaration.yaml``), the
Pulumi state export (``state.json``) and, written last, ``manifest.json``. A backup cut
short has no manifest: it is not listed, never restored, and retention removes it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virtstack import guard, stackfiles
from virtstack.errors import BackupError, UsageError
from virtstack.restic import MANIFEST, TAG_ENV, TAG_ID, Repository, Snapshot

if TYPE_CHECKING:
    from virtstack.engines.base import DataCopy
    from virtstack.environment import Environment
    from virtstack.session import Session

DECLARATION = "declaration.yaml"
STATE = "state.json"
TAG_USER = "virtstack-tag="
TAG_ADDED = "virtstack-added="
Say = Callable[[str], None]


def backups_dir(project: Path) -> Path:
    """``.virtstack/backups``: default repositories and their passwords."""
    return project / ".virtstack" / "backups"


def repository(project: Path, env: str, environment: Environment | None = None) -> Repository:
    """The environment's repository (``backup.repository`` or its own default one) and
    its password file (``backup.password_file``, or generated once, mode 0600)."""
    spec = environment.spec.backup if environment else None
    location = (spec and spec.repository) or str(backups_dir(project) / env)
    if spec and spec.password_file:
        given = Path(spec.password_file).expanduser()
        if not given.is_file() or given.stat().st_mode & 0o077:
            raise UsageError(
                f"virtstack:backup.password_file: {given} must be a file only its owner "
                "may read (chmod 600)"
            )
        return Repository(location, given)
    path = backups_dir(project) / f"{env}.password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    return Repository(location, path)


@dataclass(frozen=True, kw_only=True)
class Backup:
    """One complete backup, as listed."""

    id: str
    time: str
    tag: str
    added: int
    """Bytes this backup added to the repository."""
    files: list[str]
    """What is inside: the data's and the declaration's file names."""
    manifest: Snapshot
    snapshots: list[Snapshot] = field(default_factory=list)

    def snapshot(self, path: str) -> Snapshot:
        return next(s for s in self.snapshots if s.path == "/" + path)


def list_backups(repo: Repository, env: str) -> list[Backup]:
    """The environment's complete backups, oldest first."""
    return _sets(repo.snapshots(TAG_ENV + env))[0]


def _sets(found: Iterable[Snapshot]) -> tuple[list[Backup], list[Snapshot]]:
    """Complete backups, and the snapshots of backups cut short (no manifest)."""
    by_id: dict[str, list[Snapshot]] = {}
    for s in found:
        by_id.setdefault(s.tag(TAG_ID) or "", []).append(s)
    done, partial = [], []
    for backup_id, group in by_id.items():
        manifest = next((s for s in group if s.path == "/" + MANIFEST), None)
        if manifest is None:
            partial += group
            continue
        done.append(
            Backup(
                id=backup_id,
                time=manifest.time,
                tag=manifest.tag(TAG_USER) or "",
                added=int(manifest.tag(TAG_ADDED) or 0),
                files=sorted(s.path.lstrip("/") for s in group if s is not manifest),
                manifest=manifest,
                snapshots=group,
            )
        )
    return sorted(done, key=lambda b: b.time), partial


def find_backup(repo: Repository, env: str, wanted: str) -> Backup:
    """Backup ``wanted`` (an id, a prefix of one, or ``latest``) of ``env``."""
    found = list_backups(repo, env)
    if wanted == "latest":
        if not found:
            raise UsageError(f"{env}: no backups in {repo.location}")
        return found[-1]
    matches = [b for b in found if b.id.startswith(wanted)]
    if len(matches) != 1:
        known = ", ".join(b.id for b in found[-5:]) or "none"
        raise UsageError(f"{env}: no single backup {wanted!r} (latest: {known})")
    return matches[0]


@dataclass(frozen=True, kw_only=True)
class BackupResult:
    backup_id: str
    added: int
    files: list[str]
    warnings: list[str]


def backup(
    session: Session, *, tag: str | None, say: Say, include_root: bool = False
) -> BackupResult:
    """One consistent backup of the environment: its data, held still piece by piece (pre
    hooks, a pause, or a frozen guest; always released), then its declaration, state and
    manifest; with ``include_root`` the VMs' root disks too."""
    ref, environment = session.ref, session.environment
    copies = session.adapter.data_copies(
        environment.spec, ref.env, environment.uri, include_root=include_root
    )
    repo = repository(ref.project, ref.env, environment)
    if repo.ensure():
        say(f"created the restic repository {repo.location}")
    backup_id = secrets.token_hex(4)
    tags = [TAG_ENV + ref.env, TAG_ID + backup_id]
    host = ref.env
    warnings: list[str] = []
    items: list[dict[str, Any]] = []
    try:
        declaration = stackfiles.stack_file(ref.project, ref.env).read_bytes()
        added = repo.backup_bytes(declaration, DECLARATION, tags, host)
        state = session.runner.export_state(ref).encode()
        added += repo.backup_bytes(state, STATE, tags, host)
        for copy in copies:
            say(f"copying {copy.name} ({copy.owner})")
            size = _copy(repo, copy, tags, host, warnings)
            items.append(
                {"name": copy.name, "owner": copy.owner, "file": _file(copy), "kind": copy.kind}
            )
            added += size
    except BaseException:
        _abandon(repo, backup_id)
        raise
    tags_done = [*tags, TAG_ADDED + str(added)] + ([TAG_USER + tag] if tag else [])
    manifest = {
        "id": backup_id,
        "env": ref.env,
        "target": environment.target.name,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "tag": tag or "",
        "declaration": DECLARATION,
        "state": STATE,
        "data": items,
    }
    repo.backup_bytes(json.dumps(manifest, indent=2).encode(), MANIFEST, tags_done, host)
    files = [DECLARATION, STATE, *(i["file"] for i in items)]
    return BackupResult(backup_id=backup_id, added=added, files=files, warnings=warnings)


def _file(copy: DataCopy) -> str:
    return f"{copy.name}.{copy.stream}"


def _copy(repo: Repository, copy: DataCopy, tags: list[str], host: str, warn: list[str]) -> int:
    """Hold ``copy``'s data still, stream it into the repository, release it."""
    failures: list[str] = []
    try:
        with guard.released(copy.release, failures):
            for argv in copy.hold:
                _hold(argv, copy)
            reader = subprocess.Popen(copy.read, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert reader.stdout is not None
            try:
                added = repo.backup_stream(reader.stdout, _file(copy), tags, host)
            finally:
                reader.stdout.close()
                err = reader.stderr.read().decode(errors="replace") if reader.stderr else ""
                if reader.wait() != 0:
                    raise BackupError(f"copying {copy.name} failed: {err.strip()[-200:]}")
    finally:
        warn += [f"{copy.owner}: releasing {copy.name}: {line}" for line in failures]
    return added


def _hold(argv: list[str], copy: DataCopy) -> None:
    """Run one hold command (a pre hook, a pause), tried ``copy.attempts`` times."""
    for attempt in range(copy.attempts):
        if attempt:
            time.sleep(1)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return
    why = (done.stderr or done.stdout).strip().splitlines() or ["failed"]
    raise BackupError(
        f"tier {copy.owner}: its {copy.holding} failed ({why[-1]}); backup "
        "abandoned, the tier is left running"
    )


def _abandon(repo: Repository, backup_id: str) -> None:
    """Drop the snapshots a failed backup already made (best effort: retention would)."""
    try:
        ids = [s.id for s in repo.snapshots(TAG_ID + backup_id)]
        if ids:
            repo.run("forget", *ids)
    except BackupError:
        pass


def retain(repo: Repository, env: str, *, keep_last: int, keep_daily: int) -> list[str]:
    """Keep the newest ``keep_last`` backups and the newest of each of the last
    ``keep_daily`` days that have one; forget the rest and backups cut short, then prune.
    The ids of the backups removed."""
    done, partial = _sets(repo.snapshots(TAG_ENV + env))
    keep = {b.id for b in done[-keep_last:]} if keep_last else set()
    days: dict[str, Backup] = {}
    for b in done:
        days[b.time[:10]] = b  # newest of each day wins (oldest first)
    keep |= {b.id for b in list(days.values())[-keep_daily:]} if keep_daily else set()
    gone = [b for b in done if b.id not in keep]
    repo.forget([s.id for b in gone for s in b.snapshots] + [s.id for s in partial])
    return [b.id for b in gone]


def verify(repo: Repository, sample: str) -> list[str]:
    """Read back a sample of the repository's data; the damage found, one line each."""
    repo.run("unlock")
    return repo.check(sample)
