"""Backup and restore throughput of a 1 GiB volume and a 1 GiB VM data disk, against
their peers, in one run.

Case ``container``: one container environment with a stateful tier whose volume holds 1 GiB
of random bytes (incompressible, nothing to deduplicate). Timed on the same disk, in the
same run:

- the limit: a plain copy of the volume's bytes (``tar`` of the volume to a file);
- the peer: plain restic, ``tar`` of the volume piped into ``restic backup --stdin`` of a
  fresh repository (what a user would script by hand), and ``restic dump`` piped back into
  an empty volume for the restore;
- ``virtstack backup`` and ``virtstack restore`` (whole runs: pause, declaration, state,
  manifest; the restore's integrity check of every byte, then its ``up``);
- an incremental backup after 1% of the bytes changed: its time and the size it added.

Case ``vm``: one hostos environment whose db VM writes 1 GiB of random bytes on its data
disk; the limit is a plain copy of the disk's image file on the host, the peer plain restic
of that file (``backup --stdin``, ``dump`` back into a file); ``virtstack backup`` is the
live one (guest frozen, libvirt's backup job, restic) while the VM runs.

    .venv/bin/python -m bench.backup_throughput [container|vm]   (both without an argument)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.engine.cli_support import cli, make_project, ok
from tests.engine.guest import run_in
from tests.engine.harness import PREFIX, remove_leftovers, virsh
from tests.engine.test_vm_backups import vm_config
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
    cases = sys.argv[1:] or list(CASES)
    for case in cases:
        with tempfile.TemporaryDirectory(prefix="virtstack-bench-", dir="/var/tmp") as tmp:
            work = Path(tmp)
            project = make_project(work)
            env = f"{PREFIX}bkbench-{secrets.token_hex(2)}"
            config, fill, measure = CASES[case]
            stack_file(project, env).write_text(yaml.safe_dump({"config": config()}))
            try:
                ok(project, "up", env, "--yes")
                fill(env)
                figures = measure(project, env, work)
            finally:
                cli(project, "destroy", env, "--yes", "--delete-data")
                remove_leftovers(env)
        print(f"== {case}: 1 GiB, load average {os.getloadavg()[0]:.1f} at the end")
        _report(figures)


# Eight files of 128 MiB: a disk of files, as a database keeps them.
FILL = f"for i in 1 2 3 4 5 6 7 8; do head -c {SIZE_MIB // 8}M /dev/urandom > /data/blob$i; done"
CHANGE = "dd if=/dev/urandom of=/data/blob3 bs=1M count=10 seek=40 conv=notrunc 2>/dev/null"
"""1%: 10 MiB rewritten in place in one of the files."""


def _fill_volume(env: str) -> None:
    _in_volume(f"{env}_db-data_0", f"{FILL}; sync")


def _in_vm(env: str, script: str) -> None:
    done = run_in(f"{env}-db-0", script)
    if done.exitcode != 0:
        raise RuntimeError(f"{script}: {done.stderr}")


def _fill_vm(env: str) -> None:
    # One guest command a file: each must end within the guest agent client's wait.
    for i in range(1, 9):
        _in_vm(env, f"head -c {SIZE_MIB // 8}M /dev/urandom > /data/blob{i}")
    _in_vm(env, "sync")


def _measure_vm(project: Path, env: str, work: Path) -> dict[str, float]:
    disk = virsh("vol-path", "--pool", f"{env}-data", f"{env}_db-data_0.qcow2").stdout.strip()
    figures = {"plain copy": _timed(lambda: shutil.copyfile(disk, work / "plain.qcow2"))}
    (work / "plain.qcow2").unlink()
    repo, password = work / "restic-peer", work / "peer.password"
    password.write_text(secrets.token_urlsafe(16))
    _restic(repo, password, "init")
    with open(disk, "rb") as source:
        figures["restic backup"] = _timed(
            lambda: _restic(
                repo, password, "backup", "--stdin", "--stdin-filename", "d.qcow2", stdin=source
            )
        )
    _backups(project, env, figures, lambda: _in_vm(env, f"{CHANGE}; sync"))
    with (work / "restored.qcow2").open("wb") as out:
        figures["restic restore"] = _timed(
            lambda: _restic(repo, password, "dump", "latest", "/d.qcow2", stdout=out)
        )
    ok(project, "destroy", env, "--yes", "--delete-data")
    figures["virtstack restore (with up)"] = _timed(lambda: ok(project, "restore", env, "--yes"))
    return figures


def _backups(
    project: Path, env: str, figures: dict[str, float], change: Callable[[], None]
) -> None:
    """virtstack's first backup, then its incremental one after ``change``."""
    figures["virtstack backup"] = _timed(lambda: ok(project, "backup", env))
    first = json.loads(ok(project, "backups", env, "--json").output)[-1]["added"]
    change()
    figures["virtstack incremental backup"] = _timed(lambda: ok(project, "backup", env))
    second = json.loads(ok(project, "backups", env, "--json").output)[-1]["added"]
    figures["first backup added MiB"] = first / MIB
    figures["incremental backup added MiB"] = second / MIB


def _measure_volume(project: Path, env: str, work: Path) -> dict[str, float]:
    volume = f"{env}_db-data_0"
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
    _backups(project, env, figures, lambda: _in_volume(volume, CHANGE))
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


Case = tuple[
    Callable[[], dict[str, object]],
    Callable[[str], None],
    Callable[[Path, str, Path], dict[str, float]],
]
CASES: dict[str, Case] = {
    "container": (_config, _fill_volume, _measure_volume),
    "vm": (lambda: vm_config(size_gib=2), _fill_vm, _measure_vm),
}


if __name__ == "__main__":
    main()
