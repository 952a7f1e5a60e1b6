"""The engine adapter interface and the plain records adapters return."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pulumi.automation import EngineEvent

    from virtstack.spec import EnvironmentSpec


@dataclass(frozen=True, kw_only=True)
class Reachability:
    """Whether an engine answered, and its version or why not."""

    engine: str
    uri: str
    reachable: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class ServerHealth:
    """One backend server of a load balancer, as HAProxy sees it."""

    name: str
    address: str
    status: str
    """``UP``, ``DOWN``, ``MAINT``, ``no check``, or a transition like ``DOWN 1/2``."""
    check: str
    """The last health check's result (``L7OK 200``, ``L4CON``, ...)."""

    @property
    def up(self) -> bool:
        return self.status.startswith("UP") or self.status == "no check"


@dataclass(frozen=True, kw_only=True)
class TierHealth:
    """The backends of one tier's load balancer (or why they could not be read)."""

    tier: str
    lb: str
    servers: list[ServerHealth]
    unused_slots: int = 0
    """DNS-discovered servers reserve slots up to the tier's max; these are empty."""
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class DataItem:
    """A data volume or disk on the engine that may belong to an environment."""

    name: str
    owned: bool
    """Marked as the environment's (Docker label, or inside its data pool); unmarked items
    only share a name prefix (data virtstack 0.1 made, or another environment's)."""
    size_bytes: int | None = None
    """Capacity where the engine fixes one (libvirt data disks)."""


class EngineAdapter(Protocol):
    """Everything virtstack does to an engine directly, outside a Pulumi run.

    ``uri`` is always the environment's engine endpoint (``engine.uri`` or the target's
    default); ``env`` its name; ``outputs`` the stack's plain output values.
    """

    @property
    def kind(self) -> str:
        """A word for messages: ``docker``, ``libvirt``."""
        ...

    @property
    def parallel(self) -> int | None:
        """Resource operations Pulumi may run at once on this engine (None: its default)."""
        ...

    def probe(self, uri: str) -> Reachability:
        """Ask the engine to answer (a version or a host name), within a few seconds."""
        ...

    def preflight(self, spec: EnvironmentSpec, env: str, uri: str) -> list[str]:
        """What on the live engine would make a deployment fail, one line per problem."""
        ...

    def data_items(self, env: str, uri: str) -> list[DataItem]:
        """Data on the engine that is, or by its name may be, environment ``env``'s."""
        ...

    def find_data(self, spec: EnvironmentSpec, env: str, uri: str) -> list[str]:
        """The spec's data (volumes, data disks) that exists on the engine now, owned by
        ``env`` and named exactly as the spec's."""
        ...

    def migrate_data(self, spec: EnvironmentSpec, env: str, uri: str) -> dict[str, str]:
        """Copy data kept under virtstack 0.1's names to the current names (old names kept
        until the user deletes them); the copies made, old name -> new name."""
        ...

    def delete_data(self, spec: EnvironmentSpec, env: str, uri: str) -> list[str]:
        """Remove the environment's data from the engine; the names removed."""
        ...

    def machines_made(self, events: Iterable[EngineEvent]) -> list[str]:
        """The machines (VMs) an ``up`` created or replaced, from its engine events."""
        ...

    def wait_ready(
        self, env: str, uri: str, machines: list[str], on_ready: Callable[[str, str], None]
    ) -> None:
        """Wait until the machines ``up`` made or replaced have finished configuring
        themselves; ``on_ready(name, status)`` as each does. Raises OperationError naming
        those that failed. Nothing to wait for on engines without machines."""
        ...

    def lb_stats(
        self, spec: EnvironmentSpec, env: str, uri: str, outputs: Mapping[str, Any], tier: str
    ) -> str:
        """HAProxy's stats CSV of tier ``tier``'s load balancer, read on the engine."""
        ...
