"""Data an environment keeps past ``destroy``: tier volumes and registry storage.

The components retain these on delete; only ``destroy --delete-data`` removes them, and
only the ones the spec names, so another environment's data on the same engine is safe.
"""

from __future__ import annotations

import contextlib
import re

from virtstack import hostcmd
from virtstack.errors import EngineCommandError
from virtstack.naming import data_pool
from virtstack.spec import EnvironmentSpec

# Libvirt data disks carry the image format as a suffix in the pool.
_DISK_SUFFIX = ".qcow2"


def data_pattern(spec: EnvironmentSpec, env: str) -> re.Pattern[str]:
    """Names of the spec's data on the engine: ``<env>-<volume>-<i>``, ``<env>-<storage>``.

    Every replica index matches, so volumes kept after a scale-down are found too.
    """
    names = [rf"{re.escape(f'{env}-{t.volume.name}')}-\d+" for t in spec.tiers if t.volume]
    if spec.registry.enabled:
        names.append(re.escape(f"{env}-{spec.registry.storage}"))
    if not names:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile("|".join(names))


def find_data(spec: EnvironmentSpec, env: str, engine: str, uri: str) -> list[str]:
    """The spec's data volumes that exist on the engine now."""
    pattern = data_pattern(spec, env)
    if engine == "docker":
        out = hostcmd.run(
            hostcmd.docker_argv(
                uri, "volume", "ls", "--filter", f"name={env}-", "--format", "{{.Name}}"
            ),
            uri=uri,
        )
        return sorted(n for n in out.split() if pattern.fullmatch(n))
    out = hostcmd.run(hostcmd.virsh_argv(uri, "pool-list", "--all", "--name"), uri=uri)
    if data_pool(env) not in out.split():
        return []
    out = hostcmd.run(hostcmd.virsh_argv(uri, "vol-list", data_pool(env)), uri=uri)
    names = (line.split()[0] for line in out.splitlines() if line.strip())
    return sorted(
        n for n in names if n.endswith(_DISK_SUFFIX) and pattern.fullmatch(n[: -len(_DISK_SUFFIX)])
    )


def delete_data(spec: EnvironmentSpec, env: str, engine: str, uri: str) -> list[str]:
    """Remove the spec's data volumes from the engine; the names removed."""
    names = find_data(spec, env, engine, uri)
    if engine == "docker":
        if names:
            hostcmd.run(hostcmd.docker_argv(uri, "volume", "rm", *names), uri=uri)
        return names
    for name in names:
        hostcmd.run(hostcmd.virsh_argv(uri, "vol-delete", "--pool", data_pool(env), name), uri=uri)
    # The data pool outlives destroy for its disks' sake; empty, it can go too.
    pools = hostcmd.run(hostcmd.virsh_argv(uri, "pool-list", "--all", "--name"), uri=uri)
    if data_pool(env) in pools.split():
        remaining = hostcmd.run(hostcmd.virsh_argv(uri, "vol-list", data_pool(env)), uri=uri)
        if not remaining.strip():
            with contextlib.suppress(EngineCommandError):  # already stopped
                hostcmd.run(hostcmd.virsh_argv(uri, "pool-destroy", data_pool(env)), uri=uri)
            for step in ("pool-delete", "pool-undefine"):
                hostcmd.run(hostcmd.virsh_argv(uri, step, data_pool(env)), uri=uri)
    return names
