"""SwarmNetwork: an attachable overlay network spanning every node of a Swarm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_docker as docker

from virtstack_components import names

if TYPE_CHECKING:
    from virtstack_components.swarm.placement import SwarmPlacement


@dataclass(frozen=True, kw_only=True)
class SwarmNetworkArgs:
    placement: SwarmPlacement
    cidr: str | None = None
    """IPv4 subnet; Docker picks one when unset."""
    internal: bool = False
    """No route out of the network (every tier's but the front one's)."""


class SwarmNetwork(pulumi.ComponentResource):
    """One overlay network, named like the component and labelled with its namespace."""

    network_id: pulumi.Output[str]
    """The engine's id of the network: what a service attaches to (the provider deprecates
    attaching by name, and warns on every run that does)."""

    def __init__(
        self, name: str, args: SwarmNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("virtstack:swarm:SwarmNetwork", name, None, opts)
        p = args.placement
        net = docker.Network(
            f"{name}-overlay",
            name=name,
            driver="overlay",
            # Attachable: tests and operators can join a plain container to look inside.
            attachable=True,
            internal=args.internal,
            ipam_configs=[docker.NetworkIpamConfigArgs(subnet=args.cidr)] if args.cidr else None,
            labels=[docker.NetworkLabelArgs(label=names.NAMESPACE_LABEL, value=p.namespace)],
            opts=p.opts(self),
        )
        self.network_id = net.id
        self.register_outputs({"network_id": self.network_id})
