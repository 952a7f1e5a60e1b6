"""doctor's checks that need no engine: toolchain and plugins, locks, passphrase, the CLI."""

from __future__ import annotations

import importlib.metadata
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.fixtures.cli_support import invoke, make_services
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack import doctor
from virtstack.doctor import Check, Level, Machine


def _toolchain(project: Path, *, plugins: tuple[str, ...]) -> None:
    tools = project / ".virtstack" / "toolchain"
    (tools / "bin").mkdir(parents=True)
    cli = tools / "bin" / "pulumi"
    cli.write_text("#!/bin/sh\necho v3.274.1\n")
    cli.chmod(0o755)
    for plugin in plugins:
        version = importlib.metadata.version(doctor.PLUGINS[plugin])
        (tools / "home" / "plugins" / f"resource-{plugin}-v{version}").mkdir(parents=True)


def test_a_missing_plugin_fails_with_its_name_and_the_fix(tmp_path: Path) -> None:
    _toolchain(tmp_path, plugins=("docker",))
    found = {c.name: c for c in doctor.plugins(Machine(project=tmp_path))}
    assert found["plugin docker"].level is Level.OK
    libvirt = found["plugin libvirt"]
    assert libvirt.failed
    want = importlib.metadata.version("pulumi-libvirt")
    assert libvirt.detail.startswith(f"resource-libvirt-v{want} missing in ")
    assert libvirt.fix == f"run tools/toolchain.sh in {tmp_path}"
    assert doctor.pulumi_cli(Machine(project=tmp_path)).level is Level.OK


def test_no_toolchain(tmp_path: Path) -> None:
    check = doctor.pulumi_cli(Machine(project=tmp_path))
    assert check.failed
    assert check.detail.startswith("not built: no ")


def test_a_lock_of_a_dead_run_is_stale(tmp_path: Path) -> None:
    locks = tmp_path / ".virtstack" / "state" / ".pulumi" / "locks" / "organization" / "p"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    (locks / "dev").mkdir(parents=True)
    (locks / "dev" / "a.json").write_text(json.dumps({"pid": gone.pid, "hostname": host}))
    (locks / "lab").mkdir(parents=True)
    (locks / "lab" / "b.json").write_text(json.dumps({"pid": os.getpid(), "hostname": host}))
    check = doctor.stale_locks(Machine(project=tmp_path))
    assert check.failed
    assert check.detail == "stale lock(s) of dev (their runs are gone)"
    assert check.fix == "virtstack unlock dev"
    (locks / "dev" / "a.json").unlink()
    assert doctor.stale_locks(Machine(project=tmp_path)).level is Level.OK


def test_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    assert doctor.passphrase(Machine(project=tmp_path)).level is Level.OK  # made on first use
    own = tmp_path / ".virtstack" / "passphrase"
    own.parent.mkdir()
    own.write_text("virtstack-dev\n")
    own.chmod(0o600)
    assert doctor.passphrase(Machine(project=tmp_path)).level is Level.WARN
    own.chmod(0o644)
    assert doctor.passphrase(Machine(project=tmp_path)).failed
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", str(tmp_path / "nope"))
    assert doctor.passphrase(Machine(project=tmp_path)).failed
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "x")
    assert doctor.passphrase(Machine(project=tmp_path)).level is Level.OK


def test_cli_prints_a_line_each_and_fails_on_a_failure(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fine(m: Machine) -> Check:
        return Check("fine", Level.OK, "all good")

    def broken(m: Machine) -> Check:
        return Check("broken thing", Level.FAIL, "it is down", "start it")

    monkeypatch.setattr(doctor, "CHECKS", [fine, fine])
    result = invoke(project, make_services(), "doctor")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["ok   fine  all good"] * 2 + ["all checks passed"]
    monkeypatch.setattr(doctor, "CHECKS", [fine, broken])
    result = invoke(project, make_services(), "doctor")
    assert result.exit_code == 1
    assert result.output.splitlines()[1:] == [
        "FAIL broken thing  it is down",
        "     fix: start it",
        "1 check(s) failed",
    ]
