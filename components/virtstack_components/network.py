"""Network: a Docker network or a libvirt NAT network."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_libvirt as libvirt

from virtstack_components.errors import ComponentError
from virtstack_components.placement import DockerPlacement, LibvirtHost


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    placement: DockerPlacement | LibvirtHost
    cidr: str | None = None
    """IPv4 subnet; Docker picks one when unset, libvirt needs one."""
    internal: bool = False
    """No route out of the network (Docker ``internal``, libvirt isolated mode)."""


class Network(pulumi.ComponentResource):
    """One network on the placement's engine, named like the component."""

    network_id: pulumi.Output[str]
    """Docker network id or libvirt network UUID."""
    engine_name: pulumi.Output[str]
    """The name the engine knows the network by."""

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("virtstack:network:Network", name, None, opts)
        placement = args.placement
        if isinstance(placement, DockerPlacement):
            net = docker.Network(
                f"{name}-docker",
                name=name,
                internal=args.internal,
                ipam_configs=[docker.NetworkIpamConfigArgs(subnet=args.cidr)]
                if args.cidr
                else None,
                labels=[
                    docker.NetworkLabelArgs(label="virtstack.namespace", value=placement.namespace)
                ],
                opts=placement.opts(self),
            )
            self.network_id = net.id
            self.engine_name = net.name
        else:
            if args.cidr is None:
                raise ComponentError(f"network {name}: a libvirt network needs a CIDR")
            lnet = libvirt.Network(
                f"{name}-libvirt",
                name=name,
                mode="none" if args.internal else "nat",
                addresses=[args.cidr],
                autostart=True,
                dhcp=libvirt.NetworkDhcpArgs(enabled=True),
                dns=libvirt.NetworkDnsArgs(enabled=True, local_only=True),
                opts=placement.opts(self),
            )
            self.network_id = lnet.id
            self.engine_name = lnet.name
        self.register_outputs({"network_id": self.network_id, "engine_name": self.engine_name})
