"""doctor on this machine, against a dockerd of the test's own that it then stops, and with
a provider plugin missing from the toolchain."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.harness import run
from tests.support import require_tool
from tests.unit.fixtures.cli_support import copy_project
from virtstack import doctor, toolchain

PROJECT = Path(__file__).resolve().parents[2]
VIRTSTACK = PROJECT / ".venv" / "bin" / "virtstack"


def _doctor(*args: str, project: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VIRTSTACK), "-C", str(project), "doctor", *args],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def _lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [" ".join(line.split()) for line in done.stdout.splitlines()]


@pytest.fixture
def own_dockerd() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A dockerd on its own socket, data, exec root, pidfile, containerd namespace and
    bridge, without iptables: it touches nothing of the machine's engine.

    Not ``--bridge none``: a dockerd started so deletes the host's docker0 link, which the
    machine's engine needs for every container on its default network.
    """
    dockerd = require_tool("dockerd", "Debian's docker.io")
    # Short: the exec root holds unix sockets (a path may have ~100 characters).
    root = Path(tempfile.mkdtemp(prefix="vs-doc-"))
    bridge = f"vsdoc{root.name[-6:]}".replace("_", "x")  # <= 15 characters
    run("ip", "link", "add", bridge, "type", "bridge")
    # A documentation address (TEST-NET-2) no engine network uses.
    run("ip", "addr", "add", "198.51.100.1/24", "dev", bridge)
    (root / "daemon.json").write_text("{}")
    uri = f"unix://{root}/docker.sock"
    process = subprocess.Popen(
        [dockerd, "--host", uri, "--data-root", str(root / "data"),
         "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"),
         "--config-file", str(root / "daemon.json"), "--bridge", bridge,
         "--iptables=false", "--ip-masq=false", "--ip6tables=false",
         "--containerd-namespace", f"vs-doc-{root.name}",
         "--containerd-plugins-namespace", f"vs-doc-plugins-{root.name}"],
        stdout=(root / "dockerd.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(60):
            if (
                doctor.docker_engine(doctor.Machine(project=PROJECT, docker_uri=uri)).level.value
                == "ok"
            ):
                break
            if process.poll() is not None:
                pytest.fail(f"dockerd exited: {(root / 'dockerd.log').read_text()[-2000:]}")
            subprocess.run(["sleep", "1"], check=True)
        yield uri, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        run("ip", "link", "del", bridge, check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_doctor_passes_on_this_machine() -> None:
    done = _doctor()
    assert done.returncode == 0, done.stdout + done.stderr
    assert _lines(done)[-1] == "all checks passed"
    assert not [ln for ln in _lines(done) if ln.startswith("FAIL")]


def test_doctor_names_a_stopped_dockerd(own_dockerd: tuple[str, subprocess.Popen[bytes]]) -> None:
    uri, process = own_dockerd
    # Running: the engine line is ok (its images are another engine's: not asked here).
    running = doctor.docker_engine(doctor.Machine(project=PROJECT, docker_uri=uri))
    assert running.level.value == "ok", running.detail
    assert running.detail.startswith(f"{uri}: Docker ")
    process.send_signal(signal.SIGTERM)  # by its PID: the test's own daemon only
    process.wait(timeout=60)
    # The machine's engine keeps its bridge (a --bridge none dockerd would delete it).
    assert run("ip", "link", "show", "docker0", check=False).returncode == 0
    done = _doctor("--docker-uri", uri)
    assert done.returncode == 1
    lines = _lines(done)
    engine = next(ln for ln in lines if "docker engine" in ln)
    assert engine.startswith(f"FAIL docker engine {uri}: ")
    fix = lines[lines.index(engine) + 1]
    assert fix.startswith("fix: start dockerd")
    assert "not checked: the Docker engine is down" in done.stdout
    assert lines[-1] == "1 check(s) failed"


def test_doctor_names_a_missing_plugin(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    real = toolchain.toolchain_dir(PROJECT).resolve()
    fake = toolchain.toolchain_dir(project)
    (fake / "home" / "plugins").mkdir(parents=True)
    (fake / "bin").symlink_to(real / "bin")
    for plugin in (real / "home" / "plugins").glob("resource-docker-v*"):
        (fake / "home" / "plugins" / plugin.name).symlink_to(plugin)
    done = _doctor(project=project)
    assert done.returncode == 1
    failed = [ln for ln in _lines(done) if ln.startswith("FAIL")]
    assert len(failed) == 1, done.stdout
    assert failed[0].startswith("FAIL plugin libvirt resource-libvirt-v0.5.4 missing in ")
    assert f"fix: run tools/toolchain.sh in {project}" in _lines(done)
