"""Load-balancer health from HAProxy's stats, read through whatever adapter the engine has."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from virtstack import health
from virtstack.errors import EngineCommandError
from virtstack.spec import parse_spec

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
# CSV recorded from a real HAProxy 2.6 running the rendered configs.
STATIC = (FIXTURES / "haproxy-stats-static.csv").read_text()
DNS = (FIXTURES / "haproxy-stats-dns.csv").read_text()


def spec_of(env: str):
    config = yaml.safe_load((REPO / "stacks" / f"Pulumi.{env}.yaml").read_text())["config"]
    return parse_spec(config)


def test_stats_of_listed_servers() -> None:
    servers, unused = health.parse_stats(STATIC)
    assert unused == 0
    assert [(s.name, s.status, s.up) for s in servers] == [
        ("dev-web-0", "UP", True),
        ("dev-web-1", "DOWN", False),
    ]
    assert servers[0].check == "L7OK 200 (Layer7 check passed)"
    assert servers[1].check == "L4CON (Layer4 connection problem: Connection refused)"


def test_stats_of_dns_slots_nobody_answers() -> None:
    servers, unused = health.parse_stats(DNS)
    assert servers == []
    assert unused == 10


class StatsAdapter:
    """An adapter whose load balancers answer from a table (or fail, naming the engine)."""

    kind = "test"
    parallel = None

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str, str]] = []

    def lb_stats(self, spec: Any, env: str, uri: str, outputs: Mapping[str, Any], tier: str) -> str:
        self.asked.append((env, uri, tier))
        if tier not in self.answers:
            raise EngineCommandError(f"{uri}: No such container: {env}-{tier}-lb")
        return self.answers[tier]


def test_every_tier_is_asked_through_the_adapter() -> None:
    adapter = StatsAdapter({"web": STATIC, "app": STATIC, "db": DNS})
    tiers = health.lb_health(adapter, spec_of("dev"), "dev", "unix:///d.sock", {})  # type: ignore[arg-type]
    assert adapter.asked == [("dev", "unix:///d.sock", t) for t in ("web", "app", "db")]
    assert [(t.tier, t.lb, len(t.servers), t.unused_slots) for t in tiers] == [
        ("web", "dev-web-lb", 2, 0),
        ("app", "dev-app-lb", 2, 0),
        ("db", "dev-db-lb", 0, 10),
    ]


def test_a_vm_tier_shows_its_declared_replicas_and_counts_the_other_slots_empty() -> None:
    dev = spec_of("dev")
    # web with one replica: its HAProxy lists slots dev-web-0 and dev-web-1.
    spec = dev.model_copy(update={"tiers": [dev.tiers[0].model_copy(update={"replicas": 1})]})
    [web, *_] = health.lb_health(StatsAdapter({"web": STATIC}), spec, "dev", "u", {})  # type: ignore[arg-type]
    assert [s.name for s in web.servers] == ["dev-web-0"]
    assert web.unused_slots == 1


def test_an_unreadable_lb_is_reported_not_raised() -> None:
    adapter = StatsAdapter({"app": STATIC})
    tiers = health.lb_health(adapter, spec_of("dev"), "dev", "unix:///d.sock", {})  # type: ignore[arg-type]
    assert tiers[0].error == "unix:///d.sock: No such container: dev-web-lb"
    assert tiers[1].error is None
