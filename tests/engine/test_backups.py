"""Backups of a container environment for real: restic, Docker volumes, the CLI.

One dev-shaped environment (registry, web -> app -> db) is deployed once for the module;
the tests run in order, each on what the previous left: the disaster drill (destroy with
its data, restore, every key back), an incremental backup, a backup killed half-way, a
clone beside the original, and last a damaged repository. Passwords are watched for in
files, command lines and output throughout.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from tenacity import retry, stop_after_delay, wait_fixed

from tests.engine.cli_support import Deployed, cli, make_project
from tests.engine.harness import PREFIX, PROJECT, docker_inspect, remove_leftovers, run
from tests.support import free_port
from virtstack.environment import StackRef
from virtstack.runner import PulumiRunner
from virtstack.stackfiles import environments, read_config, stack_file

pytestmark = pytest.mark.engine

KEYS = 1000
HELPER = "virtstack/base:bookworm-1"
BLOB_MIB = 128


@dataclass
class Env(Deployed):
    url: str

    @property
    def db_volume(self) -> str:
        return f"{self.name}_db-data_0"

    @property
    def registry_volume(self) -> str:
        return f"{self.name}_registry-data"

    def backups(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = json.loads(self.run("backups", self.name, "--json"))
        return rows


def config(web_port: int, registry_port: int) -> dict[str, object]:
    found = read_config(PROJECT, "dev")
    found.pop("virtstack:registry_password", None)
    found["virtstack:registry"]["port"] = registry_port
    found["virtstack:tiers"][0]["publish"] = web_port
    return found


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    project = make_project(tmp_path_factory.mktemp("backups"))
    name = f"{PREFIX}bk-{secrets.token_hex(3)}"
    web = free_port()
    stack_file(project, name).write_text(
        yaml.safe_dump({"config": config(web, free_port())}, sort_keys=False)
    )
    found = Env(project=project, name=name, url=f"http://127.0.0.1:{web}/")
    try:
        found.run("up", name, "--yes")
        yield found
    finally:
        for made in environments(project):  # the clone's too
            cli(project, "destroy", made, "--yes", "--delete-data")
        leftovers = remove_leftovers(name)
        assert leftovers == [], f"destroy left {leftovers}"


def kv(url: str, key: str) -> str:
    return f"{url}cgi-bin/kv?{key}"


@retry(stop=stop_after_delay(20), wait=wait_fixed(0.5), reraise=True)
def put(url: str, key: str, value: str) -> None:
    response = httpx.post(kv(url, key), content=value, timeout=10)
    assert response.status_code == 200, response.text
    assert "stored" in response.text


@retry(stop=stop_after_delay(20), wait=wait_fixed(0.5), reraise=True)
def get(url: str, key: str) -> str:
    response = httpx.get(kv(url, key), timeout=10)
    response.raise_for_status()
    return response.text.strip()


def checksum(volume: str) -> str:
    """One digest of every file's path and content in a volume."""
    script = "cd /data && find . -type f | LC_ALL=C sort | xargs -r md5sum | md5sum"
    done = run("docker", "run", "--rm", "--network", "none", "-v", f"{volume}:/data:ro",
               HELPER, "sh", "-c", script)  # fmt: skip
    return done.stdout.split()[0]


def in_db(env: Env, script: str) -> None:
    run("docker", "exec", f"{env.name}-db-0", "sh", "-c", script, timeout=300)


@contextlib.contextmanager
def watching_command_lines(seen: set[str]) -> Iterator[None]:
    """Every process's command line while the block runs, collected into ``seen``."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                with contextlib.suppress(OSError):
                    seen.add(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            time.sleep(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


COMMAND_LINES: set[str] = set()


def test_disaster_drill_brings_back_every_key_and_the_same_files(env: Env) -> None:
    keys = [f"k{i:04d}" for i in range(KEYS)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: put(env.url, k, f"value of {k}"), keys))
    before = {v: checksum(v) for v in (env.db_volume, env.registry_volume)}
    with watching_command_lines(COMMAND_LINES):
        env.run("backup", env.name, "--tag", "first")
    [first] = env.backups()
    assert first["tag"] == "first"
    assert f"{env.db_volume}.tar" in first["files"]
    assert "declaration.yaml" in first["files"]
    env.run("destroy", env.name, "--yes", "--delete-data")
    assert docker_inspect(env.db_volume) is None
    with watching_command_lines(COMMAND_LINES):
        env.run("restore", env.name, "--yes")
    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(lambda k: get(env.url, k), keys))
    assert values == [f"value of {k}" for k in keys]
    assert {v: checksum(v) for v in before} == before


def test_a_backup_after_a_one_percent_change_adds_little(env: Env) -> None:
    in_db(env, f"dd if=/dev/urandom of=/data/blob bs=1M count={BLOB_MIB} 2>/dev/null")
    env.run("backup", env.name)
    first = env.backups()[-1]
    in_db(env, f"dd if=/dev/urandom of=/data/blob bs=1K count={BLOB_MIB * 1024 // 100} "
               f"seek={BLOB_MIB * 1024 // 2} conv=notrunc 2>/dev/null")  # fmt: skip
    env.run("backup", env.name)
    second = env.backups()[-1]
    assert int(first["added"]) > BLOB_MIB * 2**20 * 0.9
    assert int(second["added"]) < 0.1 * int(first["added"]), (first, second)


def paused(container: str) -> bool:
    info = docker_inspect(container)
    state = info.get("State") if info else None
    return isinstance(state, dict) and state.get("Paused") is True


def test_a_killed_backup_leaves_nothing_paused_and_the_next_one_succeeds(env: Env) -> None:
    count = len(env.backups())
    db = f"{env.name}-db-0"
    program = PROJECT / ".venv" / "bin" / "virtstack"
    proc = subprocess.Popen(
        [str(program), "--project", str(env.project), "backup", env.name],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not paused(db):
            assert proc.poll() is None, "the backup ended before it paused the db replica"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 15
    while paused(db):
        assert time.monotonic() < deadline, "the db replica is still paused"
        time.sleep(0.2)
    assert get(env.url, "k0001") == "value of k0001"
    assert len(env.backups()) == count  # the cut-short backup is not listed
    env.run("backup", env.name, "--keep-last", "3")
    assert len(env.backups()) == 3
    env.run("backup", env.name, "--verify", "--sample", "100%")


def test_a_clone_serves_beside_the_original_and_keeps_its_writes(env: Env) -> None:
    clone = f"{env.name}c"
    web = free_port()
    env.run("restore", env.name, "--into", clone, "--publish", f"web={web}",
           "--publish", f"registry={free_port()}", "--yes")  # fmt: skip
    clone_url = f"http://127.0.0.1:{web}/"
    try:
        assert get(clone_url, "k0500") == get(env.url, "k0500") == "value of k0500"
        put(clone_url, "cloned", "only here")
        assert get(clone_url, "cloned") == "only here"
        original = httpx.get(kv(env.url, "cloned"), timeout=10)
        assert original.status_code != 200  # the tiers in front turn the db's 404 into 502
        assert "only here" not in original.text
    finally:
        env.run("destroy", clone, "--yes", "--delete-data")
        stack_file(env.project, clone).unlink()


def test_a_damaged_repository_is_refused_before_anything_is_touched(env: Env) -> None:
    latest = env.backups()[-1]
    packs = sorted(
        (env.project / ".virtstack" / "backups" / env.name / "data").rglob("*"),
        key=lambda p: p.stat().st_size if p.is_file() else 0,
    )
    pack = packs[-1]
    pack.chmod(0o600)
    data = bytearray(pack.read_bytes())
    for offset in range(len(data) // 2, len(data) // 2 + 64):
        data[offset] ^= 0xFF
    pack.write_bytes(bytes(data))
    started = docker_inspect(f"{env.name}-db-0")["State"]["StartedAt"]  # type: ignore[index]
    before = checksum(env.db_volume)
    failed = env.cli("restore", env.name, "--force", "--yes")
    assert failed.exit_code != 0
    errors = [line for line in failed.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert str(latest["id"]) in errors[0]
    assert "damaged" in errors[0]
    assert checksum(env.db_volume) == before
    assert docker_inspect(f"{env.name}-db-0")["State"]["StartedAt"] == started  # type: ignore[index]
    failed = env.cli("backup", env.name, "--verify", "--sample", "100%")
    assert failed.exit_code != 0
    assert "damaged" in failed.output


def test_no_password_is_ever_in_files_command_lines_or_output(env: Env) -> None:
    outputs = PulumiRunner().outputs(StackRef(project=env.project, env=env.name))
    registry = str(outputs["registry_password"].value)
    repository = (env.project / ".virtstack" / "backups" / f"{env.name}.password").read_text()
    assert (
        oct((env.project / ".virtstack" / "backups" / f"{env.name}.password").stat().st_mode)[-3:]
        == "600"
    )
    state = env.project / ".virtstack" / "state"
    files = [p for p in state.rglob("*") if p.is_file()] + [stack_file(env.project, env.name)]
    assert COMMAND_LINES
    for secret in (registry, repository.strip()):
        for path in files:
            assert secret not in path.read_text(errors="replace"), path
        for line in COMMAND_LINES:
            assert secret not in line
        for output in env.outputs:
            assert secret not in output
