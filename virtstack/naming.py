"""Names virtstack gives engine objects that outlive a single run, in one place.

The targets create these and the CLI finds them again (data kept past ``destroy``), so
both must agree; this module imports nothing heavy.
"""

from __future__ import annotations

import re

from virtstack_components import names

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


def data_pattern(spec: EnvironmentSpec, env: str) -> re.Pattern[str]:
    """Engine names of the spec's data: every replica's tier volume, the registry storage.

    Every replica index matches, so volumes kept after a scale-down are found too.
    """
    found = [
        re.escape(names.data_name(env, t.volume.name)) + r"-\d+" for t in spec.tiers if t.volume
    ]
    if spec.registry.enabled:
        found.append(re.escape(names.data_name(env, spec.registry.storage)))
    if not found:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile("|".join(found))
