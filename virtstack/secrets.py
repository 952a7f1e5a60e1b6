"""Secrets in stack files: the registry password virtstack generates, and the rule that
every secret key holds a Pulumi secret, never plaintext."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from virtstack.configkeys import NAMESPACE, REGISTRY_PASSWORD_KEY, SECRETS_KEY, key

if TYPE_CHECKING:
    from virtstack.environment import Environment, StackRef
    from virtstack.runner import Runner
    from virtstack.spec import EnvironmentSpec

PASSWORD_CONFIG_KEY = f"{NAMESPACE}:{REGISTRY_PASSWORD_KEY}"
SECRETS_CONFIG_KEY = f"{NAMESPACE}:{SECRETS_KEY}"
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


def stored_secrets(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The named secrets of a stack's config (encrypted leaves in a stack file, or
    plaintext in the program), by name."""
    found = config.get(SECRETS_CONFIG_KEY) or {}
    return found if isinstance(found, Mapping) else {}


def secret_ref_problems(spec: EnvironmentSpec, config: Mapping[str, Any]) -> list[str]:
    """A line for every ``{secret: NAME}`` with no such secret."""
    stored = stored_secrets(config)
    return [
        f"{where}: no secret named {name!r} (virtstack secret set ENV {name})"
        for where, name in spec.secret_refs()
        if name not in stored
    ]


def stack_file_plaintext(config: Mapping[str, Any]) -> list[str]:
    """A line for every secret a stack file's config holds as plaintext: the registry
    password, a named secret. Read before anything else sees the file (Pulumi records an
    update's config in the stack's history)."""
    return plaintext_problems(config, lambda name: is_encrypted(config[name])) + [
        f"{key(SECRETS_KEY, name)}: must be a Pulumi secret, not plaintext "
        f"(virtstack secret set ENV {name})"
        for name, value in stored_secrets(config).items()
        if not is_encrypted(value)
    ]


def needs_registry_password(spec: EnvironmentSpec) -> bool:
    """Whether the environment's registry wants the password secret."""
    return spec.registry.enabled and spec.registry.auth


def has_registry_password(environment: Environment) -> bool:
    """Whether the stack file holds the registry password (encrypted, so not read here)."""
    return PASSWORD_CONFIG_KEY in environment.config


def registry_password_missing(environment: Environment) -> bool:
    """Whether the spec needs the registry password and the stack file has none yet."""
    return needs_registry_password(environment.spec) and not has_registry_password(environment)


def registry_password_settled(config: Mapping[str, Any]) -> bool:
    """Whether a stack file's config, before its spec is checked, surely needs no registry
    password generated: it holds one, or its registry is not enabled (the spec's default).

    When true, :func:`registry_password_missing` is false for the checked environment.
    """
    registries = [value for name, value in config.items() if name in ("registry", key("registry"))]
    return PASSWORD_CONFIG_KEY in config or all(
        isinstance(r, Mapping) and r.get("enabled", False) is False for r in registries
    )


def new_password() -> str:
    """A random registry password (URL-safe, so it survives htpasswd and docker login)."""
    return secrets.token_urlsafe(24)


def ensure_registry_password(runner: Runner, ref: StackRef, environment: Environment) -> bool:
    """Generate and store the registry password if the spec needs one and it is unset.

    Returns whether a password was generated.
    """
    if not registry_password_missing(environment):
        return False
    runner.set_secret(ref, PASSWORD_CONFIG_KEY, new_password())
    return True


def set_named_secret(runner: Runner, ref: StackRef, name: str, value: str) -> None:
    """Store secret ``name`` (for ``{secret: NAME}`` env values) encrypted in the stack file."""
    from pydantic import TypeAdapter, ValidationError

    from virtstack.errors import UsageError
    from virtstack.spec import Name
    from virtstack.stackfiles import read_config

    try:
        TypeAdapter(Name).validate_python(name)
    except ValidationError:
        raise UsageError(f"{name!r}: secret names are DNS labels (like db-password)") from None
    if not value:
        raise UsageError(f"secret {name}: empty value (give it on standard input)")
    read_config(ref.project, ref.env)  # a missing environment is EnvironmentNotFoundError
    runner.set_secret(ref, f"{SECRETS_CONFIG_KEY}.{name}", value, path=True)


def describe(ref: StackRef) -> list[str]:
    """One line per named secret: its name and the env values that use it."""
    from virtstack.environment import load

    environment = load(ref)
    users: dict[str, list[str]] = {}
    for where, name in environment.spec.secret_refs():
        users.setdefault(name, []).append(where)
    names = sorted(set(stored_secrets(environment.config)) | set(users))
    return [f"{name}: used by {', '.join(users.get(name, [])) or 'nothing'}" for name in names]
