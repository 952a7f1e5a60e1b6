"""Threshold scaling decisions, from HAProxy's own counters."""

from __future__ import annotations

import pytest

from virtstack.autoscale import backend_requests, decide, desired_replicas, requests_per_minute
from virtstack.errors import EngineCommandError
from virtstack.spec import ScalingSpec, parse_spec

RULE = ScalingSpec(min=2, max=6, requests_per_replica_per_minute=500)


@pytest.mark.parametrize(
    ("current", "load", "desired"),
    [
        (2, 501, 3),  # above the threshold: one more
        (6, 9000, 6),  # never above max
        (3, 500, 3),  # at the threshold: stay
        (3, 240, 3),  # removing one would make it 360 per replica: not under half, stay
        (4, 120, 3),  # well below: one fewer (160 per replica after)
        (2, 0, 2),  # never below min
        (9, 0, 6),  # outside the bounds (edited by hand): back within them
    ],
)
def test_desired_replicas(current: int, load: float, desired: int) -> None:
    assert desired_replicas(current, load, RULE) == desired


def stats(backend: str, requests: int) -> str:
    return (
        "# pxname,svname,req_tot,type\n"
        f"fe_x,FRONTEND,{requests},0\n"
        f"{backend},dev-web-slot1,0,2\n"
        f"{backend},BACKEND,{requests},1\n"
    )


def test_backend_requests_reads_the_backend_row() -> None:
    assert backend_requests(stats("be_dev-web", 1234), "be_dev-web") == 1234
    with pytest.raises(EngineCommandError, match="no backend 'be_other'"):
        backend_requests(stats("be_dev-web", 1), "be_other")


def test_requests_per_minute_from_two_readings() -> None:
    readings = iter([stats("b", 100), stats("b", 400)])
    slept: list[float] = []
    rate = requests_per_minute(lambda: next(readings), "b", 30, sleep=slept.append)
    assert slept == [30]
    assert rate == 600.0


def test_decide_scales_only_tiers_with_a_threshold() -> None:
    spec = parse_spec(
        {
            "virtstack:target": "container",
            "virtstack:tiers": [
                {
                    "name": "web",
                    "image": "i",
                    "replicas": 2,
                    "upstream": "db",
                    "scaling": {"min": 2, "max": 4, "requests_per_replica_per_minute": 500},
                },
                {"name": "db", "image": "i"},
            ],
        }
    )
    counts = {"web": iter([0, 1500])}
    read = lambda tier: stats(f"be_dev-{tier}", next(counts[tier]))  # noqa: E731
    [decision] = decide(spec, "dev", read, 60, sleep=lambda s: None)
    assert decision.tier == "web"
    assert decision.per_replica_per_minute == 750.0
    assert decision.desired == 3
    assert decision.changes
