"""The environment the Pulumi CLI runs with: local state, private, under a real passphrase."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtstack import toolchain


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tools = tmp_path / ".virtstack" / "toolchain"
    (tools / "bin").mkdir(parents=True)
    (tools / "bin" / "pulumi").write_text("")
    (tools / "home" / "plugins").mkdir(parents=True)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    return tmp_path


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_first_use_makes_a_random_private_passphrase_and_private_state(project: Path) -> None:
    env = toolchain.pulumi_environment(project)
    path = Path(env["PULUMI_CONFIG_PASSPHRASE_FILE"])
    assert path == project / ".virtstack" / "passphrase"
    assert "PULUMI_CONFIG_PASSPHRASE" not in env
    assert mode(path) == 0o600
    value = path.read_text().strip()
    assert len(value) >= 32
    assert value != toolchain.LEGACY_PASSPHRASE
    assert mode(project / ".virtstack" / "state") == 0o700
    assert mode(project / ".virtstack") == 0o700
    # Made once: the next run reads the same passphrase.
    toolchain.pulumi_environment(project)
    assert path.read_text().strip() == value


def test_state_encrypted_by_version_0_1_keeps_its_passphrase(project: Path) -> None:
    stacks = project / ".virtstack" / "state" / ".pulumi" / "stacks" / "virtstack"
    stacks.mkdir(parents=True)
    (stacks / "dev.json").write_text("{}")
    env = toolchain.pulumi_environment(project)
    assert Path(env["PULUMI_CONFIG_PASSPHRASE_FILE"]).read_text().strip() == "virtstack-dev"


@pytest.mark.parametrize("variable", ["PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"])
def test_the_users_own_passphrase_wins(
    project: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "users-own")
    env = toolchain.pulumi_environment(project)
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in env
    assert not (project / ".virtstack" / "passphrase").exists()


def test_pulumi_runs_trust_their_environments_ca_alone(project: Path) -> None:
    from virtstack import tlsfiles
    from virtstack.environment import StackRef
    from virtstack.runner import stack_environment

    shop = stack_environment(StackRef(project=project, env="shop"))
    other = stack_environment(StackRef(project=project, env="shop-db"))
    assert shop["SSL_CERT_FILE"] == str(tlsfiles.ca_file(project, "shop"))
    assert other["SSL_CERT_FILE"] == str(tlsfiles.ca_file(project, "shop-db"))
    assert shop["SSL_CERT_FILE"] != other["SSL_CERT_FILE"]
