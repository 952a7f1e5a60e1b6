"""Names virtstack gives engine objects that outlive a single run, in one place.

The targets create these and the CLI finds them again (data kept past ``destroy``), so
both must agree; this module imports nothing heavy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from virtstack_components import names

from virtstack.configkeys import key

if TYPE_CHECKING:
    from virtstack.spec import EnvironmentSpec

POOL_ROOT = "/var/lib/virtstack/pools"


def pool(env: str) -> str:
    """The libvirt storage pool of a VM environment: root disks, seeds, the guest image."""
    return f"{env}-pool"


def data_pool(env: str) -> str:
    """The libvirt pool of an environment's data disks; it outlives ``destroy``."""
    return f"{env}-data"


def pool_path(env: str, configured: str | None) -> str:
    """Directory of the environment's pool (``engine.pool_path``, or under POOL_ROOT)."""
    return configured or f"{POOL_ROOT}/{env}"


@dataclass(frozen=True, kw_only=True)
class DeclaredData:
    """One piece of data the spec declares: a tier's volume (per replica) or the registry's."""

    key: str
    """The config key that declares it (``virtstack:tiers[2].volume``)."""
    name: str
    """Its name in the spec."""
    per_replica: bool
    size_gib: int


def declared_data(spec: EnvironmentSpec) -> list[DeclaredData]:
    """Every piece of data the spec declares."""
    found = [
        DeclaredData(
            key=key("tiers", i, "volume"),
            name=t.volume.name,
            per_replica=True,
            size_gib=t.volume.size_gib,
        )
        for i, t in enumerate(spec.tiers)
        if t.volume
    ]
    if spec.registry.enabled:
        found.append(
            DeclaredData(
                key=key("registry", "storage"),
                name=spec.registry.storage,
                per_replica=False,
                size_gib=spec.registry.size_gib,
            )
        )
    return found


def _pattern(parts: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(parts)) if parts else re.compile(r"(?!)")  # (?!) matches nothing


def data_pattern(spec: EnvironmentSpec, env: str) -> re.Pattern[str]:
    """Engine names of the spec's data: every replica's tier volume, the registry storage.

    Every replica index matches, so volumes kept after a scale-down are found too.
    """
    return _pattern(
        [
            re.escape(names.data_name(env, d.name))
            + (re.escape(names.DATA_SEPARATOR) + r"\d+" if d.per_replica else "")
            for d in declared_data(spec)
        ]
    )


def legacy_data_pattern(spec: EnvironmentSpec, env: str) -> re.Pattern[str]:
    """The names virtstack 0.1 gave the spec's data (dash-joined, so ambiguous)."""
    return _pattern(
        [
            re.escape(names.legacy_data_name(env, d.name)) + (r"-\d+" if d.per_replica else "")
            for d in declared_data(spec)
        ]
    )


def owner(spec: EnvironmentSpec, env: str, engine_name: str) -> DeclaredData | None:
    """The declaration an engine-side data name belongs to, if any."""
    for d in declared_data(spec):
        base = names.data_name(env, d.name)
        if engine_name == base and not d.per_replica:
            return d
        rest = engine_name.removeprefix(base + names.DATA_SEPARATOR)
        if d.per_replica and rest != engine_name and rest.isdigit():
            return d
    return None


def legacy_renames(spec: EnvironmentSpec, env: str, present: list[str]) -> dict[str, str]:
    """Each of ``present`` under a virtstack 0.1 name of the spec's data, with its new name."""
    renames: dict[str, str] = {}
    for d in declared_data(spec):
        base = names.legacy_data_name(env, d.name)
        for name in present:
            if not d.per_replica:
                if name == base:
                    renames[name] = names.data_name(env, d.name)
                continue
            index = name.removeprefix(base + "-")
            if index != name and index.isdigit():
                renames[name] = names.replica_data_name(env, d.name, int(index))
    return renames
