"""Where a component's resources go: a Docker engine or a libvirt host.

A placement carries the provider and a namespace (the environment's name). Engine-side
names come from component names (which targets start with the environment's name), and
data names from the namespace, so two environments can share one engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi


@dataclass(frozen=True, kw_only=True)
class _Placement:
    namespace: str
    provider: pulumi.ProviderResource | None = None

    def data_name(self, name: str) -> str:
        """The engine's name for data called ``name`` in the spec (volumes, data disks).

        Data outlives the stack's resources, so its name carries the namespace rather
        than a component's name: the same environment finds it again.
        """
        return f"{self.namespace}-{name}"

    def opts(self, parent: pulumi.Resource, **extra: Any) -> pulumi.ResourceOptions:
        """Child options: parented to ``parent``, on this placement's provider."""
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, **extra)


@dataclass(frozen=True, kw_only=True)
class DockerPlacement(_Placement):
    """Resources on a Docker engine."""


@dataclass(frozen=True, kw_only=True)
class GuestImageIds:
    """A guest image uploaded into a pool: root disk, kernel and initrd volume ids."""

    disk: pulumi.Input[str]
    kernel: pulumi.Input[str]
    initrd: pulumi.Input[str]
    cmdline: str


@dataclass(frozen=True, kw_only=True)
class LibvirtHost(_Placement):
    """Resources on a libvirt host (networks, pools, images)."""

    domain_type: str = "kvm"


@dataclass(frozen=True, kw_only=True)
class LibvirtPlacement(LibvirtHost):
    """VMs on a libvirt host: their storage pool, network and guest image."""

    pool: pulumi.Input[str]
    data_pool: pulumi.Input[str]
    """Where data disks go: a pool that outlives the environment's other resources."""
    network_id: pulumi.Input[str]
    image: GuestImageIds
    find_kept: Callable[[str], str | None] = lambda volume: None
    """The id of a data volume kept in ``data_pool`` from an earlier deployment, if any."""


Placement = DockerPlacement | LibvirtPlacement
