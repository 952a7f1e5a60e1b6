"""LibvirtNetwork: a NAT (or isolated) network with DHCP and DNS on a libvirt host."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_libvirt as libvirt

from virtstack_components.compat import renamed_from
from virtstack_components.libvirt.placement import LibvirtHost


@dataclass(frozen=True, kw_only=True)
class LibvirtNetworkArgs:
    host: LibvirtHost
    cidr: str
    """IPv4 subnet of the network."""
    internal: bool = False
    """No route out of the network (libvirt's isolated mode)."""


class LibvirtNetwork(pulumi.ComponentResource):
    """One libvirt network, named like the component."""

    network_id: pulumi.Output[str]
    """The network's UUID."""
    engine_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: LibvirtNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "virtstack:libvirt:LibvirtNetwork",
            name,
            None,
            renamed_from("virtstack:network:Network", opts),
        )
        net = libvirt.Network(
            f"{name}-libvirt",
            name=name,
            mode="none" if args.internal else "nat",
            addresses=[args.cidr],
            autostart=True,
            dhcp=libvirt.NetworkDhcpArgs(enabled=True),
            dns=libvirt.NetworkDnsArgs(enabled=True, local_only=True),
            opts=args.host.opts(self),
        )
        self.network_id = net.id
        self.engine_name = net.name
        self.register_outputs({"network_id": self.network_id, "engine_name": self.engine_name})
