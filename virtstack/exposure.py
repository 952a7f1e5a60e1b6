"""What an environment exposes beyond this machine, checked before anything is made.

Publishing on every interface, or a registry anyone on the network can push to, is each
sometimes what a user wants: a warning. Both at once hands the network an unauthenticated
registry next to a service that pulls from it: refused.
"""

from __future__ import annotations

import ipaddress

from virtstack.configkeys import key
from virtstack.spec import EnvironmentSpec


def _public(address: ipaddress.IPv4Address) -> bool:
    return not address.is_loopback


def warnings(spec: EnvironmentSpec) -> list[str]:
    """A line for each thing the environment exposes beyond loopback."""
    found = [
        f"{key('tiers', i, 'publish_address')}: {t.publish_address} publishes {t.name} on every "
        f"network this host is on"
        if t.publish_address.is_unspecified
        else f"{key('tiers', i, 'publish_address')}: {t.name} is published on "
        f"{t.publish_address}, beyond this host"
        for i, t in enumerate(spec.tiers)
        if t.publish is not None and _public(t.publish_address)
    ]
    reg = spec.registry
    if reg.enabled and not reg.auth and _public(reg.address):
        found.append(
            f"{key('registry', 'auth')}: the registry on {reg.address}:{reg.port} takes pushes "
            "from anyone who can reach it"
        )
    return found


def problems(spec: EnvironmentSpec) -> list[str]:
    """Exposure virtstack refuses: a public unauthenticated registry beside a public tier."""
    reg = spec.registry
    open_registry = reg.enabled and not reg.auth and _public(reg.address)
    published = [t for t in spec.tiers if t.publish is not None and _public(t.publish_address)]
    if open_registry and published:
        return [
            f"{key('registry', 'auth')}: an unauthenticated registry on {reg.address} beside "
            f"{published[0].name} published on {published[0].publish_address}: anyone on the "
            "network could replace what it serves; turn auth on or keep one of them on loopback"
        ]
    return []
