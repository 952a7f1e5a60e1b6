"""Checks against the live engine before anything changes.

A deploy that fails halfway leaves half an environment; these catch what the spec alone
cannot know: images missing from the Docker engine, published ports that something else
already holds. Each problem names the config key, the engine and the value.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from virtstack import hostcmd, naming
from virtstack.errors import EngineCommandError, SpecError
from virtstack.spec import EnvironmentSpec, key

ImageExists = Callable[[str, str], bool]
"""(engine uri, image) -> whether the engine has the image."""
PortOwner = Callable[[str, str, int], str | None]
"""(engine uri, address, port) -> who holds the port: a container name, "" for some other
process, None when it is free."""


def image_exists(uri: str, image: str) -> bool:
    """Whether the Docker engine at ``uri`` has ``image``."""
    try:
        hostcmd.run(
            hostcmd.docker_argv(uri, "image", "inspect", "--format", "{{.Id}}", image), uri=uri
        )
    except EngineCommandError:
        return False
    return True


def port_owner(uri: str, address: str, port: int) -> str | None:
    """Who holds ``address:port`` on the Docker engine's host (local engines only)."""
    names = hostcmd.run(
        hostcmd.docker_argv(uri, "ps", "--filter", f"publish={port}", "--format", "{{.Names}}"),
        uri=uri,
    ).split()
    if names:
        return names[0]
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return ""
    return None


def docker_problems(
    spec: EnvironmentSpec,
    env: str,
    uri: str,
    *,
    exists: ImageExists = image_exists,
    owner: PortOwner = port_owner,
    local: bool = True,
) -> Iterator[str]:
    """What would make a deploy of ``spec`` as environment ``env`` on ``uri`` fail."""
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
        if not exists(uri, image):
            yield f"{where}: image {image!r} is not on the engine {uri} (build it: images/build.sh)"
    if not local:
        return  # a remote host's ports cannot be probed from here
    ports = [
        (key("tiers", i, "publish"), str(t.publish_address), t.publish)
        for i, t in enumerate(spec.tiers)
        if t.publish is not None
    ]
    if spec.registry.enabled:
        ports.append((key("registry", "port"), str(spec.registry.address), spec.registry.port))
    for where, address, port in ports:
        holder = owner(uri, address, port)
        if holder is None or holder.startswith(f"{env}-"):
            continue  # free, or this environment's own load balancer or registry
        by = f"container {holder}" if holder else "another process"
        yield f"{where}: {address}:{port} is already in use by {by}"


def host_memory_mib(uri: str) -> int:
    """The libvirt host's memory, from ``virsh nodeinfo``."""
    for line in hostcmd.run(hostcmd.virsh_argv(uri, "nodeinfo"), uri=uri).splitlines():
        label, _, value = line.partition(":")
        if label.strip() == "Memory size":
            return int(value.split()[0]) // 1024  # KiB
    raise EngineCommandError(f"{uri}: virsh nodeinfo reported no memory size")


def libvirt_problems(
    spec: EnvironmentSpec,
    env: str,
    uri: str,
    *,
    memory: Callable[[str], int] = host_memory_mib,
    local: bool = True,
) -> Iterator[str]:
    """What would make a deployment of ``spec`` as ``env`` on the libvirt at ``uri`` fail."""
    if local:
        path = Path(naming.pool_path(env, spec.engine.pool_path))
        # libvirt makes the pool's directory and any folders above it, unless something
        # in the way is not a folder.
        blocker = next((p for p in (path, *path.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            where = key("engine", "pool_path")
            yield f"{where}: {blocker} is not a directory, so pool {path} cannot be made"
    have = memory(uri)
    sized = [(key("tiers", i, "memory"), t.memory) for i, t in enumerate(spec.tiers)]
    sized += [(key("vms", i, "memory"), v.memory) for i, v in enumerate(spec.vms)]
    sized += [
        (key("container_hosts", i, "memory"), h.memory) for i, h in enumerate(spec.container_hosts)
    ]
    for where, mib in sized:
        if mib > have:
            yield f"{where}: {mib} MiB is more than the host {uri} has ({have} MiB)"


def check(spec: EnvironmentSpec, env: str) -> None:
    """Raise :class:`SpecError` listing everything on the live engine that would fail ``env``."""
    from virtstack import targets  # imports Pulumi: not for --help
    from virtstack.targets.base import is_remote
    from virtstack.targets.libvirt import check_guest_image

    target = targets.get(spec.target)
    uri = target.uri(spec)
    local = not is_remote(uri)
    if target.engine == "docker":
        problems = list(docker_problems(spec, env, uri, local=local))
    else:
        problems = [*check_guest_image(spec), *libvirt_problems(spec, env, uri, local=local)]
    if problems:
        raise SpecError(problems)
