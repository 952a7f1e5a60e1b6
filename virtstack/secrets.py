"""Secrets in stack files: the registry password virtstack generates, and the rule that
every secret key holds a Pulumi secret, never plaintext."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from virtstack.spec import NAMESPACE, REGISTRY_PASSWORD_KEY, EnvironmentSpec, key

if TYPE_CHECKING:
    from virtstack.environment import Environment, StackRef
    from virtstack.runner import Runner

PASSWORD_CONFIG_KEY = f"{NAMESPACE}:{REGISTRY_PASSWORD_KEY}"
SECRET_KEYS = (PASSWORD_CONFIG_KEY,)
"""Config keys that must only ever hold Pulumi secrets."""


def is_encrypted(value: Any) -> bool:
    """Whether a stack file value is a Pulumi secret (``{secure: ciphertext}``)."""
    return isinstance(value, Mapping) and set(value) == {"secure"}


def plaintext_problems(config: Mapping[str, Any], is_secret: Callable[[str], bool]) -> list[str]:
    """A line for every secret key holding plaintext (readable by anyone with the file)."""
    return [
        f"{key(name.partition(':')[2])}: must be a Pulumi secret, not plaintext "
        f"(pulumi config set --secret {name} < file)"
        for name in SECRET_KEYS
        if name in config and not is_secret(name)
    ]


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
