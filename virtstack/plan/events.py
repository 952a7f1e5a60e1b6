"""The engine-event vocabulary: operations, their symbols and styles, URNs, diagnostics.

Shared by the plan, its renderers and the run progress display.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

_PROVIDER_PREFIX = "pulumi:providers:"
SECRET = "[secret]"
RETAINED = "kept on the engine (retain on delete)"
# How the engine marks a (blinded) secret in event payloads: Pulumi's secret signature.
SECRET_SIG = "4dabf18193072939515e22adb298388d"


class Op(StrEnum):
    """What a preview will do to one resource (replacement steps folded into REPLACE)."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    IMPORT = "import"
    SAME = "same"


OPS: dict[str, Op] = {
    "create": Op.CREATE,
    "update": Op.UPDATE,
    "replace": Op.REPLACE,
    "create-replacement": Op.REPLACE,
    "delete-replaced": Op.REPLACE,
    "discard-replaced": Op.REPLACE,
    "delete": Op.DELETE,
    "discard": Op.DELETE,
    "import": Op.IMPORT,
    "import-replacement": Op.REPLACE,
    "same": Op.SAME,
}
# When one URN has several steps, the most drastic one describes it.
RANK = [Op.SAME, Op.IMPORT, Op.UPDATE, Op.CREATE, Op.DELETE, Op.REPLACE]
CHANGES = (Op.CREATE, Op.UPDATE, Op.REPLACE, Op.DELETE, Op.IMPORT)
SYMBOL = {
    Op.CREATE: "+",
    Op.UPDATE: "~",
    Op.REPLACE: "+-",
    Op.DELETE: "-",
    Op.IMPORT: "=",
    Op.SAME: " ",
}
STYLE = {
    Op.CREATE: "green",
    Op.UPDATE: "yellow",
    Op.REPLACE: "magenta",
    Op.DELETE: "red",
    Op.IMPORT: "cyan",
    Op.SAME: "dim",
}


def split_urn(urn: str) -> tuple[str, str]:
    """``(type, name)`` of a URN ``urn:pulumi:stack::project::parent$type::name``."""
    parts = urn.split("::", 3)
    if len(parts) < 4:
        return "", urn
    return parts[2].rpartition("$")[2], parts[3]


def short_type(type_: str) -> str:
    """``docker:index/container:Container`` as ``docker:Container``."""
    if type_.startswith(_PROVIDER_PREFIX):
        return f"provider:{type_.removeprefix(_PROVIDER_PREFIX)}"
    package, _, rest = type_.partition(":")
    return f"{package}:{rest.rpartition(':')[2]}" if rest else type_


def diagnostic_lines(message: str) -> list[str]:
    """An engine diagnostic as one line per problem.

    A Python traceback (a bug in the program, not a spec error) is its last line.
    """
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    if any(ln.startswith("Traceback (most recent call last)") for ln in lines):
        return lines[-1:]
    return [ln.removeprefix("* ") for ln in lines]


def mask(value: Any) -> Any:
    """``value`` with every blinded secret replaced by ``[secret]``."""
    if isinstance(value, Mapping):
        if SECRET_SIG in value:
            return SECRET
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value
