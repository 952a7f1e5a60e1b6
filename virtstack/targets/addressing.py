"""Every VM's address, planned from its network's CIDR before anything is made.

The layout is virtstack_components.libvirt.addresses'; this module says what sits on each
network of a spec: its tiers (all on one network, in spec order) with their replica slots,
then the registry, the plain VMs and the container hosts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtstack_components.libvirt.addresses import AddressError, NetworkPlan, plan_network
from virtstack_components.names import MIN_SLOTS

from virtstack.configkeys import key

if TYPE_CHECKING:
    from virtstack_components.libvirt.firewall import TierAccess

    from virtstack.spec import EnvironmentSpec, TierSpec

Other = tuple[str, str, int]
"""A VM that is not a tier's: (spec section, item name, index)."""


def slots(tier: TierSpec) -> int:
    """Replica slots a tier's load balancer lists: as many as scaling may ask for, and
    at least MIN_SLOTS, so scaling within them leaves the load balancer as it is."""
    return max(MIN_SLOTS, tier.replicas, tier.scaling.max if tier.scaling else 0)


def others(spec: EnvironmentSpec, network: str) -> list[Other]:
    """The VMs on ``network`` that are not a tier's, in the order they get addresses."""
    first = spec.networks[0].name
    found: list[Other] = [("registry", "registry", 0)] if spec.registry.enabled else []
    for section, items in (("vms", spec.vms), ("container_hosts", spec.container_hosts)):
        found += [
            (section, item.name, i)
            for item in items
            if (item.network or first) == network
            for i in range(item.count)
        ]
    return [o for o in found if o[0] != "registry" or network == first]


def plans(spec: EnvironmentSpec) -> tuple[dict[str, NetworkPlan], list[str]]:
    """Each network's plan, and one problem per network too small for its VMs."""
    first = spec.networks[0].name if spec.networks else None
    found, problems = {}, []
    for i, net in enumerate(spec.networks):
        tiers = [slots(t) for t in spec.tiers if (t.network or first) == net.name]
        try:
            found[net.name] = plan_network(str(net.cidr), tiers, len(others(spec, net.name)))
        except AddressError as exc:
            problems.append(f"{key('networks', i, 'cidr')}: too small: {exc}")
    return found, problems


def address_of(spec: EnvironmentSpec, plan: NetworkPlan, network: str, other: Other) -> str:
    """The planned address of a VM that is not a tier's."""
    return plan.others[others(spec, network).index(other)]


def tier_access(
    spec: EnvironmentSpec, env: str, plan: NetworkPlan, publish_net: str
) -> dict[str, TierAccess]:
    """Each tier's addresses and who may reach its load balancer, by component name:
    the replica slots of the tiers that feed it; the host (and ``publish_net``, where
    published ports arrive) for a front tier."""
    from virtstack_components import names
    from virtstack_components.libvirt.firewall import TierAccess

    by_name = {t.name: plan.tiers[i] for i, t in enumerate(spec.tiers)}
    fronts = {t.name for t in spec.front_tiers()}
    access = {}
    for t in spec.tiers:
        clients = [a for c in spec.tiers if c.upstream == t.name for a in by_name[c.name].slots]
        if t.name in fronts:
            clients.append(plan.gateway)
        if t.publish:
            clients.append(publish_net)
        access[names.tier_name(env, t.name)] = TierAccess(
            addresses=by_name[t.name], gateway=plan.gateway, clients=clients
        )
    return access
