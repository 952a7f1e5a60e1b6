"""Names virtstack gives engine objects that outlive a single run, in one place.

The targets create these and the CLI finds them again (data kept past ``destroy``), so
both must agree; this module imports nothing heavy.
"""

from __future__ import annotations

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
