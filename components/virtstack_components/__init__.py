"""virtstack's reusable Pulumi components, usable from any Pulumi program.

Each is a ``ComponentResource`` of type ``virtstack:<module>:<Name>`` with a typed args
class. They know nothing of virtstack's spec or CLI and import nothing from it. Engine
neutral pieces sit here; each engine's components in a subpackage:

- ``tier``, ``stack``: tier arguments, HAProxy config, and ``ServiceStack`` (any engine)
- ``docker``: ``DockerPlacement``, ``DockerNetwork``, ``ContainerRegistry``, ``ContainerTier``
- ``libvirt``: ``LibvirtHost``/``LibvirtPlacement``, ``LibvirtNetwork``, ``BaseImage``,
  ``VirtualMachine``, ``VmRegistry``, ``VmTier``, ``ContainerHost``

Names are exported lazily, so ``virtstack_components.names`` (no Pulumi) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ContainerHost": "libvirt.container_host",
    "ContainerHostArgs": "libvirt.container_host",
    "ContainerRegistry": "docker.registry",
    "ContainerRegistryArgs": "docker.registry",
    "ContainerTier": "docker.tier",
    "ContainerTierArgs": "docker.tier",
    "Credentials": "registry",
    "DataDisk": "libvirt.vm",
    "DataVolume": "tier",
    "DockerNetwork": "docker.network",
    "DockerNetworkArgs": "docker.network",
    "DockerPlacement": "docker.placement",
    "BaseImage": "libvirt.image",
    "BaseImageArgs": "libvirt.image",
    "GuestImage": "libvirt.image",
    "GuestImageIds": "libvirt.placement",
    "HealthCheck": "tier",
    "LibvirtHost": "libvirt.placement",
    "LibvirtNetwork": "libvirt.network",
    "LibvirtNetworkArgs": "libvirt.network",
    "LibvirtPlacement": "libvirt.placement",
    "Publish": "tier",
    "ServiceStack": "stack",
    "ServiceStackArgs": "stack",
    "StackTier": "stack",
    "TierArgs": "tier",
    "VirtualMachine": "libvirt.vm",
    "VirtualMachineArgs": "libvirt.vm",
    "VmRegistry": "libvirt.registry",
    "VmRegistryArgs": "libvirt.registry",
    "VmTier": "libvirt.tier",
    "VmTierArgs": "libvirt.tier",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
