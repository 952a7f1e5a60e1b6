"""`virtstack destroy`: confirmation, and the data it keeps or deletes."""

from __future__ import annotations

from pathlib import Path

from tests.unit.fixtures.cli_support import (
    FakeAdapter,
    FakeRunner,
    events,
    invoke,
    make_services,
    set_key,
)
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack import pki, tlsfiles
from virtstack.cli import EXIT_BAD_INPUT, EXIT_FAILED


def test_destroy_without_yes_and_no_terminal_is_refused(project: Path) -> None:
    runner = FakeRunner()
    result = invoke(project, make_services(runner), "destroy", "dev", input="y\n")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "pass --yes to confirm (no terminal to ask on)" in result.stderr
    assert runner.calls == []


def test_destroy_asks_on_a_terminal_and_no_means_no(project: Path) -> None:
    runner = FakeRunner()
    result = invoke(project, make_services(runner, interactive=True), "destroy", "dev", input="n\n")
    assert result.exit_code == EXIT_FAILED
    assert "Destroy dev on unix:///var/run/docker.sock (its data is kept)?" in result.stdout
    assert runner.calls == []


def test_destroy_keeps_data_and_says_so(project: Path) -> None:
    runner = FakeRunner(run_events=events("recorded-destroy.json"))
    adapter = FakeAdapter(data=["dev-db-data-0", "dev-registry-data"])
    services = make_services(runner, adapter=adapter, interactive=True)
    result = invoke(project, services, "destroy", "dev", input="y\n")
    assert result.exit_code == 0, result.output
    assert runner.ops() == ["destroy"]
    assert "dev: 3 deleted" in result.stdout
    assert "kept data: dev-db-data-0, dev-registry-data (destroy dev --delete-data" in result.stdout
    # The engine is readied for the destroy (a Swarm stops its tasks first).
    assert adapter.names() == ["probe", "before_destroy", "find_data"]


def test_destroy_delete_data_removes_the_spec_volumes(project: Path) -> None:
    runner = FakeRunner()
    adapter = FakeAdapter(data=["dev-db-data-0", "dev-registry-data"])
    services = make_services(runner, adapter=adapter)
    result = invoke(project, services, "destroy", "dev", "--yes", "--delete-data")
    assert result.exit_code == 0, result.output
    [(_, spec, env, uri)] = [c for c in adapter.calls if c[0] == "delete_data"]
    assert (env, uri) == ("dev", "unix:///var/run/docker.sock")
    assert spec.tiers[2].volume.name == "db-data"
    assert "deleted data: dev-db-data-0, dev-registry-data" in result.stdout


def test_destroy_on_an_unreachable_engine(project: Path) -> None:
    set_key(project, "dev", "engine.uri", "tcp://127.0.0.1:1")
    set_key(project, "dev", "engine.insecure", True)
    runner = FakeRunner()
    result = invoke(
        project,
        make_services(runner, adapter=FakeAdapter(reachable=False)),
        "destroy",
        "dev",
        "--yes",
    )
    assert result.exit_code == EXIT_BAD_INPUT
    assert "tcp://127.0.0.1:1: docker engine not reachable" in result.stderr
    assert runner.calls == []


def test_destroy_removes_the_ca_copy_up_installed_for_the_engine(
    project: Path, tls_home: Path
) -> None:
    made = pki.registry_cert(project, "dev", ["10.9.0.1"])
    copy = tls_home / "certs.d" / "10.9.0.1:5443" / "ca.crt"
    tlsfiles.install(made.ca_file, copy)
    result = invoke(project, make_services(FakeRunner()), "destroy", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert not copy.parent.exists()
