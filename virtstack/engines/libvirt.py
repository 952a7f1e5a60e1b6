"""The libvirt adapter: a libvirt host (local or remote) reached with virsh."""

from __future__ import annotations

import contextlib
import shutil
import socket
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virtstack_components import names

from virtstack import images, naming
from virtstack.engines import guestagent, hostcmd
from virtstack.engines.base import DataItem, Reachability
from virtstack.engines.hostcmd import retry_transient
from virtstack.errors import EngineCommandError, EngineUnreachableError, OperationError
from virtstack.spec import EnvironmentSpec, key

if TYPE_CHECKING:
    from pulumi.automation import EngineEvent

# Data disks carry the image format as a suffix in the pool.
DISK_SUFFIX = ".qcow2"
DOMAIN_TYPE = "libvirt:index/domain:Domain"
# Steps after which a domain is new: created, or created anew in a replacement.
_MADE_OPS = frozenset({"create", "create-replacement", "replace"})


@dataclass(frozen=True)
class KeptData:
    """Data a previous deployment of an environment left in its data pool on the host."""

    uri: str
    pool: str

    def _ask(self, *args: str) -> str | None:
        try:
            return hostcmd.run(hostcmd.virsh_argv(self.uri, *args), uri=self.uri).strip() or None
        except (EngineCommandError, EngineUnreachableError):
            # Not there; or no answer, which the provider reports better in a moment.
            return None

    def pool_id(self) -> str | None:
        """The kept data pool's UUID, or None when there is none to adopt."""
        return self._ask("pool-uuid", self.pool)

    def volume_id(self, volume: str) -> str | None:
        """A kept data volume's key (its id for the provider), or None."""
        return self._ask("vol-key", "--pool", self.pool, volume)


@dataclass(frozen=True)
class LibvirtAdapter:
    """What virtstack does to a libvirt host directly, outside Pulumi runs."""

    kind: str = "libvirt"
    parallel: int | None = None
    """Pulumi's default: seed ISO uploads, the one call that hung a shared connection,
    have a connection of their own (see LibvirtPlacement.seed_provider)."""

    def probe(self, uri: str) -> Reachability:
        try:
            # `virsh version` makes the daemon probe the hypervisor binary (4-16 s on a
            # quiet machine); `hostname` is one round trip over the same connection.
            argv = hostcmd.virsh_argv(uri, "hostname")
            host = hostcmd.run(argv, uri=uri, timeout=hostcmd.PROBE_TIMEOUT).strip()
        except (EngineUnreachableError, EngineCommandError) as exc:
            return hostcmd.unreachable(self.kind, uri, exc)
        return Reachability(engine=self.kind, uri=uri, reachable=True, detail=f"libvirt on {host}")

    def preflight(self, spec: EnvironmentSpec, env: str, uri: str) -> list[str]:
        return [*images.check_guest_image(spec), *self._problems(spec, env, uri)]

    def _problems(self, spec: EnvironmentSpec, env: str, uri: str) -> Iterator[str]:
        if hostcmd.is_local(uri):
            path = Path(naming.pool_path(env, spec.engine.pool_path))
            # libvirt makes the pool's directory and any folders above it, unless something
            # in the way is not a folder.
            blocker = next((p for p in (path, *path.parents) if p.exists()), None)
            if blocker is not None and not blocker.is_dir():
                where = key("engine", "pool_path")
                yield f"{where}: {blocker} is not a directory, so pool {path} cannot be made"
        for i, tier in enumerate(spec.tiers):
            if tier.publish is None:
                continue
            where = key("tiers", i, "publish")
            # The libvirt provider runs xsltproc here to add the port to the domain's XML.
            if shutil.which("xsltproc") is None:
                yield f"{where}: publishing a VM's port needs xsltproc here (apt install xsltproc)"
            address = str(tier.publish_address)
            lb = names.lb_name(names.tier_name(env, tier.name))
            # QEMU of the tier's own load-balancer VM holds the port once it runs.
            if (
                hostcmd.is_local(uri)
                and _port_taken(address, tier.publish)
                and not self._runs(uri, lb)
            ):
                yield f"{where}: {address}:{tier.publish} is already in use by another process"
        have = self.host_memory_mib(uri)
        sized = [(key("tiers", i, "memory"), t.memory) for i, t in enumerate(spec.tiers)]
        sized += [(key("vms", i, "memory"), v.memory) for i, v in enumerate(spec.vms)]
        sized += [
            (key("container_hosts", i, "memory"), h.memory)
            for i, h in enumerate(spec.container_hosts)
        ]
        for where, mib in sized:
            if mib > have:
                yield f"{where}: {mib} MiB is more than the host {uri} has ({have} MiB)"

    def _runs(self, uri: str, domain: str) -> bool:
        try:
            state = hostcmd.run(hostcmd.virsh_argv(uri, "domstate", domain), uri=uri)
        except EngineCommandError:
            return False  # no such domain
        return state.strip() == "running"

    def host_memory_mib(self, uri: str) -> int:
        """The host's memory, from ``virsh nodeinfo``."""
        for line in hostcmd.run(hostcmd.virsh_argv(uri, "nodeinfo"), uri=uri).splitlines():
            label, _, value = line.partition(":")
            if label.strip() == "Memory size":
                return int(value.split()[0]) // 1024  # KiB
        raise EngineCommandError(f"{uri}: virsh nodeinfo reported no memory size")

    def kept_data(self, uri: str, pool: str) -> KeptData:
        """What an earlier deployment kept in data pool ``pool`` (the program adopts it)."""
        return KeptData(uri, pool)

    def _pools(self, uri: str) -> list[str]:
        return hostcmd.run(hostcmd.virsh_argv(uri, "pool-list", "--all", "--name"), uri=uri).split()

    def data_items(self, env: str, uri: str) -> list[DataItem]:
        """Every disk in the environment's data pool (it holds nothing else)."""
        pool = naming.data_pool(env)
        if pool not in self._pools(uri):
            return []
        out = hostcmd.run(hostcmd.virsh_argv(uri, "vol-list", pool), uri=uri)
        items = []
        for line in out.splitlines():
            if not line.strip():
                continue
            name = line.split()[0]
            info = hostcmd.run(
                hostcmd.virsh_argv(uri, "vol-info", "--bytes", "--pool", pool, name), uri=uri
            )
            size = next(
                (int(v.split()[0]) for k, _, v in (ln.partition(":") for ln in info.splitlines())
                 if k.strip() == "Capacity"),
                None,
            )  # fmt: skip
            items.append(DataItem(name=name.removesuffix(DISK_SUFFIX), owned=True, size_bytes=size))
        return items

    def find_data(self, spec: EnvironmentSpec, env: str, uri: str) -> list[str]:
        pattern = naming.data_pattern(spec, env)
        return sorted(
            i.name + DISK_SUFFIX for i in self.data_items(env, uri) if pattern.fullmatch(i.name)
        )

    def migrate_data(self, spec: EnvironmentSpec, env: str, uri: str) -> dict[str, str]:
        pool = naming.data_pool(env)
        present = {i.name for i in self.data_items(env, uri)}
        done: dict[str, str] = {}
        for old, new in sorted(naming.legacy_renames(spec, env, sorted(present)).items()):
            if new in present:
                continue
            argv = hostcmd.virsh_argv(
                uri, "vol-clone", "--pool", pool, old + DISK_SUFFIX, new + DISK_SUFFIX
            )
            hostcmd.run(argv, uri=uri, timeout=hostcmd.LONG_TIMEOUT)
            done[old] = new
        return done

    def delete_data(self, spec: EnvironmentSpec, env: str, uri: str) -> list[str]:
        pool = naming.data_pool(env)
        found = self.find_data(spec, env, uri)
        for name in found:
            hostcmd.run(hostcmd.virsh_argv(uri, "vol-delete", "--pool", pool, name), uri=uri)
        # The data pool outlives destroy for its disks' sake; empty, it can go too.
        if pool in self._pools(uri):
            remaining = hostcmd.run(hostcmd.virsh_argv(uri, "vol-list", pool), uri=uri)
            if not remaining.strip():
                with contextlib.suppress(EngineCommandError):  # already stopped
                    hostcmd.run(hostcmd.virsh_argv(uri, "pool-destroy", pool), uri=uri)
                for step in ("pool-delete", "pool-undefine"):
                    hostcmd.run(hostcmd.virsh_argv(uri, step, pool), uri=uri)
        return found

    def machines_made(self, events: Iterable[EngineEvent]) -> list[str]:
        """The domains a run created or replaced, by name, from its engine events."""
        made = []
        for event in events:
            done = event.res_outputs_event
            if done is None or done.metadata.type != DOMAIN_TYPE:
                continue
            if str(done.metadata.op.value) in _MADE_OPS and done.metadata.new is not None:
                made.append(str((done.metadata.new.outputs or {}).get("name", "")))
        return sorted({m for m in made if m})

    def wait_ready(
        self, env: str, uri: str, machines: list[str], on_ready: Callable[[str, str], None]
    ) -> None:
        """Wait for cloud-init's end in each VM, through its guest agent; ``on_ready(name,
        status)`` as each finishes. A failed or unfinished VM fails ``up``, named."""
        verdicts = guestagent.wait_ready(
            uri, machines, lambda found: on_ready(found.domain, found.status)
        )
        problems = guestagent.failures(verdicts)
        if problems:
            raise OperationError("up", env, problems)

    @retry_transient
    def lb_stats(
        self, spec: EnvironmentSpec, env: str, uri: str, outputs: Mapping[str, Any], tier: str
    ) -> str:
        """Read from the load-balancer VM's stats port, at its address in the outputs."""
        tiers = outputs.get("tiers") or {}
        endpoint = str((tiers.get(tier) or {}).get("endpoint") or "")
        host = endpoint.rpartition(":")[0]
        lb = names.lb_name(names.tier_name(env, tier))
        if not host:
            raise EngineCommandError(f"{lb}: no address in the stack outputs (run up)")
        url = f"http://{host}:{names.STATS_PORT}{names.STATS_CSV_PATH}"
        with urllib.request.urlopen(url, timeout=hostcmd.DEFAULT_TIMEOUT) as response:
            body: bytes = response.read()
        return body.decode()


def _port_taken(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return True
    return False


ADAPTER = LibvirtAdapter()
