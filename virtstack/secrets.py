"""The registry password: a secret virtstack generates and keeps in the stack file."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from virtstack.spec import NAMESPACE, REGISTRY_PASSWORD_KEY, EnvironmentSpec

if TYPE_CHECKING:
    from virtstack.environment import Environment, StackRef
    from virtstack.runner import Runner

PASSWORD_CONFIG_KEY = f"{NAMESPACE}:{REGISTRY_PASSWORD_KEY}"


def needs_registry_password(spec: EnvironmentSpec) -> bool:
    """Whether the environment's registry wants the password secret."""
    return spec.registry.enabled and spec.registry.auth


def has_registry_password(environment: Environment) -> bool:
    """Whether the stack file holds the registry password (encrypted, so not read here)."""
    return PASSWORD_CONFIG_KEY in environment.config


def new_password() -> str:
    """A random registry password (URL-safe, so it survives htpasswd and docker login)."""
    return secrets.token_urlsafe(24)


def ensure_registry_password(runner: Runner, ref: StackRef, environment: Environment) -> bool:
    """Generate and store the registry password if the spec needs one and it is unset.

    Returns whether a password was generated.
    """
    if not needs_registry_password(environment.spec) or has_registry_password(environment):
        return False
    runner.set_secret(ref, PASSWORD_CONFIG_KEY, new_password())
    return True
