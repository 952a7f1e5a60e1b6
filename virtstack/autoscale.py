"""Threshold scaling: more requests per replica per minute than a tier's rule allows adds a
replica, under half of it removes one, within the rule's min..max.

The load is read from the tier's own HAProxy (its backend's request counter, sampled over
a window), the decision is a plain function, and the change goes through `scale`, so the
new count is written to the stack file like any other edit.
"""

from __future__ import annotations

import csv
import functools
import io
import time
from collections.abc import Callable
from dataclasses import dataclass

from virtstack.errors import EngineCommandError
from virtstack.spec import EnvironmentSpec, ScalingSpec

# HAProxy's CSV: `type` 1 is a backend row; `req_tot` counts its HTTP requests.
_BACKEND_ROW = "1"


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What the rule says about one tier."""

    tier: str
    replicas: int
    desired: int
    per_replica_per_minute: float
    threshold: int

    @property
    def changes(self) -> bool:
        return self.desired != self.replicas

    def __str__(self) -> str:
        verdict = f"→ {self.desired}" if self.changes else "stays"
        return (
            f"{self.tier}: {self.per_replica_per_minute:.0f} requests/replica/min "
            f"(threshold {self.threshold}), {self.replicas} replicas {verdict}"
        )


def desired_replicas(current: int, per_replica_per_minute: float, rule: ScalingSpec) -> int:
    """One step towards the rule: +1 above the threshold, -1 well below it, within bounds."""
    bounded = min(max(current, rule.min), rule.max)
    threshold = rule.requests_per_replica_per_minute
    if threshold is None or bounded != current:
        return bounded
    if per_replica_per_minute > threshold:
        return min(current + 1, rule.max)
    # Remove one only when the others would still stay under the threshold (no flapping).
    if current > rule.min and per_replica_per_minute * current / (current - 1) < threshold / 2:
        return current - 1
    return current


def backend_requests(stats_csv: str, backend: str) -> int:
    """The request counter of ``backend`` in HAProxy's stats CSV."""
    for row in csv.DictReader(io.StringIO(stats_csv.removeprefix("# "))):
        if row.get("type") == _BACKEND_ROW and row.get("pxname") == backend:
            return int(row.get("req_tot") or 0)
    raise EngineCommandError(f"HAProxy stats have no backend {backend!r}")


def requests_per_minute(
    read: Callable[[], str],
    backend: str,
    window: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Requests per minute through ``backend``, from two readings ``window`` seconds apart."""
    before = backend_requests(read(), backend)
    sleep(window)
    after = backend_requests(read(), backend)
    return max(after - before, 0) * 60.0 / window


def decide(
    spec: EnvironmentSpec,
    env: str,
    read_stats: Callable[[str], str],
    window: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Decision]:
    """A decision for every tier with a threshold rule (``read_stats(tier)``: its LB's CSV)."""
    decisions = []
    for tier in spec.tiers:
        rule = tier.scaling
        if rule is None or rule.requests_per_replica_per_minute is None:
            continue
        rate = requests_per_minute(
            functools.partial(read_stats, tier.name),
            f"be_{env}-{tier.name}",
            window,
            sleep=sleep,
        )
        per_replica = rate / max(tier.replicas, 1)
        decisions.append(
            Decision(
                tier=tier.name,
                replicas=tier.replicas,
                desired=desired_replicas(tier.replicas, per_replica, rule),
                per_replica_per_minute=per_replica,
                threshold=rule.requests_per_replica_per_minute,
            )
        )
    return decisions
