"""The libvirt adapter: a libvirt host (local or remote) reached with virsh."""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from virtstack_components import names

from virtstack import images, naming
from virtstack.configkeys import key
from virtstack.engines import guestagent, hostcmd, sshopts, vmbackup
from virtstack.engines.base import (
    DataCopy,
    DataItem,
    DataWrite,
    Reachability,
    ReplicaPlacement,
    Tunnel,
)
from virtstack.engines.hostcmd import retry_transient
from virtstack.engines.vmbackup import DISK_SUFFIX, pool_state
from virtstack.errors import EngineCommandError, EngineUnreachableError, OperationError

if TYPE_CHECKING:
    from virtstack.engineevents import EngineEvent
    from virtstack.spec import EnvironmentSpec, PoolVolume

DOMAIN_TYPE = "libvirt:index/domain:Domain"
# Steps after which a domain is new: created, or created anew in a replacement.
_MADE_OPS = frozenset({"create", "create-replacement", "replace"})

# ssh options that change nothing for the libvirt provider's own ssh client, which
# never prompts and has a connect timeout of its own.
_HARMLESS = {"BatchMode", "ConnectTimeout", "IdentitiesOnly", "ServerAliveInterval",
             "ServerAliveCountMax", "LogLevel", "-q", "-v", "-T", "-4", "-6"}  # fmt: skip


def provider_uri(uri: str) -> str:
    """The libvirt provider's URI for an engine: its ssh options as URI parameters.

    The provider speaks ssh with a client of its own that reads no ssh options, only
    ``keyfile=`` and ``knownhosts=`` (and ``known_hosts_verify=ignore``) in the URI. An
    option it cannot honour raises :class:`sshopts.SshOptionError` (see
    :func:`ssh_problems`): silently dropping it would reach the host some other way.
    """
    opts = list(sshopts.parse(hostcmd.ssh_opts_of(uri)))
    if not opts:
        return str(uri)
    if not hostcmd.over_ssh(uri):
        raise sshopts.SshOptionError(opts[0].index, f"{uri} is not reached over ssh")
    parts = urlsplit(str(uri))
    params = dict(parse_qsl(parts.query))
    user, host, port = parts.username, parts.hostname or "", parts.port
    for opt in opts:
        value = opt.value
        if opt.name == "IdentityFile":
            params.setdefault("keyfile", value)
            params.setdefault("sshauth", "privkey")
        elif opt.name == "UserKnownHostsFile":
            params.setdefault("knownhosts", value)
        elif opt.name == "StrictHostKeyChecking":
            if value.lower() == "no":
                params.setdefault("known_hosts_verify", "ignore")
        elif opt.name == "Port":
            port = port or int(value)
        elif opt.name == "User":
            user = user or value
        elif opt.name not in _HARMLESS:
            raise sshopts.SshOptionError(
                opt.index,
                f"the libvirt provider's ssh client cannot take {opt.name} "
                "(it takes -i, UserKnownHostsFile, StrictHostKeyChecking, Port, User)",
            )
    netloc = (f"{user}@" if user else "") + host + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(params), parts.fragment))


def ssh_problems(uri: str) -> list[str]:
    """``engine.ssh_opts`` entries the libvirt provider cannot honour, one line each."""
    try:
        provider_uri(uri)
    except sshopts.SshOptionError as exc:
        return [f"{key('engine', 'ssh_opts', exc.index)}: {exc}"]
    return []


def vm_memory_mib(spec: EnvironmentSpec) -> int:
    """The memory every VM of the environment asks for, load balancers and registry too."""
    total = sum(t.memory * t.replicas + names.LB_VM_MEMORY_MIB for t in spec.tiers)
    total += sum(v.memory * v.count for v in spec.vms)
    total += sum(h.memory * h.count for h in spec.container_hosts)
    return total + (names.REGISTRY_VM_MEMORY_MIB if spec.registry.enabled else 0)


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
        for i, vm in enumerate(spec.vms):
            if (volume := vm.pool_image) and self.volume_key(uri, volume) is None:
                yield f"{key('vms', i, 'image')}: {self._volume_missing(uri, volume)}"
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
        total = vm_memory_mib(spec)
        if total > have:
            where = next((key(s) for s, items in spec.placed() if items), key("vms"))
            yield (
                f"{where}: all the environment's VMs together need {total} MiB, more "
                f"than the host {uri} has ({have} MiB)"
            )

    def volume_key(self, uri: str, image: PoolVolume) -> str | None:
        """The key (the provider's id) of a volume in a pool on the host, or None."""
        argv = hostcmd.virsh_argv(uri, "vol-key", "--pool", image.pool, image.volume)
        try:
            return hostcmd.run(argv, uri=uri).strip() or None
        except EngineCommandError:
            return None

    def _volume_missing(self, uri: str, image: PoolVolume) -> str:
        try:
            state = pool_state(uri, image.pool)
        except EngineCommandError:
            return f"no storage pool {image.pool} on {uri}"
        if state != "running":
            return f"storage pool {image.pool} on {uri} is not active (virsh pool-start)"
        return f"no volume {image.volume} in storage pool {image.pool} on {uri}"

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

    def kvm_problem(self, uri: str) -> str | None:
        """Why guests cannot run under KVM on the host, or None when they can.

        The host needs /dev/kvm and a CPU with virtualization extensions (vmx/svm): without
        them, as in a VM without nested virtualization, /dev/kvm may open but guests never
        boot. Read from the host itself (libvirt's own capabilities take half a minute on a
        busy host: it probes every emulator first).
        """
        found = self.kvm_signs(uri)
        if "/dev/kvm" not in found:
            return "the host has no /dev/kvm"
        if not found & {"vmx", "svm"}:
            return "the host CPU has no virtualization extensions (vmx/svm)"
        return None

    def kvm_signs(self, uri: str) -> set[str]:
        """Which of ``vmx``, ``svm`` (CPU flags) and ``/dev/kvm`` the host has."""
        if hostcmd.is_local(uri):
            flags = Path("/proc/cpuinfo").read_text().split()
            found = {"/dev/kvm"} if Path("/dev/kvm").exists() else set()
            return found | ({"vmx", "svm"} & set(flags))
        if hostcmd.over_ssh(uri):
            script = "grep -o -w -m1 -E 'vmx|svm' /proc/cpuinfo; test -e /dev/kvm && echo /dev/kvm"
            return set(hostcmd.ssh_run(uri, "sh", "-c", f"{script}; true").split())
        # No shell on the host (qemu+tcp/tls): libvirt's own view, slow as it is.
        argv = hostcmd.virsh_argv(uri, "capabilities")
        caps = ET.fromstring(hostcmd.run(argv, uri=uri, timeout=hostcmd.SLOW_TIMEOUT))
        features = {f.get("name") or "" for f in caps.iterfind("host/cpu/feature")}
        kvm = caps.find("guest/arch/domain[@type='kvm']") is not None
        return (features & {"vmx", "svm"}) | ({"/dev/kvm"} if kvm else set())

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
            name = (line.split() or [""])[0]
            if not name.endswith(DISK_SUFFIX):  # blank, or a backup's scratch image
                continue
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

    def data_copies(
        self, spec: EnvironmentSpec, env: str, uri: str, *, include_root: bool = False
    ) -> list[DataCopy]:
        """A qcow2 image of each data disk, copied live (see vmbackup)."""
        data = self.find_data(spec, env, uri)
        return vmbackup.copies(spec, env, uri, data, include_root=include_root)

    def data_write(
        self, spec: EnvironmentSpec, env: str, uri: str, name: str, image: str
    ) -> DataWrite:
        path = naming.pool_path(env, spec.engine.pool_path) + "-data"  # as the target makes it
        return vmbackup.write(uri, env, path, name + DISK_SUFFIX)

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

    def replicas(self, spec: EnvironmentSpec, env: str, uri: str) -> list[ReplicaPlacement]:
        """Each replica VM: its domain's state; restarts and start time of its service from
        inside, through the guest agent (left blank while the agent does not answer)."""
        found = []
        for t in spec.tiers:
            tier = names.tier_name(env, t.name)
            for i in range(t.replicas):
                domain = names.replica_name(tier, i)
                try:
                    state = hostcmd.run(hostcmd.virsh_argv(uri, "domstate", domain), uri=uri)
                except EngineCommandError:
                    state = "missing"
                restarts, started = guestagent.service(uri, domain, f"virtstack-{tier}")
                found.append(
                    ReplicaPlacement(
                        replica=domain,
                        node=uri,
                        state=state.strip(),
                        tier=t.name,
                        restarts=restarts,
                        started=started,
                    )
                )
        return found

    def registry_tunnel(self, spec: EnvironmentSpec, uri: str) -> Tunnel:
        return Tunnel()  # Pulumi pushes nothing to a VM registry: no digest is read

    def machines_made(self, events: Iterable[EngineEvent]) -> list[str]:
        """The domains a run created or replaced, by name, from its engine events."""
        made = []
        for event in events:
            done = event.res_outputs_event
            if done is None or done.metadata.type != DOMAIN_TYPE:
                continue
            if done.metadata.op in _MADE_OPS and done.metadata.new is not None:
                made.append(str((done.metadata.new.outputs or {}).get("name", "")))
        return sorted({m for m in made if m})

    def before_destroy(self, env: str, uri: str) -> None:
        """Nothing: Pulumi shuts the VMs down itself."""

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
        """Read inside the load-balancer VM, through its guest agent: the stats listener is
        on the VM's loopback only, and no network path from here to the VM is needed."""
        lb = names.lb_name(names.tier_name(env, tier))
        url = f"http://127.0.0.1:{names.STATS_PORT}{names.STATS_CSV_PATH}"
        done = guestagent.run(uri, lb, ["/bin/busybox", "wget", "-q", "-O-", url])
        if done.exitcode != 0:
            raise EngineCommandError(f"{uri}: {lb}: stats unreadable ({done.stderr.strip()})")
        return done.stdout

    def rotate(self, env: str, uri: str, tier: str, replicas: list[str], *, serve: bool) -> None:
        """Through HAProxy's runtime API in the load-balancer VM (guest agent): a replica VM
        goes by a hard power-off, so its requests would hang until HAProxy's timeout."""
        full = names.tier_name(env, tier)
        lb, state = names.lb_name(full), "ready" if serve else "maint"
        script = (Path(__file__).parent / "haproxy_rotation.py").read_text()
        backend = names.backend_name(full)
        argv = ["/usr/bin/python3", "-c", script, names.ADMIN_SOCKET, backend, state, *replicas]
        done = guestagent.run(uri, lb, argv)
        if done.exitcode != 0:
            raise EngineCommandError(f"{uri}: {lb}: {state} {replicas}: {done.stderr.strip()}")

    def log_sources(
        self, env: str, uri: str, replicas: list[str], *, follow: bool, since: str | None
    ) -> dict[str, list[str]]:
        """Each replica VM's service journal, read through its guest agent."""
        extra = (["--follow"] if follow else []) + ([since] if since else [])
        module = [sys.executable, "-m", "virtstack.engines.guestagent", "journal", uri]
        return {r: [*module, r, f"virtstack-{r.rpartition('-')[0]}", *extra] for r in replicas}


def _port_taken(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return True
    return False


ADAPTER = LibvirtAdapter()
