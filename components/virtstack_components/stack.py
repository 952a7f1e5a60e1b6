"""ServiceStack: tiers wired front to back (web -> app -> db) on any engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import pulumi

from virtstack_components import names
from virtstack_components.compat import renamed_from
from virtstack_components.errors import ComponentError
from virtstack_components.tier import UPSTREAM_ENV, Tier, TierArgs


@dataclass(frozen=True, kw_only=True)
class StackTier:
    """A tier of a stack: what it runs, where its traffic goes and its network's CIDR."""

    name: str
    args: TierArgs
    upstream: str | None = None
    cidr: str | None = None


class TierBuilder(Protocol):
    """How one engine builds a stack's tiers (a placement implements this)."""

    def tier_networks(
        self, stack: str, tiers: Sequence[StackTier], parent: pulumi.Resource
    ) -> Mapping[str, pulumi.Input[str]]:
        """A network per tier where the engine isolates tiers that way ({} where it does not)."""
        ...

    def tier(
        self,
        name: str,
        tier: TierArgs,
        *,
        network: pulumi.Input[str] | None,
        client_networks: Sequence[pulumi.Input[str]],
        parent: pulumi.Resource,
    ) -> Tier:
        """Tier ``name``: its replicas and load balancer, a child of ``parent``."""
        ...


@dataclass(frozen=True, kw_only=True)
class ServiceStackArgs:
    placement: TierBuilder
    tiers: Sequence[StackTier]


class ServiceStack(pulumi.ComponentResource):
    """Tiers wired in order, each reachable only from the tier that sends it traffic."""

    tiers: dict[str, Tier]
    urls: pulumi.Output[dict[str, str]]
    """Published URL of every front tier."""

    def __init__(
        self, name: str, args: ServiceStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "virtstack:stack:ServiceStack",
            name,
            None,
            renamed_from("virtstack:service:ServiceStack", opts),
        )
        networks = args.placement.tier_networks(name, args.tiers, self)
        self.tiers = {}
        # Upstream tiers first: a tier's replicas are told its upstream's address.
        for tier in upstream_first(args.tiers):
            env = dict(tier.args.env)
            if tier.upstream is not None:
                env[UPSTREAM_ENV] = pulumi.Output.concat(
                    "http://", self.tiers[tier.upstream].endpoint
                )
            self.tiers[tier.name] = args.placement.tier(
                names.tier_name(name, tier.name),
                replace(tier.args, env=env),
                network=networks.get(tier.name),
                client_networks=[
                    networks[c.name]
                    for c in args.tiers
                    if c.upstream == tier.name and c.name in networks
                ],
                parent=self,
            )
        fronts = {t.name: self.tiers[t.name].url for t in args.tiers if t.args.publish}
        self.urls = pulumi.Output.all(**fronts) if fronts else pulumi.Output.from_input({})
        self.register_outputs({"urls": self.urls})


def upstream_first(tiers: Sequence[StackTier]) -> list[StackTier]:
    """The tiers ordered so that every tier comes after the tier it sends traffic to."""
    done: list[StackTier] = []
    pending = list(tiers)
    known = {t.name for t in tiers}
    while pending:
        placed = {d.name for d in done}
        ready = [
            t
            for t in pending
            if t.upstream is None or t.upstream not in known or t.upstream in placed
        ]
        if not ready:
            raise ComponentError(f"tiers {[t.name for t in pending]} send traffic in a loop")
        done.extend(ready)
        pending = [t for t in pending if t not in ready]
    return done
