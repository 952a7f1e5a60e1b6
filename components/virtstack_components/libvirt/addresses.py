"""Where each VM sits on its libvirt network: addresses known before any VM boots.

Computed from the network's CIDR alone (a clone on another CIDR gets the same layout
there). The gateway is the network's first address (libvirt's bridge). Tier ``t`` owns the
aligned block ``t + 1`` of ``block`` addresses: its load balancer first, then its replica
slots, so a tier's addresses move only when a block outgrows its size. Other VMs (the
registry, plain VMs, container hosts) count down from the network's last address, so adding
a tier does not move them. Imports no Pulumi: the spec check uses it too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

MIN_BLOCK = 16
"""Addresses per tier at least: the load balancer and up to 15 replica slots."""


class AddressError(ValueError):
    """The network is too small for what is placed on it."""


@dataclass(frozen=True, kw_only=True)
class TierAddresses:
    """One tier's load balancer and replica slots (slot ``i`` is replica ``i``'s)."""

    lb: str
    slots: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class NetworkPlan:
    """Every address handed out on one network."""

    gateway: str
    tiers: tuple[TierAddresses, ...]
    others: tuple[str, ...]


def block_size(slots: Sequence[int]) -> int:
    """The smallest power of two, at least :data:`MIN_BLOCK`, that holds a load balancer
    and the most slots any tier needs."""
    size = MIN_BLOCK
    while size < 1 + max(slots, default=0):
        size *= 2
    return size


def plan_network(cidr: str, tier_slots: Sequence[int], others: int) -> NetworkPlan:
    """Addresses on network ``cidr`` for tiers with ``tier_slots`` replica slots each and
    ``others`` further VMs; :class:`AddressError` when they do not fit."""
    net = ipaddress.IPv4Network(cidr)
    block = block_size(tier_slots)
    # Offsets 0 and num_addresses - 1 are the network and broadcast addresses, 1 the gateway.
    first_free = block * (len(tier_slots) + 1) if tier_slots else 2
    last_other = net.num_addresses - 2
    if last_other - others + 1 < first_free:
        need = first_free + others + 1
        raise AddressError(
            f"{cidr} has {net.num_addresses} addresses; its {len(tier_slots)} tier(s) "
            f"({block} addresses each, the first block kept for the gateway) and {others} "
            f"other VM(s) need {need} (a /{32 - (need - 1).bit_length()} or larger)"
        )

    def at(offset: int) -> str:
        return str(net.network_address + offset)

    tiers = tuple(
        TierAddresses(
            lb=at(block * (t + 1)),
            slots=tuple(at(block * (t + 1) + 1 + i) for i in range(slots)),
        )
        for t, slots in enumerate(tier_slots)
    )
    return NetworkPlan(
        gateway=at(1), tiers=tiers, others=tuple(at(last_other - k) for k in range(others))
    )
