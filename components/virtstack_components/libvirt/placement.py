"""Where libvirt components go: a host (provider, domain type), a pool, a network, an image."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi

from virtstack_components import names

if TYPE_CHECKING:
    from virtstack_components.libvirt.firewall import TierAccess
    from virtstack_components.stack import StackTier
    from virtstack_components.tier import Tier, TierArgs


@dataclass(frozen=True, kw_only=True)
class LibvirtHost:
    """Resources on a libvirt host (networks, pools, images); ``namespace`` is the environment."""

    namespace: str
    provider: pulumi.ProviderResource | None = None
    domain_type: str = "kvm"
    cpu_mode: str | None = None
    """libvirt CPU mode of the VMs (``host-passthrough`` under KVM); None: QEMU's default."""
    autostart: bool = True
    """Whether the VMs start when the host does."""

    def data_name(self, name: str) -> str:
        """The host's name for data called ``name`` in the spec (data disks)."""
        return names.data_name(self.namespace, name)

    def opts(self, parent: pulumi.Resource, **extra: Any) -> pulumi.ResourceOptions:
        """Child options: parented to ``parent``, on this placement's provider."""
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, **extra)


@dataclass(frozen=True, kw_only=True)
class GuestImageIds:
    """A guest image uploaded into a pool: root disk, kernel and initrd volume ids."""

    disk: pulumi.Input[str]
    kernel: pulumi.Input[str]
    initrd: pulumi.Input[str]
    """Also what the seed uploads wait for (see VirtualMachine), whichever way the disk boots."""
    cmdline: str
    bootloader: bool = False
    """The disk boots with its own bootloader (BIOS from a partitioned disk, like a cloud
    image): the domain gets no kernel, initrd or command line."""


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
    ssh_authorized_keys: Sequence[str] = ()
    """Keys every VM placed here accepts (the environment's)."""
    seed_dir: str = field(
        default_factory=lambda: str(Path(tempfile.gettempdir()) / "virtstack-seeds")
    )
    """Where cloud-init seed ISOs are built before their upload (they may hold secrets:
    each file is 0600).

    The provider's own cloud-init disk is not used: after its upload it reads the ISO back
    over a libvirt stream, and go-libvirt (digitalocean/go-libvirt#241) routes every reply
    of a connection through one goroutine that, holding the connection's callback lock,
    waits to hand a reply to its caller. A packet that arrives for a stream its caller has
    already left (as the end of that read can) blocks it for good, and with it every call
    on the connection. Plain uploads end with the server's last word, so none is late."""
    tier_access: Mapping[str, TierAccess] = field(default_factory=dict)
    """Each tier's addresses and clients, by the tier's component name."""
    seed_provider: pulumi.ProviderResource | None = None
    """Where seeds are uploaded: a libvirt connection of their own (None: the placement's
    provider), so a stuck upload, should one ever stick, holds up no other call."""

    def keys(self, *own: Sequence[str]) -> list[str]:
        """The placement's keys and a VM's own, each once."""
        return list(dict.fromkeys([*self.ssh_authorized_keys, *(k for ks in own for k in ks)]))

    def tier_networks(
        self, stack: str, tiers: Sequence[StackTier], parent: pulumi.Resource
    ) -> Mapping[str, pulumi.Input[str]]:
        """None of their own: a stack's VMs share the placement's network."""
        return {}

    def tier(
        self,
        name: str,
        tier: TierArgs,
        *,
        network: pulumi.Input[str] | None,
        client_networks: Sequence[pulumi.Input[str]],
        parent: pulumi.Resource,
    ) -> Tier:
        from virtstack_components.libvirt.tier import VmTier, VmTierArgs  # it imports this

        return VmTier(
            name, VmTierArgs(placement=self, tier=tier), pulumi.ResourceOptions(parent=parent)
        )
