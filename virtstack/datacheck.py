"""Before an ``up``: the environment's data on the engine against what the spec declares.

Data is never started empty by accident: data left under a name the spec no longer
declares (a renamed or removed volume), data still under virtstack 0.1's names, and data
disks whose declared size changed are each refused with the key to edit, before anything
is created. ``keep_orphans`` lets a user deploy anyway, leaving the old data in place.
"""

from __future__ import annotations

from collections.abc import Iterator

from virtstack import naming
from virtstack.engines.base import DataItem
from virtstack.spec import EnvironmentSpec

GIB = 1024**3


def problems(
    spec: EnvironmentSpec, env: str, items: list[DataItem], *, keep_orphans: bool = False
) -> Iterator[str]:
    """Everything about ``items`` (the engine's data of ``env``) that ``up`` must not pass."""
    current = naming.data_pattern(spec, env)
    legacy = naming.legacy_data_pattern(spec, env)
    present = {i.name for i in items if i.owned}
    for item in items:
        if legacy.fullmatch(item.name):
            if not _migrated(spec, env, item.name, present):
                yield (
                    f"{env}: data is still in {item.name} under virtstack 0.1's name; "
                    f"`virtstack migrate-data {env}` copies it to its new name first"
                )
            continue
        if not item.owned:
            continue
        declared = naming.owner(spec, env, item.name)
        if declared is None or not current.fullmatch(item.name):
            if not keep_orphans:
                yield (
                    f"{env}: {item.name} holds data the spec no longer declares (a renamed or "
                    "removed volume); restore the name, or `up --keep-orphaned-data` deploys "
                    "and leaves it in place (`destroy --delete-data` does not remove it)"
                )
            continue
        if item.size_bytes is not None and item.size_bytes != declared.size_gib * GIB:
            have = item.size_bytes / GIB
            yield (
                f"{declared.key}.size_gib: data disk {item.name} is {have:g} GiB and cannot "
                f"be resized in place; keep size_gib: {have:g} (or back it up, delete it "
                "and restore into the new size)"
            )


def orphans(spec: EnvironmentSpec, env: str, items: list[DataItem]) -> list[str]:
    """The lines :func:`problems` gives for data the spec no longer declares."""
    everything = list(problems(spec, env, items))
    kept = set(problems(spec, env, items, keep_orphans=True))
    return [line for line in everything if line not in kept]


def _migrated(spec: EnvironmentSpec, env: str, legacy_name: str, present: set[str]) -> bool:
    """Whether the data under a 0.1 name already has its copy under the current name."""
    new = naming.legacy_renames(spec, env, [legacy_name]).get(legacy_name)
    return new in present
