"""VM addresses planned from a network's CIDR, and the tiers' clients on the VM targets."""

from __future__ import annotations

import pytest
from virtstack_components.libvirt.addresses import AddressError, plan_network

from virtstack.spec import parse_spec
from virtstack.targets import addressing


def test_tiers_get_aligned_blocks_and_other_vms_count_down_from_the_top() -> None:
    plan = plan_network("10.7.0.0/24", [10, 3], 2)
    assert plan.gateway == "10.7.0.1"
    assert [t.lb for t in plan.tiers] == ["10.7.0.16", "10.7.0.32"]
    assert plan.tiers[0].slots == tuple(f"10.7.0.{17 + i}" for i in range(10))
    assert plan.tiers[1].slots == ("10.7.0.33", "10.7.0.34", "10.7.0.35")
    assert plan.others == ("10.7.0.254", "10.7.0.253")


def test_the_plan_follows_the_cidr_so_a_clone_on_another_network_keeps_its_layout() -> None:
    one, other = plan_network("10.7.0.0/24", [10], 1), plan_network("172.30.8.0/24", [10], 1)
    assert one.tiers[0].lb.rsplit(".", 1)[1] == other.tiers[0].lb.rsplit(".", 1)[1] == "16"
    assert other.others == ("172.30.8.254",)


def test_a_tier_with_more_slots_than_a_block_widens_every_block() -> None:
    plan = plan_network("10.7.0.0/24", [20, 1], 0)
    assert [t.lb for t in plan.tiers] == ["10.7.0.32", "10.7.0.64"]


def test_a_network_too_small_is_refused() -> None:
    with pytest.raises(AddressError, match=r"10.7.0.0/28 has 16 addresses; .* need 33 \(a /26"):
        plan_network("10.7.0.0/28", [10], 0)
    plan_network("10.7.0.0/29", [], 5)  # gateway, five VMs, broadcast: just fits
    with pytest.raises(AddressError):
        plan_network("10.7.0.0/29", [], 6)


def spec(**extra: object) -> dict[str, object]:
    tier = {"image": "demo", "command": ["serve"]}
    return {
        "virtstack:target": "hostos",
        "virtstack:networks": [{"name": "a", "cidr": "10.7.0.0/24"}],
        "virtstack:registry": {"enabled": True},
        "virtstack:tiers": [
            {**tier, "name": "web", "upstream": "app", "publish": 8080, "replicas": 2},
            {**tier, "name": "app", "upstream": "db", "scaling": {"min": 1, "max": 12}},
            {**tier, "name": "db"},
        ],
    } | {f"virtstack:{k}": v for k, v in extra.items()}


def test_each_tier_is_reached_only_from_the_tier_in_front_of_it() -> None:
    parsed = parse_spec(spec())
    plans, problems = addressing.plans(parsed)
    assert problems == []
    access = addressing.tier_access(parsed, "lab", plans["a"], "10.0.2.0/24")
    web, app, db = (access[f"lab-{t}"] for t in ("web", "app", "db"))
    # app scales to 12: its load balancer lists 12 slots, every block grows to 16.
    assert len(web.addresses.slots) == 10
    assert len(app.addresses.slots) == 12
    assert web.clients == ["10.7.0.1", "10.0.2.0/24"]
    assert app.clients == list(web.addresses.slots)
    assert db.clients == list(app.addresses.slots)
    assert {a.gateway for a in (web, app, db)} == {"10.7.0.1"}


def test_plain_vms_and_hosts_follow_the_registry_down_from_the_top() -> None:
    parsed = parse_spec(
        spec(
            networks=[{"name": "a", "cidr": "10.7.0.0/24"}, {"name": "b", "cidr": "10.8.0.0/24"}],
            vms=[{"name": "tools", "count": 2}, {"name": "far", "network": "b"}],
            container_hosts=[{"name": "docker"}],
        )
    )
    plans, _ = addressing.plans(parsed)
    at = {
        other: addressing.address_of(parsed, plans[net], net, other)
        for net in ("a", "b")
        for other in addressing.others(parsed, net)
    }
    assert at == {
        ("registry", "registry", 0): "10.7.0.254",
        ("vms", "tools", 0): "10.7.0.253",
        ("vms", "tools", 1): "10.7.0.252",
        ("container_hosts", "docker", 0): "10.7.0.251",
        ("vms", "far", 0): "10.8.0.254",
    }
