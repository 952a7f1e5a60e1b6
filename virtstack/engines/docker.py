"""The Docker engine adapter: a local or remote engine reached with the docker client."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from virtstack_components import names

from virtstack import naming
from virtstack.engines import hostcmd
from virtstack.engines.base import DataItem, Reachability
from virtstack.engines.hostcmd import retry_transient
from virtstack.errors import EngineCommandError, EngineUnreachableError
from virtstack.spec import EnvironmentSpec, key

if TYPE_CHECKING:
    from pulumi.automation import EngineEvent


def is_local(uri: str) -> bool:
    """Whether a Docker endpoint is on this machine (its ports can be probed from here)."""
    return hostcmd.is_local(uri)


@dataclass(frozen=True)
class DockerAdapter:
    """What virtstack does to a Docker engine directly, outside Pulumi runs."""

    kind: str = "docker"
    parallel: int | None = None

    def probe(self, uri: str) -> Reachability:
        try:
            argv = hostcmd.docker_argv(uri, "version", "--format", "{{.Server.Version}}")
            version = hostcmd.run(argv, uri=uri, timeout=hostcmd.PROBE_TIMEOUT).strip()
        except (EngineUnreachableError, EngineCommandError) as exc:
            return hostcmd.unreachable(self.kind, uri, exc)
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
        for where, image in wanted:
            if image in seen:
                continue
            seen.add(image)
            if not self.image_exists(uri, image):
                yield (
                    f"{where}: image {image!r} is not on the engine {uri} "
                    "(build it: images/build.sh)"
                )
        if not is_local(uri):
            return  # a remote host's ports cannot be probed from here
        ports = [
            (key("tiers", i, "publish"), str(t.publish_address), t.publish)
            for i, t in enumerate(spec.tiers)
            if t.publish is not None
        ]
        if spec.registry.enabled:
            ports.append((key("registry", "port"), str(spec.registry.address), spec.registry.port))
        for where, address, port in ports:
            holder = self.port_owner(uri, address, port)
            if holder is None or holder.startswith(f"{env}-"):
                continue  # free, or this environment's own load balancer or registry
            by = f"container {holder}" if holder else "another process"
            yield f"{where}: {address}:{port} is already in use by {by}"

    def image_exists(self, uri: str, image: str) -> bool:
        """Whether the engine has ``image``."""
        try:
            hostcmd.run(
                hostcmd.docker_argv(uri, "image", "inspect", "--format", "{{.Id}}", image), uri=uri
            )
        except EngineCommandError:
            return False
        return True

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

    def machines_made(self, events: Iterable[EngineEvent]) -> list[str]:
        """None: containers are not machines that boot."""
        return []

    def wait_ready(
        self, env: str, uri: str, machines: list[str], on_ready: Callable[[str, str], None]
    ) -> None:
        """Containers have no boot to wait for: Docker's healthchecks gate the balancers."""

    @retry_transient
    def lb_stats(
        self, spec: EnvironmentSpec, env: str, uri: str, outputs: Mapping[str, Any], tier: str
    ) -> str:
        """Read inside the load-balancer container: its stats port is never published."""
        lb = names.lb_name(names.tier_name(env, tier))
        url = f"http://127.0.0.1:{names.STATS_PORT}{names.STATS_CSV_PATH}"
        argv = hostcmd.docker_argv(uri, "exec", lb, "busybox", "wget", "-q", "-O-", url)
        return hostcmd.run(argv, uri=uri)


ADAPTER = DockerAdapter()
