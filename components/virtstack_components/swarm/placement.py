"""Where Swarm components go: a manager's provider, a namespace, the LB image, pull auth."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker

from virtstack_components import names
from virtstack_components.stack import StackTier
from virtstack_components.swarm.network import SwarmNetwork, SwarmNetworkArgs
from virtstack_components.tier import Tier, TierArgs

MANAGER = "node.role==manager"
"""Constraint of the services that publish a port: the manager's address is the public one."""


@dataclass(frozen=True, kw_only=True)
class SwarmPlacement:
    """Services on one Swarm, declared through a manager; ``namespace`` labels them all."""

    namespace: str
    provider: pulumi.ProviderResource | None = None
    lb_image: pulumi.Input[str] = ""
    """An image with HAProxy and busybox for the tiers' load balancers."""
    public_address: str = "127.0.0.1"
    """The manager's node address: published ports (host mode) answer there."""
    auth: docker.ServiceAuthArgs | None = None
    """Registry credentials every node pulls the services' images with."""

    def opts(self, parent: pulumi.Resource, **extra: Any) -> pulumi.ResourceOptions:
        """Child options: parented to ``parent``, on this placement's provider."""
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, **extra)

    def labels(self, **extra: str) -> list[docker.ServiceLabelArgs]:
        """Service labels: the namespace plus ``extra`` (keys with ``_`` written as ``.``)."""
        found = {names.NAMESPACE_LABEL: self.namespace} | {
            f"virtstack.{k}": v for k, v in extra.items()
        }
        return [docker.ServiceLabelArgs(label=k, value=v) for k, v in found.items()]

    def tier_networks(
        self, stack: str, tiers: Sequence[StackTier], parent: pulumi.Resource
    ) -> Mapping[str, pulumi.Input[str]]:
        """An overlay network per tier; only a front tier's has a route out."""
        fed = {t.upstream for t in tiers}
        return {
            t.name: SwarmNetwork(
                f"{stack}-{t.name}-net",
                SwarmNetworkArgs(placement=self, cidr=t.cidr, internal=t.name in fed),
                opts=pulumi.ResourceOptions(parent=parent),
            ).network_id
            for t in tiers
        }

    def tier(
        self,
        name: str,
        tier: TierArgs,
        *,
        network: pulumi.Input[str] | None,
        client_networks: Sequence[pulumi.Input[str]],
        parent: pulumi.Resource,
    ) -> Tier:
        from virtstack_components.swarm.tier import SwarmTier, SwarmTierArgs

        return SwarmTier(
            name,
            SwarmTierArgs(
                placement=self,
                tier=tier,
                network=network or "",
                client_networks=client_networks,
            ),
            opts=pulumi.ResourceOptions(parent=parent),
        )
