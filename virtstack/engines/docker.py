"""The Docker engine adapter: a local or remote engine reached with the docker client."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from virtstack_components import names

from virtstack import naming
from virtstack.configkeys import key
from virtstack.engines import hostcmd
from virtstack.engines.base import (
    DataCopy,
    DataItem,
    DataWrite,
    Reachability,
    ReplicaPlacement,
    Tunnel,
)
from virtstack.engines.hostcmd import retry_transient
from virtstack.errors import EngineCommandError, EngineUnreachableError, UsageError

if TYPE_CHECKING:
    from virtstack.engineevents import EngineEvent
    from virtstack.spec import EnvironmentSpec


def is_local(uri: str) -> bool:
    """Whether a Docker endpoint is on this machine (its ports can be probed from here)."""
    return hostcmd.is_local(uri)


def from_registry(image: str) -> bool:
    """Whether an image's name says which registry has it (the engine pulls it from there).

    Docker's own rule: the first path component names a registry when it has a ``.`` or
    a ``:`` or is ``localhost``.
    """
    first, slash, _ = image.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


LOCAL_ENGINE = "unix:///var/run/docker.sock"
CERTS_D = Path("/etc/docker/certs.d")
"""Where a Docker engine finds the CAs it verifies each registry by (per address:port)."""
TUNNEL_TIMEOUT = 30.0


def _answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class DockerAdapter:
    """What virtstack does to a Docker engine directly, outside Pulumi runs."""

    kind: str = "docker"
    parallel: int | None = 64
    """Creating a container mostly waits for its first health check: Pulumi's default
    (8 at once on two cores) left the others of a dev shape queued behind those waits."""
    trusting: ClassVar[str] = "the engine"
    """Who pulls from the environment's registry, and must trust its CA."""

    def probe(self, uri: str) -> Reachability:
        try:
            argv = hostcmd.docker_argv(uri, "version", "--format", "{{.Server.Version}}")
            version = hostcmd.run(argv, uri=uri, timeout=hostcmd.PROBE_TIMEOUT).strip()
        except (EngineUnreachableError, EngineCommandError) as exc:
            # Over ssh, the docker client wraps ssh's own words in a paragraph of its own.
            said = str(exc).partition("stderr=")[2].strip()
            return hostcmd.unreachable(self.kind, uri, type(exc)(f"ssh: {said}") if said else exc)
        return Reachability(engine=self.kind, uri=uri, reachable=True, detail=f"Docker {version}")

    def preflight(self, spec: EnvironmentSpec, env: str, uri: str) -> list[str]:
        return list(self._problems(spec, env, uri))

    def _problems(self, spec: EnvironmentSpec, env: str, uri: str) -> Iterator[str]:
        wanted = [(key("tiers", i, "image"), t.image) for i, t in enumerate(spec.tiers)]
        if spec.tiers:
            wanted.append((key("images", "lb"), spec.images.lb))
        if spec.registry.enabled:
            wanted.append((key("images", "registry"), spec.images.registry))
        seen: set[str] = set()
        images: list[tuple[str, str]] = []
        for where, image in wanted:
            if image in seen or (from_registry(image) and not spec.registry.enabled):
                continue  # the engine pulls it from its registry during up
            seen.add(image)
            images.append((where, image))
        ports = [
            (key("tiers", i, "publish"), str(t.publish_address), t.publish)
            for i, t in enumerate(spec.tiers)
            if t.publish is not None
        ]
        if spec.registry.enabled:
            ports.append((key("registry", "port"), str(spec.registry.address), spec.registry.port))
        if not is_local(uri):
            ports = []  # a remote host's ports cannot be probed from here
        # Each check is an engine round trip of its own: asked at once, reported in order.
        with ThreadPoolExecutor(max_workers=1 + len(ports)) as pool:
            missing = pool.submit(self.missing_images, uri, [image for _, image in images])
            holders = [pool.submit(self.port_owner, uri, a, port) for _, a, port in ports]
            for where, image in images:
                if image in missing.result():
                    yield (
                        f"{where}: image {image!r} is not on the engine {uri} "
                        "(build it: images/build.sh)"
                    )
            for (where, address, port), holder in zip(ports, holders, strict=True):
                by = holder.result()
                if by is None or by.startswith(f"{env}-"):
                    continue  # free, or this environment's own load balancer or registry
                who = f"container {by}" if by else "another process"
                yield f"{where}: {address}:{port} is already in use by {who}"

    def image_exists(self, uri: str, *images: str) -> bool:
        """Whether the engine has ``images``, every one."""
        try:
            hostcmd.run(
                hostcmd.docker_argv(uri, "image", "inspect", "--format", "{{.Id}}", *images),
                uri=uri,
            )
        except EngineCommandError:
            return False
        return True

    def missing_images(self, uri: str, images: Sequence[str]) -> set[str]:
        """The ones of ``images`` the engine lacks: one round trip when it has them all."""
        if not images or self.image_exists(uri, *images):
            return set()
        return {image for image in images if not self.image_exists(uri, image)}

    def port_owner(self, uri: str, address: str, port: int) -> str | None:
        """Who holds ``address:port``: a container's name, "" for another process, None: free."""
        argv = hostcmd.docker_argv(
            uri, "ps", "--filter", f"publish={port}", "--format", "{{.Names}}"
        )
        found = hostcmd.run(argv, uri=uri).split()
        if found:
            return found[0]
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError:
                return ""
        return None

    def engine_id(self, uri: str) -> str | None:
        """The engine's own id (``docker info``), or None when it does not answer."""
        try:
            argv = hostcmd.docker_argv(uri, "info", "--format", "{{.ID}}")
            return hostcmd.run(argv, uri=uri).strip() or None
        except (EngineCommandError, EngineUnreachableError):
            return None

    def registry_tunnel(self, spec: EnvironmentSpec, uri: str) -> Tunnel:
        reg = spec.registry
        if not (reg.enabled and spec.tiers):
            return Tunnel()  # no image is pushed, so no digest is read
        return self.forward_registry(uri, str(reg.address), reg.port)

    def forward_registry(self, uri: str, address: str, port: int) -> Tunnel:
        """Make the registry that ``uri``'s engine publishes at ``address:port`` on its host
        answer at the same address here, for as long as the :class:`Tunnel` is open.

        The engine pushes to the registry by that name, on its host; the docker provider
        then reads the pushed image's digest by the same name over HTTPS from this machine.
        Only an ssh tunnel makes both names mean the one registry. None is needed when the
        "remote" engine is this machine's own (an ssh:// URI back to this host).
        """
        if not hostcmd.over_ssh(uri) or self.engine_id(uri) == self.engine_id(LOCAL_ENGINE):
            return Tunnel()
        if _answers(address, port):
            raise EngineCommandError(
                f"{uri}: {address}:{port} is taken on this machine, so the engine's registry "
                f"cannot be reached here under its name: pick another {key('registry', 'port')}"
            )
        parts = urlsplit(uri)
        target = f"{parts.username}@{parts.hostname}" if parts.username else str(parts.hostname)
        forward = f"{address}:{port}:{address}:{port}"
        process = subprocess.Popen(
            [*hostcmd.ssh_argv(uri), *(["-p", str(parts.port)] if parts.port else []),
             "-N", "-o", "ExitOnForwardFailure=yes", "-L", forward, "--", target],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + TUNNEL_TIMEOUT
        while not _answers(address, port):
            if process.poll() is not None or time.monotonic() > deadline:
                Tunnel(process).close()
                said = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise EngineUnreachableError(
                    f"{uri}: no tunnel to its registry {address}:{port} "
                    f"({hostcmd.first_line(said) if said else 'no answer'})"
                )
            time.sleep(0.2)
        return Tunnel(process)

    def trust_registry(self, uri: str, address: str, port: int, ca_file: Path) -> str | None:
        """Have ``uri``'s engine verify the registry at ``address:port`` by the environment's
        CA (``ca_file``); a warning when that is for the user to do, else None.

        Docker checks no certificate of a registry on 127.0.0.0/8; for any other address it
        reads ``/etc/docker/certs.d/<address>:<port>/ca.crt`` at each push and pull. Only a
        local engine's folder is this machine's to write, and only root may (it serves every
        engine on this machine: the Swarm lab's nodes too).
        """
        if ipaddress.ip_address(address).is_loopback:
            return None
        folder = CERTS_D / f"{address}:{port}"
        where = f"{folder}/ca.crt"
        if not hostcmd.is_local(uri):
            return f"{uri}: {self.trusting} must trust {ca_file} for its registry (as {where})"
        from virtstack import tlsfiles

        try:
            # Noted beside the CA: `destroy` removes this copy (see tlsfiles.remove_installed).
            tlsfiles.install(ca_file, folder / "ca.crt")
        except OSError as exc:
            return f"{where}: cannot install the registry's CA ({exc.strerror}): copy {ca_file}"
        return None

    def data_items(self, env: str, uri: str) -> list[DataItem]:
        label = names.NAMESPACE_LABEL
        argv = hostcmd.docker_argv(
            uri, "volume", "ls", "--format", f'{{{{.Name}}}}\t{{{{.Label "{label}"}}}}'
        )
        items = []
        for line in hostcmd.run(argv, uri=uri).splitlines():
            name, _, owner = line.partition("\t")
            if owner == env or (not owner and name.startswith(f"{env}-")):
                items.append(DataItem(name=name, owned=owner == env))
        return items

    def find_data(self, spec: EnvironmentSpec, env: str, uri: str) -> list[str]:
        pattern = naming.data_pattern(spec, env)
        return sorted(
            i.name for i in self.data_items(env, uri) if i.owned and pattern.fullmatch(i.name)
        )

    def migrate_data(self, spec: EnvironmentSpec, env: str, uri: str) -> dict[str, str]:
        items = self.data_items(env, uri)
        present = {i.name for i in items}
        todo = naming.legacy_renames(spec, env, [i.name for i in items if not i.owned])
        done: dict[str, str] = {}
        for old, new in sorted(todo.items()):
            if new in present:
                continue
            declared = naming.owner(spec, env, new)
            labels = [names.NAMESPACE_LABEL + "=" + env]
            if declared is not None:
                labels.append(f"{names.DATA_LABEL}={declared.name}")
            label_args = [arg for label in labels for arg in ("--label", label)]
            hostcmd.run(hostcmd.docker_argv(uri, "volume", "create", *label_args, new), uri=uri)
            # busybox from the load balancers' image: no network, the old volume read-only.
            copy = hostcmd.docker_argv(
                uri, "run", "--rm", "--network", "none",
                "-v", f"{old}:/from:ro", "-v", f"{new}:/to",
                spec.images.lb, "busybox", "cp", "-a", "/from/.", "/to/",
            )  # fmt: skip
            hostcmd.run(copy, uri=uri, timeout=hostcmd.LONG_TIMEOUT)
            done[old] = new
        return done

    def delete_data(self, spec: EnvironmentSpec, env: str, uri: str) -> list[str]:
        found = self.find_data(spec, env, uri)
        if found:
            hostcmd.run(hostcmd.docker_argv(uri, "volume", "rm", *found), uri=uri)
        return found

    def replicas(self, spec: EnvironmentSpec, env: str, uri: str) -> list[ReplicaPlacement]:
        argv = hostcmd.docker_argv(
            uri, "ps", "-aq", "--filter", f"label={names.NAMESPACE_LABEL}={env}",
            "--filter", "label=virtstack.role=replica",
        )  # fmt: skip
        ids = hostcmd.run(argv, uri=uri).split()
        if not ids:
            return []
        fields = (
            '{{.Name}}\t{{index .Config.Labels "virtstack.tier"}}\t{{.State.Status}}'
            "{{if .State.Health}} ({{.State.Health.Status}}){{end}}\t{{.RestartCount}}\t"
            "{{.State.StartedAt}}\t{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
        )
        out = hostcmd.run(hostcmd.docker_argv(uri, "inspect", "--format", fields, *ids), uri=uri)
        found = []
        for line in out.splitlines():
            name, tier, state, restarts, started, addresses = [*line.split("\t"), "", ""][:6]
            found.append(
                ReplicaPlacement(
                    replica=name.removeprefix("/"),
                    node=uri,
                    state=state,
                    tier=tier.removeprefix(f"{env}-"),
                    restarts=int(restarts) if restarts.isdigit() else None,
                    started=started,
                    address=addresses.split()[0] if addresses.split() else "",
                )
            )
        return sorted(found, key=lambda r: r.replica)

    def machines_made(self, events: Iterable[EngineEvent]) -> list[str]:
        """None: containers are not machines that boot."""
        return []

    def wait_ready(
        self, env: str, uri: str, machines: list[str], on_ready: Callable[[str, str], None]
    ) -> None:
        """Containers have no boot to wait for: Docker's healthchecks gate the balancers."""

    def before_destroy(self, env: str, uri: str) -> None:
        """Nothing: Pulumi stops and removes containers itself."""

    @retry_transient
    def lb_stats(
        self, spec: EnvironmentSpec, env: str, uri: str, outputs: Mapping[str, Any], tier: str
    ) -> str:
        """Read inside the load-balancer container: its stats port is never published."""
        lb = names.lb_name(names.tier_name(env, tier))
        url = f"http://127.0.0.1:{names.STATS_PORT}{names.STATS_CSV_PATH}"
        argv = hostcmd.docker_argv(uri, "exec", lb, "busybox", "wget", "-q", "-O-", url)
        return hostcmd.run(argv, uri=uri)

    def rotate(self, env: str, uri: str, tier: str, replicas: list[str], *, serve: bool) -> None:
        """Nothing: Docker stops a container with a signal its service may finish on."""

    def log_sources(
        self, env: str, uri: str, replicas: list[str], *, follow: bool, since: str | None
    ) -> dict[str, list[str]]:
        """``docker logs --timestamps`` of each replica's container."""
        extra = (["--follow"] if follow else []) + (["--since", since] if since else [])
        return {r: hostcmd.docker_argv(uri, "logs", "--timestamps", *extra, r) for r in replicas}

    def data_copies(
        self, spec: EnvironmentSpec, env: str, uri: str, *, include_root: bool = False
    ) -> list[DataCopy]:
        """A tar of each volume through a throwaway busybox container (local or remote
        engine alike); its users are paused for the copy unless their tier has hooks."""
        if include_root:
            raise UsageError(f"backup {env} --include-root: containers have no root disks")
        return [self._copy(spec, env, uri, name) for name in self.find_data(spec, env, uri)]

    def _copy(self, spec: EnvironmentSpec, env: str, uri: str, name: str) -> DataCopy:
        users = self._users(uri, name)
        declared = naming.owner(spec, env, name)
        tier = next(
            (t for t in spec.tiers if t.volume and declared and t.volume.name == declared.name),
            None,
        )
        if tier is not None and tier.backup.pre:
            hold = [hostcmd.docker_argv(uri, "exec", u, *tier.backup.pre) for u in users]
            post = tier.backup.post or []
            release = [hostcmd.docker_argv(uri, "exec", u, *post) for u in users if post]
        else:
            hold = [hostcmd.docker_argv(uri, "pause", u) for u in users]
            release = [hostcmd.docker_argv(uri, "unpause", u) for u in users]
        read = self._helper(uri, env, spec.images.lb, f"{name}:/data:ro", stdin=False)
        # A killed backup leaves its helper blocked on a pipe nobody reads: remove it
        # (quietly: after a finished copy it has removed itself).
        helper = read[read.index("--name") + 1]
        remove = 'docker --host "$1" rm -f "$2" >/dev/null 2>&1 || true'
        return DataCopy(
            name=name,
            owner=tier.name if tier else "registry",
            read=[*read, "busybox", "tar", "c", "-C", "/data", "."],
            hold=hold,
            release=[["sh", "-c", remove, "sh", uri, helper], *release],
            attempts=1 if tier is not None and tier.backup.pre else 5,
        )

    def data_write(
        self, spec: EnvironmentSpec, env: str, uri: str, name: str, image: str
    ) -> DataWrite:
        declared = naming.owner(spec, env, name)
        if name not in {i.name for i in self.data_items(env, uri)}:
            labels = [f"{names.NAMESPACE_LABEL}={env}"]
            if declared is not None:
                labels.append(f"{names.DATA_LABEL}={declared.name}")
            label_args = [arg for label in labels for arg in ("--label", label)]
            hostcmd.run(hostcmd.docker_argv(uri, "volume", "create", *label_args, name), uri=uri)
        users = self._users(uri, name)
        write = self._helper(uri, env, image, f"{name}:/data", stdin=True)
        replace = "find /data -mindepth 1 -delete && exec tar x -C /data"
        return DataWrite(
            write=[*write, "busybox", "sh", "-c", replace],
            before=[hostcmd.docker_argv(uri, "stop", u) for u in users],
            after=[hostcmd.docker_argv(uri, "start", u) for u in users],
        )

    def _users(self, uri: str, volume: str) -> list[str]:
        """The running containers that mount ``volume``."""
        argv = hostcmd.docker_argv(
            uri, "ps", "--filter", f"volume={volume}", "--format", "{{.Names}}"
        )
        return sorted(hostcmd.run(argv, uri=uri).split())

    @staticmethod
    def _helper(uri: str, env: str, image: str, mount: str, *, stdin: bool) -> list[str]:
        """``docker run`` of a throwaway container streaming a volume: no network, and no
        log (the engine would keep a copy of the whole stream)."""
        return hostcmd.docker_argv(
            uri, "run", "--rm", *(["-i"] if stdin else []), "--network", "none",
            "--log-driver", "none", "--label", f"{names.NAMESPACE_LABEL}={env}",
            "--name", f"{env}-backup-{secrets.token_hex(3)}", "-v", mount, image,
        )  # fmt: skip


ADAPTER = DockerAdapter()
