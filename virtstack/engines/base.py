"""The engine adapter interface and the plain records adapters return."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from virtstack.engineevents import EngineEvent
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


@dataclass(frozen=True, kw_only=True)
class ReplicaPlacement:
    """One replica as its engine sees it: where it runs, its state, restarts and start."""

    replica: str
    node: str
    """Where it runs: the engine, a Swarm node, or a VM's libvirt host."""
    state: str
    tier: str = ""
    restarts: int | None = None
    started: str = ""
    """When its process last started (RFC 3339), "" when the engine cannot say."""
    address: str = ""
    """Its address as its load balancer reaches it ("" when unknown)."""


@dataclass(frozen=True, kw_only=True)
class DataCopy:
    """How to copy one piece of an environment's data out, held still while it is read."""

    name: str
    """Its engine name (``shop_db-data_0``)."""
    owner: str
    """Who uses it, for messages: a tier's name or ``registry``."""
    read: list[str]
    """A command writing the data to stdout as one stream (a tar of a volume's files)."""
    hold: list[list[str]]
    """Run in order before the read (pre hooks, or a pause); a failure aborts the backup."""
    release: list[list[str]]
    """Run after the read, whatever happened, even if virtstack is killed (see guard)."""
    attempts: int = 1
    """How often a failed ``hold`` command is tried (a pause may fail while the kernel
    cannot freeze a busy process yet; a hook is run once)."""
    holding: str = "backup hook (or pause)"
    """What ``hold`` does, for the message when it fails."""
    stream: str = "tar"
    """The stream's format: the stored file's extension (``tar``, ``qcow2``)."""
    kind: str = "data"
    """``data``, or ``root``: a VM's root disk, kept in the backup but not restored (VMs
    are made anew from the declaration)."""


@dataclass(frozen=True, kw_only=True)
class DataWrite:
    """How to put one piece of data back from the stream :attr:`DataCopy.read` wrote."""

    write: list[str]
    """A command replacing the data's content with the stream on its stdin."""
    before: list[list[str]]
    """Run first (stop the replicas using it); ``after`` starts them again."""
    after: list[list[str]]


@dataclass
class Tunnel:
    """``ssh -L``: a port of the engine's host, answering at the same address here while
    open (``process`` None: nothing needed forwarding). Closes as a context manager too."""

    process: subprocess.Popen[bytes] | None = None

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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

    def registry_tunnel(self, spec: EnvironmentSpec, uri: str) -> Tunnel:
        """Make the environment's registry answer here under the name its engine uses, while
        the tunnel is open: Pulumi's Docker provider reads pushed images' digests from this
        machine (``up``, ``refresh``). No process where that name already reaches it."""
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

    def before_destroy(self, env: str, uri: str) -> None:
        """Make the engine ready for the environment's destroy (most need nothing)."""
        ...

    def lb_stats(
        self, spec: EnvironmentSpec, env: str, uri: str, outputs: Mapping[str, Any], tier: str
    ) -> str:
        """HAProxy's stats CSV of tier ``tier``'s load balancer, read on the engine."""
        ...

    def rotate(self, env: str, uri: str, tier: str, replicas: list[str], *, serve: bool) -> None:
        """Put replicas of tier ``tier`` in (``serve``) or out of their load balancer's
        rotation; out, once their requests are done. Before a scale-down removes them."""
        ...

    def log_sources(
        self, env: str, uri: str, replicas: list[str], *, follow: bool, since: str | None
    ) -> dict[str, list[str]]:
        """A command per replica that prints its log, one ``<RFC 3339 time> <text>`` line
        each (and keeps printing with ``follow``); ``since``: Docker's --since syntax."""
        ...

    def replicas(self, spec: EnvironmentSpec, env: str, uri: str) -> list[ReplicaPlacement]:
        """Every replica of the environment: where it runs, its state, restarts, start."""
        ...

    def data_copies(
        self, spec: EnvironmentSpec, env: str, uri: str, *, include_root: bool = False
    ) -> list[DataCopy]:
        """How to copy out each piece of the environment's data that exists now (and the
        VMs' root disks with ``include_root``)."""
        ...

    def data_write(
        self, spec: EnvironmentSpec, env: str, uri: str, name: str, image: str
    ) -> DataWrite:
        """Create data ``name`` of ``env`` (empty, marked as the environment's) unless it
        exists, and say how to fill it; ``image`` is the image of the backup's helper."""
        ...
