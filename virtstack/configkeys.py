"""Config keys as users write them in a stack file: the namespace and a key's path.

Light on purpose (no pydantic): ``up`` reads the stack file and starts Pulumi before the
spec's models load.
"""

from __future__ import annotations

NAMESPACE = "virtstack"

# Secrets sit beside the spec in the same namespace but are read as Pulumi secrets.
REGISTRY_PASSWORD_KEY = "registry_password"
SECRETS_KEY = "secrets"
"""The secret object holding the values tiers name with ``{secret: NAME}``."""
SECRET_KEYS = frozenset({REGISTRY_PASSWORD_KEY, SECRETS_KEY})


def key(*loc: str | int) -> str:
    """Render a location inside the spec as the config key path a user edits."""
    path = f"{NAMESPACE}:{loc[0]}" if loc else NAMESPACE
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path
