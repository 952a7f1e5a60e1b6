"""Host firewalls of tier VMs: a tier accepts traffic only from the tier that feeds it.

Every tier VM shares one flat libvirt network, so the rules live in each guest
(iptables-restore, loaded by a unit before the network comes up).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from virtstack_components import names
from virtstack_components.libvirt.addresses import TierAddresses
from virtstack_components.templating import render


@dataclass(frozen=True, kw_only=True)
class TierAccess:
    """Where a tier's VMs sit and who may reach its load balancer."""

    addresses: TierAddresses
    gateway: str
    """The libvirt host on the network: SSH and ping come from here."""
    clients: Sequence[str]
    """Sources (addresses or CIDRs) allowed to the load balancer's port: the replica slots
    of the tiers that feed this one; the gateway (and the published port's user-mode net)
    for a front tier."""


def rules(gateway: str, allow: Sequence[tuple[str, int]]) -> dict[str, str]:
    """Rendered iptables (``v4``) and ip6tables (``v6``) rules: SSH and ping from
    ``gateway``, each (source, TCP port) of ``allow``, answers; nothing else comes in."""
    checked = [
        {"source": str(ipaddress.IPv4Network(source, strict=False)), "port": _port(port)}
        for source, port in allow
    ]
    return {
        "v4": render(
            "firewall/rules.v4.j2", gateway=str(ipaddress.IPv4Address(gateway)), allow=checked
        ),
        "v6": render("firewall/rules.v6.j2"),
    }


def replica_rules(access: TierAccess, port: int) -> dict[str, str]:
    """A replica serves ``port`` to its own load balancer only (health checks too)."""
    return rules(access.gateway, [(access.addresses.lb, port)])


def lb_rules(access: TierAccess) -> dict[str, str]:
    """A load balancer serves its port to the tier's clients only."""
    return rules(access.gateway, [(c, names.LB_PORT) for c in access.clients])


def _port(port: int) -> int:
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return port
