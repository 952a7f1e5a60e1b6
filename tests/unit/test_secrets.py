"""Secret env values: set from stdin, stored encrypted, delivered out of configs and argv."""

from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path
from typing import Any

import pulumi
import pytest
from virtstack_components.docker.placement import DockerPlacement
from virtstack_components.docker.tier import ContainerTier, ContainerTierArgs
from virtstack_components.tier import SECRETS_FILE, TierArgs

from tests.unit.fixtures.cli_support import (
    FakeRunner,
    config_of,
    errors,
    invoke,
    make_services,
    outputs,
    set_key,
)
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack.cli import EXIT_BAD_INPUT
from virtstack.secrets import PASSWORD_CONFIG_KEY, registry_password_settled

SECRET = "s3cr3t 'quoted' $HOME"


def test_secret_set_reads_stdin_and_stores_it_encrypted(project: Path) -> None:
    runner = FakeRunner()
    result = invoke(
        project, make_services(runner), "secret", "set", "dev", "db-password", input=SECRET
    )
    assert result.exit_code == 0, result.output
    assert runner.secrets == {"virtstack:secrets.db-password": SECRET}
    assert config_of(project, "dev")["virtstack:secrets"] == {
        "db-password": {"secure": "v1:fake-ciphertext"}
    }
    assert SECRET not in result.output
    listed = invoke(project, make_services(runner), "secret", "list", "dev")
    assert listed.stdout == "db-password: used by nothing\n"


def use_secret(project: Path) -> None:
    set_key(project, "dev", "tiers[2].env.DB_PASSWORD", {"secret": "db-password"})
    set_key(project, "dev", "tiers[2].command", ["httpd", "-f", "-p", "8080", "-h", "/srv/www"])


def test_an_env_value_naming_a_missing_secret_is_refused(project: Path) -> None:
    use_secret(project)
    runner = FakeRunner()
    result = invoke(project, make_services(runner), "up", "dev", "--yes")
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: virtstack:tiers[2].env.DB_PASSWORD: no secret named 'db-password' "
        "(virtstack secret set ENV db-password)"
    ]
    assert runner.ops() == []


def test_a_named_secret_in_plaintext_is_refused(project: Path) -> None:
    use_secret(project)
    set_key(project, "dev", "virtstack:secrets", {"db-password": "hunter2"})
    runner = FakeRunner(stacks={"dev"})
    result = invoke(project, make_services(runner), "up", "dev", "--yes")
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: virtstack:secrets.db-password: must be a Pulumi secret, not plaintext "
        "(virtstack secret set ENV db-password)"
    ]
    assert "hunter2" not in result.output
    assert runner.ops() == []  # Pulumi records a run's config: not even started


@pytest.mark.parametrize(
    ("config", "settled"),
    [
        ({}, True),
        ({"virtstack:registry": {"port": 5001}}, True),
        ({"virtstack:registry": {"enabled": False}}, True),
        ({"virtstack:registry": {"enabled": True}, PASSWORD_CONFIG_KEY: {"secure": "v1:x"}}, True),
        ({"virtstack:registry": {"enabled": True}}, False),
        ({"registry": {"enabled": True}}, False),  # a bare key is virtstack's too
        ({"virtstack:registry": {"enabled": "yes"}}, False),  # the check decides what it means
        ({"virtstack:registry": "on"}, False),
    ],
)
def test_a_registry_password_is_settled_only_when_surely_not_missing(
    config: dict[str, Any], settled: bool
) -> None:
    assert registry_password_settled(config) is settled


def test_with_the_secret_set_up_runs_and_list_names_its_user(project: Path) -> None:
    use_secret(project)
    runner = FakeRunner(stack_outputs=outputs())
    invoke(project, make_services(runner), "secret", "set", "dev", "db-password", input=SECRET)
    result = invoke(project, make_services(runner), "up", "dev", "--yes")
    assert result.exit_code == 0, result.output
    listed = invoke(project, make_services(runner), "secret", "list", "dev")
    assert listed.stdout == "db-password: used by virtstack:tiers[2].env.DB_PASSWORD\n"


def test_a_container_tier_with_secrets_needs_its_command(project: Path) -> None:
    set_key(project, "dev", "tiers[2].env.DB_PASSWORD", {"secret": "db-password"})
    result = invoke(project, make_services(FakeRunner()), "up", "dev", "--yes")
    assert result.exit_code == EXIT_BAD_INPUT
    assert any(
        line.startswith("error: virtstack:tiers[2].command: required for secret env values")
        for line in errors(result)
    )


WRAPPED = ["/bin/sh", "-c", f'. {SECRETS_FILE} && exec "$@"', "virtstack", "httpd", "-f"]
"""The tier's command, run by a shell that first sources the secrets file."""


def secret_tier() -> TierArgs:
    """A tier with a plain and a secret env value (built inside a program: an Output)."""
    return TierArgs(
        image="img",
        command=["httpd", "-f"],
        env={"PLAIN": "x"},
        secret_env={"DB_PASSWORD": pulumi.Output.secret(SECRET)},
    )


def with_secrets(run: Any, component: Any, args: Any, placement: object, name: str) -> Any:
    """Deploy one tier ``component`` (with its ``args`` class) with :func:`secret_tier`."""
    tier = lambda: args(placement=placement, tier=secret_tier(), network=f"{name}-net")  # noqa: E731
    return run(lambda: component(name, tier()))


def test_container_secrets_travel_in_a_secret_file_not_in_env_or_argv(run) -> None:
    placement = DockerPlacement(namespace="dev", lb_image="lb")
    d = with_secrets(run, ContainerTier, ContainerTierArgs, placement, "dev-db")
    replica = d.named("dev-db-replica-0")
    assert replica.inputs["command"] == WRAPPED
    assert all(SECRET not in e for e in replica.inputs["envs"])
    [upload] = replica.inputs["uploads"]
    assert upload["file"] == SECRETS_FILE
    # Read back as the replica's shell reads it.
    assert shlex.split(upload["content"]) == ["export", f"DB_PASSWORD={SECRET}"]
    assert "uploads" in replica.secrets


def test_swarm_secrets_travel_as_a_swarm_secret_not_in_the_service_spec(run) -> None:
    from virtstack_components.swarm.placement import SwarmPlacement
    from virtstack_components.swarm.tier import SwarmTier, SwarmTierArgs

    placement = SwarmPlacement(namespace="dev", lb_image="lb")
    d = with_secrets(run, SwarmTier, SwarmTierArgs, placement, "dev-app")
    [secret] = d.of_type("docker:index/secret:Secret")
    assert "data" in secret.secrets
    assert "name" not in secret.inputs  # Pulumi names it: a new value is a new secret
    content = base64.b64decode(secret.inputs["data"]).decode()
    assert shlex.split(content) == ["export", f"DB_PASSWORD={SECRET}"]
    spec = d.named("dev-app-replicas").inputs["taskSpec"]["containerSpec"]
    assert spec["commands"] == WRAPPED
    [mounted] = spec["secrets"]
    assert mounted["fileName"] == SECRETS_FILE
    assert SECRET not in json.dumps(spec["env"])
    assert spec["env"]["PLAIN"] == "x"
