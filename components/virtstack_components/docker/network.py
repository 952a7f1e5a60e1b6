"""DockerNetwork: a user-defined network on a Docker engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_docker as docker

from virtstack_components import names
from virtstack_components.compat import renamed_from

if TYPE_CHECKING:
    from virtstack_components.docker.placement import DockerPlacement


@dataclass(frozen=True, kw_only=True)
class DockerNetworkArgs:
    placement: DockerPlacement
    cidr: str | None = None
    """IPv4 subnet; Docker picks one when unset."""
    internal: bool = False
    """No route out of the network."""


class DockerNetwork(pulumi.ComponentResource):
    """One Docker network, named like the component and labelled with its namespace."""

    network_id: pulumi.Output[str]
    engine_name: pulumi.Output[str]
    """The name the engine knows the network by."""

    def __init__(
        self, name: str, args: DockerNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "virtstack:docker:DockerNetwork",
            name,
            None,
            renamed_from("virtstack:network:Network", opts),
        )
        net = docker_network(f"{name}-docker", name, args, opts=args.placement.opts(self))
        self.network_id = net.id
        self.engine_name = net.name
        self.register_outputs({"network_id": self.network_id, "engine_name": self.engine_name})


def docker_network(
    resource_name: str, name: str, args: DockerNetworkArgs, *, opts: pulumi.ResourceOptions
) -> docker.Network:
    """The engine's network ``name``, labelled with the placement's namespace."""
    return docker.Network(
        resource_name,
        name=name,
        internal=args.internal,
        ipam_configs=[docker.NetworkIpamConfigArgs(subnet=args.cidr)] if args.cidr else None,
        labels=[
            docker.NetworkLabelArgs(label=names.NAMESPACE_LABEL, value=args.placement.namespace)
        ],
        opts=opts,
    )
