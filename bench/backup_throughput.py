"""Backup and restore throughput of a 1 GiB volume, against its peers, in one run.

One container environment with a stateful tier whose volume holds 1 GiB of random bytes
(incompressible, nothing to deduplicate). Timed on the same disk, in the same run:

- the limit: a plain copy of the volume's bytes (``tar`` of the volume to a file);
- the peer: plain restic, ``tar`` of the volume piped into ``restic backup --stdin`` of a
  fresh repository (what a user would script by hand), and ``restic dump`` piped back into
  an empty volume for the restore;
- ``virtstack backup`` and ``virtstack restore`` (whole runs: pause, declaration, state,
  manifest; the restore's integrity check of every byte, then its ``up``);
- an incremental backup after 1% of the bytes changed: its time and the size it added.

    .venv/bin/python -m bench.backup_throughput
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.engine.cli_support import cli, make_project, ok
from tests.engine.harness import PREFIX, remove_leftovers
from virtstack.stackfiles import stack_file

MIB = 1 << 20
SIZE_MIB = 1024
HELPER = "virtstack/base:bookworm-1"


def _config() -> dict[str, object]:
    db = {
        "name": "db",
        "image": "virtstack/demo:1",
        "replicas": 1,
        "stateful": True,
        "volume": {"name": "db-data", "path": "/data"},
        "health": {"path": "/healthz", "interval": 2, "timeout": 1, "retries": 2},
    }
    return {"virtstack:target": "container", "virtstack:tiers": [db]}


def _in_volume(volume: str, script: str, *, stdin: int | None = None, stdout: int | None = None
               ) -> None:  # fmt: skip
    argv = ["docker", "run", "--rm", "-i", "--network", "none", "--log-driver", "none",
            "-v", f"{volume}:/data", HELPER, "sh", "-c", script]  # fmt: skip
    subprocess.run(argv, stdin=stdin, stdout=stdout, check=True)


def _timed(step: Callable[[], object]) -> float:
    started = time.monotonic()
    step()
    return time.monotonic() - started


def _restic(repo: Path, password: Path, *args: str, **kw: object) -> None:
    env = {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD_FILE": str(password)}
    subprocess.run(["restic", "--quiet", *args], env=env, check=True, **kw)  # type: ignore[call-overload]


def _pipe(left: list[str], right: list[str], env: dict[str, str] | None = None) -> None:
    """``left | right``, both must succeed."""
    first = subprocess.Popen(left, stdout=subprocess.PIPE)
    assert first.stdout is not None
    second = subprocess.run(right, stdin=first.stdout, env=env, check=False)
    first.stdout.close()
    if first.wait() != 0 or second.returncode != 0:
        raise RuntimeError(f"{' '.join(left[:3])} | {' '.join(right[:3])} failed")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="virtstack-bench-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        project = make_project(work)
        env = f"{PREFIX}bkbench-{secrets.token_hex(2)}"
        volume = f"{env}_db-data_0"
        stack_file(project, env).write_text(yaml.safe_dump({"config": _config()}))
        try:
            ok(project, "up", env, "--yes")
            # Eight files of 128 MiB: a volume of files, as a database keeps them.
            fill = f"for i in 1 2 3 4 5 6 7 8; do head -c {SIZE_MIB // 8}M /dev/urandom " \
                   "> /data/blob$i; done; sync"  # fmt: skip
            _in_volume(volume, fill)
            figures = _measure(project, env, volume, work)
        finally:
            cli(project, "destroy", env, "--yes", "--delete-data")
            remove_leftovers(env)
    _report(figures)


def _measure(project: Path, env: str, volume: str, work: Path) -> dict[str, float]:
    copy_file = work / "plain.tar"
    read = ["docker", "run", "--rm", "--network", "none", "--log-driver", "none",
            "-v", f"{volume}:/data:ro", HELPER, "tar", "c", "-C", "/data", "."]  # fmt: skip
    figures: dict[str, float] = {}
    with copy_file.open("wb") as out:
        figures["plain copy"] = _timed(lambda: subprocess.run(read, stdout=out, check=True))
    copy_file.unlink()
    repo, password = work / "restic-peer", work / "peer.password"
    password.write_text(secrets.token_urlsafe(16))
    _restic(repo, password, "init")
    restic_env = {**os.environ, "RESTIC_REPOSITORY": str(repo),
                  "RESTIC_PASSWORD_FILE": str(password)}  # fmt: skip
    backup_stdin = ["restic", "--quiet", "backup", "--stdin", "--stdin-filename", "v.tar"]
    figures["restic backup"] = _timed(lambda: _pipe(read, backup_stdin, restic_env))
    figures["virtstack backup"] = _timed(lambda: ok(project, "backup", env))
    first = json.loads(ok(project, "backups", env, "--json").output)[-1]["added"]
    # 1%: 10 MiB rewritten in place in one of the files.
    change = "dd if=/dev/urandom of=/data/blob3 bs=1M count=10 seek=40 conv=notrunc 2>/dev/null"
    _in_volume(volume, change)
    figures["virtstack incremental backup"] = _timed(lambda: ok(project, "backup", env))
    second = json.loads(ok(project, "backups", env, "--json").output)[-1]["added"]
    figures["first backup added MiB"] = first / MIB
    figures["incremental backup added MiB"] = second / MIB
    # Restores: plain restic into an empty volume of its own; virtstack after a disaster.
    scratch = f"{env}_bench-restore"
    subprocess.run(["docker", "volume", "create", scratch], check=True, capture_output=True)
    try:
        dump = ["restic", "--quiet", "dump", "latest", "/v.tar"]
        write = ["docker", "run", "--rm", "-i", "--network", "none", "--log-driver", "none",
                 "-v", f"{scratch}:/data", HELPER, "tar", "x", "-C", "/data"]  # fmt: skip
        first_dump = subprocess.Popen(dump, env=restic_env, stdout=subprocess.PIPE)
        figures["restic restore"] = _timed(
            lambda: subprocess.run(write, stdin=first_dump.stdout, check=True)
        )
        assert first_dump.wait() == 0
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", scratch], capture_output=True)
    ok(project, "destroy", env, "--yes", "--delete-data")
    figures["virtstack restore (with up)"] = _timed(lambda: ok(project, "restore", env, "--yes"))
    return figures


def _report(f: dict[str, float]) -> None:
    timed = ("plain copy", "restic backup", "virtstack backup", "virtstack incremental backup",
             "restic restore", "virtstack restore (with up)")  # fmt: skip
    for name in timed:
        print(f"{name}: {f[name]:.1f} s ({SIZE_MIB / f[name]:.0f} MiB/s)")
    print(f"backup ratio virtstack / restic: {f['virtstack backup'] / f['restic backup']:.2f}")
    print(f"backup ratio virtstack / plain copy: {f['virtstack backup'] / f['plain copy']:.2f}")
    print(f"restore ratio virtstack (with up) / restic: "
          f"{f['virtstack restore (with up)'] / f['restic restore']:.2f}")  # fmt: skip
    print(f"incremental after a 1% change: {f['virtstack incremental backup']:.1f} s, "
          f"{f['incremental backup added MiB']:.1f} MiB added "
          f"({100 * f['incremental backup added MiB'] / f['first backup added MiB']:.1f}% "
          f"of the first backup's {f['first backup added MiB']:.0f} MiB)")  # fmt: skip


if __name__ == "__main__":
    main()
