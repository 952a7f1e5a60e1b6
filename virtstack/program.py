"""The Pulumi program: read the stack's spec, check it against its target, deploy it."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from virtstack import targets
from virtstack.environment import project_dir
from virtstack.errors import SpecError
from virtstack.spec import NAMESPACE, REGISTRY_PASSWORD_KEY, key, parse_spec


def stack_config() -> dict[str, Any]:
    """Every ``virtstack:`` key of the running stack, objects decoded.

    Read from the engine's whole config map, not key by key, so a misspelt key is an
    error instead of a silently ignored setting.
    """
    raw = {**get_config_env(), **CONFIG.get()}
    config: dict[str, Any] = {}
    for name, value in raw.items():
        if not name.startswith(f"{NAMESPACE}:"):
            continue
        try:
            config[name] = json.loads(value)
        except (TypeError, ValueError):
            config[name] = value  # a plain string
    return config


def main() -> None:
    """Deploy the running stack's environment and export what it made."""
    spec = parse_spec(stack_config())
    target = targets.check(spec)
    password = pulumi.Config(NAMESPACE).get_secret(REGISTRY_PASSWORD_KEY)
    if spec.registry.enabled and spec.registry.auth and password is None:
        raise SpecError(
            [
                f"{key(REGISTRY_PASSWORD_KEY)}: required while registry.auth is on "
                f"(pulumi config set --secret {key(REGISTRY_PASSWORD_KEY)} ...)"
            ]
        )
    # Pulumi runs the program in its own folder (stacks/); the project is above it.
    context = targets.DeployContext(
        env=pulumi.get_stack(), registry_password=password, project=project_dir(None)
    )
    for name, value in target.deploy(spec, context).items():
        pulumi.export(name, value)
