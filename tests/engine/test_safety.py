"""Nothing lost, nothing leaked, nothing left: environments whose names overlap, interrupted
and concurrent runs, on this machine's Docker engine.

Small environments of the demo image without a registry keep each run short; every
promise is checked from outside (HTTP, the engine's own listings, the process table).
"""

from __future__ import annotations

import gzip
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from tenacity import retry, stop_after_delay, wait_fixed

from tests.engine.cli_support import cli, make_project, ok
from tests.engine.harness import PREFIX, PROJECT, remove_leftovers, run
from tests.support import free_port
from virtstack import locks
from virtstack.stackfiles import stack_file

pytestmark = pytest.mark.engine

VIRTSTACK = str(PROJECT / ".venv" / "bin" / "virtstack")


def single_tier(port: int, volume: str, tier: str = "db") -> dict[str, object]:
    """One published tier of the demo image keeping its data on a volume."""
    return {
        "virtstack:target": "container",
        "virtstack:tiers": [
            {
                "name": tier,
                "image": "virtstack/demo:1",
                "replicas": 1,
                "publish": port,
                "stateful": True,
                "volume": {"name": volume, "path": "/data"},
                "health": {"path": "/healthz", "interval": 2, "timeout": 1, "retries": 2},
            }
        ],
    }


def write_env(project: Path, name: str, config: dict[str, object]) -> None:
    stack_file(project, name).write_text(yaml.safe_dump({"config": config}, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = make_project(tmp_path_factory.mktemp("safety"))
    yield path
    # Whatever a test left behind (it should have destroyed its environments).
    for name in path.joinpath("stacks").glob("Pulumi.*.yaml"):
        env = name.name.removeprefix("Pulumi.").removesuffix(".yaml")
        cli(path, "destroy", env, "--yes", "--delete-data")
        assert remove_leftovers(env) == [], f"{env} left things behind"


@retry(stop=stop_after_delay(60), wait=wait_fixed(0.5), reraise=True)
def put(url: str, key: str, value: str) -> None:
    httpx.post(f"{url}cgi-bin/kv?{key}", content=value, timeout=5).raise_for_status()


def get(url: str, key: str) -> str:
    response = httpx.get(f"{url}cgi-bin/kv?{key}", timeout=5)
    response.raise_for_status()
    return response.text


def engine_objects(prefix: str) -> dict[str, list[str]]:
    """The engine's containers, volumes and networks whose names start with ``prefix``."""
    found = {}
    for kind, argv in {
        "containers": ["docker", "ps", "-a", "--format", "{{.Names}}"],
        "volumes": ["docker", "volume", "ls", "--format", "{{.Name}}"],
        "networks": ["docker", "network", "ls", "--format", "{{.Name}}"],
    }.items():
        found[kind] = sorted(n for n in run(*argv).stdout.split() if n.startswith(prefix))
    return found


def pulumi_processes(project: Path) -> list[str]:
    """Pulumi CLI, language host and plugin processes working on ``project``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if "pulumi" in cmdline and cwd.startswith(str(project)):
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def test_environments_whose_names_overlap_never_touch_each_others_data(project: Path) -> None:
    # 0.1 named both volumes <shop>-db-data-0: one volume shared, and deleting one
    # environment's data deleted the other's.
    shop = f"{PREFIX}{secrets.token_hex(3)}-shop"
    shop_db = f"{shop}-db"
    shop_port, shop_db_port = free_port(), free_port()
    write_env(project, shop, single_tier(shop_port, "db-data"))
    write_env(project, shop_db, single_tier(shop_db_port, "data"))
    ok(project, "up", shop, "--yes")
    ok(project, "up", shop_db, "--yes")
    shop_url, shop_db_url = f"http://127.0.0.1:{shop_port}/", f"http://127.0.0.1:{shop_db_port}/"
    put(shop_url, "owner", "shop")
    put(shop_db_url, "owner", "shop-db")
    assert get(shop_url, "owner") == "shop"
    assert get(shop_db_url, "owner") == "shop-db"
    volumes = engine_objects(shop)["volumes"]
    assert volumes == [f"{shop}-db_data_0", f"{shop}_db-data_0"]

    ok(project, "destroy", shop, "--yes", "--delete-data")
    assert engine_objects(shop)["volumes"] == [f"{shop}-db_data_0"]
    assert get(shop_db_url, "owner") == "shop-db"  # still served, every byte intact
    ok(project, "destroy", shop_db, "--yes", "--delete-data")
    assert engine_objects(shop) == {"containers": [], "volumes": [], "networks": []}


def test_ctrl_c_at_any_point_of_up_leaves_a_stack_the_next_up_converges(project: Path) -> None:
    env = f"{PREFIX}{secrets.token_hex(3)}-int"
    port = free_port()
    write_env(project, env, single_tier(port, "data", tier="web"))
    ok(project, "up", env, "--yes")
    expected = engine_objects(env)
    ok(project, "destroy", env, "--yes")
    codes = []
    for delay in (1.5, 4.0, 8.0):  # before Pulumi starts, while it creates, near the end
        process = subprocess.Popen(
            [VIRTSTACK, "--project", str(project), "up", env, "--yes"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=300)
        codes.append(process.returncode)
        assert process.returncode in (0, 130), output
        if process.returncode == 130:
            assert "interrupted" in output, output
        assert pulumi_processes(project) == [], f"left running after Ctrl-C at {delay}s"
        result = cli(project, "up", env, "--yes")
        assert result.exit_code == 0, f"up after Ctrl-C at {delay}s:\n{result.output}"
        assert engine_objects(env) == expected
        assert "ok" in httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text
        ok(project, "destroy", env, "--yes")
    assert 130 in codes, f"no run was interrupted: {codes}"
    ok(project, "destroy", env, "--yes", "--delete-data")


def test_a_second_up_of_the_same_environment_is_refused_naming_the_first(project: Path) -> None:
    env = f"{PREFIX}{secrets.token_hex(3)}-two"
    write_env(project, env, single_tier(free_port(), "data", tier="web"))
    first = subprocess.Popen(
        [VIRTSTACK, "--project", str(project), "up", env, "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lock = locks.lock_path(project, env)
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        second = cli(project, "up", env, "--yes")
        assert second.exit_code == 1
        assert f"error: {env}: busy: `virtstack up` (pid {first.pid}," in second.output
    finally:
        output, _ = first.communicate(timeout=300)
    assert first.returncode == 0, output
    ok(project, "destroy", env, "--yes", "--delete-data")


def scan(root: Path, needle: bytes) -> list[str]:
    """Files under ``root`` holding ``needle`` (gzipped state files read unpacked)."""
    found = []
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        if needle in data:
            found.append(str(path))
    return found


def test_secrets_stay_secret_everywhere_but_inside_the_replica(project: Path) -> None:
    env = f"{PREFIX}{secrets.token_hex(3)}-sec"
    secret = f"s3cr3t-{secrets.token_hex(8)} $HOME 'q'"
    port, registry_port = free_port(), free_port()
    config = single_tier(port, "data", tier="db")
    config["virtstack:registry"] = {"enabled": True, "port": registry_port}
    tier = config["virtstack:tiers"][0]  # type: ignore[index]
    tier["env"] = {"DB_PASSWORD": {"secret": "db-password"}, "PLAIN": "visible"}
    tier["command"] = ["httpd", "-f", "-p", "8080", "-h", "/srv/www"]
    write_env(project, env, config)
    said = [cli(project, "secret", "set", env, "db-password", input=secret).output]
    said.append(ok(project, "up", env, "--yes").output)
    markdown = project / f"{env}.md"
    said.append(ok(project, "preview", env, "--markdown", str(markdown)).output)
    said.append(markdown.read_text())
    said.append(ok(project, "status", env).output)
    replica = f"{env}-db-0"
    # Delivered: the replica's own process has it in its environment...
    environ = run("docker", "exec", replica, "cat", "/proc/1/environ").stdout
    assert f"DB_PASSWORD={secret}" in environ.split("\0")
    # ...and nowhere else: not in output, the stack file, the state, or docker inspect.
    needle = secret.encode()
    assert all(secret not in text for text in said)
    assert scan(project / "stacks", needle) == []
    assert scan(project / ".virtstack" / "state", needle) == []
    assert secret not in run("docker", "inspect", replica).stdout
    assert "visible" in run("docker", "inspect", replica).stdout  # plain values stay plain
    password_file = stack_file(project, env).read_text()
    assert "secure: v1:" in password_file
    ok(project, "destroy", env, "--yes", "--delete-data")
