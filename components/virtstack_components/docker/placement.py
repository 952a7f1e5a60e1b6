"""Where Docker components go: an engine (its provider), a namespace and the LB image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker

from virtstack_components import names
from virtstack_components.docker.network import DockerNetworkArgs, docker_network
from virtstack_components.docker.tier import ContainerTier, ContainerTierArgs
from virtstack_components.stack import StackTier
from virtstack_components.tier import Tier, TierArgs

WRAPPER_TYPE = "virtstack:docker:DockerNetwork"
"""The component each tier network used to sit in (its old URNs are aliases)."""


@dataclass(frozen=True, kw_only=True)
class DockerPlacement:
    """Resources on one Docker engine; ``namespace`` (the environment) labels them all."""

    namespace: str
    provider: pulumi.ProviderResource | None = None
    lb_image: pulumi.Input[str] = ""
    """An image with HAProxy and busybox for the tiers' load balancers."""

    def data_name(self, name: str) -> str:
        """The engine's name for data called ``name`` in the spec (volumes)."""
        return names.data_name(self.namespace, name)

    def data_labels(self, name: str) -> list[docker.VolumeLabelArgs]:
        """Labels of a data volume: whose it is and which of the spec's volumes it holds,
        so finding or deleting an environment's data never goes by name prefixes alone."""
        return [
            docker.VolumeLabelArgs(label=names.NAMESPACE_LABEL, value=self.namespace),
            docker.VolumeLabelArgs(label=names.DATA_LABEL, value=name),
        ]

    def opts(self, parent: pulumi.Resource, **extra: Any) -> pulumi.ResourceOptions:
        """Child options: parented to ``parent``, on this placement's provider."""
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, **extra)

    def tier_networks(
        self, stack: str, tiers: Sequence[StackTier], parent: pulumi.Resource
    ) -> Mapping[str, pulumi.Input[str]]:
        """A network per tier; only a front tier's has a route out (its published port).

        Each is the stack's own child: a component around one network did no work and cost
        the program a resource per tier. Stacks made when it had one keep their networks.
        """
        fed = {t.upstream for t in tiers}
        networks: dict[str, pulumi.Input[str]] = {}
        for t in tiers:
            name = f"{stack}-{t.name}-net"
            was = pulumi.Alias(
                name=f"{name}-docker",
                parent=pulumi.create_urn(name, WRAPPER_TYPE, parent=parent),
            )
            networks[t.name] = docker_network(
                name,
                name,
                DockerNetworkArgs(placement=self, cidr=t.cidr, internal=t.name in fed),
                opts=self.opts(parent, aliases=[was]),
            ).name
        return networks

    def tier(
        self,
        name: str,
        tier: TierArgs,
        *,
        network: pulumi.Input[str] | None,
        client_networks: Sequence[pulumi.Input[str]],
        parent: pulumi.Resource,
    ) -> Tier:
        return ContainerTier(
            name,
            ContainerTierArgs(
                placement=self,
                tier=tier,
                network=network or "",
                client_networks=client_networks,
            ),
            opts=pulumi.ResourceOptions(parent=parent),
        )
