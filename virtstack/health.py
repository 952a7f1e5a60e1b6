"""Load-balancer health: every tier's backends as its HAProxy sees them, on any engine."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from virtstack_components import names

from virtstack.engines.base import EngineAdapter, ServerHealth, TierHealth
from virtstack.errors import VirtstackError
from virtstack.spec import EnvironmentSpec, TierSpec

# HAProxy's CSV: `type` 2 is a server row; unresolved server-template slots sit in MAINT.
_SERVER_ROW = "2"
_UNRESOLVED = "MAINT (resolution)"


def parse_stats(text: str) -> tuple[list[ServerHealth], int]:
    """The server rows of HAProxy's stats CSV, and how many slots are empty."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("# ")))
    servers: list[ServerHealth] = []
    unused = 0
    for row in reader:
        if row.get("type") != _SERVER_ROW:
            continue
        status = (row.get("status") or "").strip()
        if status == _UNRESOLVED:
            unused += 1
            continue
        result = " ".join(filter(None, (row.get("check_status"), row.get("check_code"))))
        why = ": ".join(filter(None, (row.get("check_desc"), row.get("last_chk"))))
        servers.append(
            ServerHealth(
                name=row.get("svname") or "?",
                address=(row.get("addr") or "").strip(),
                status=status or "?",
                check=f"{result} ({why})" if result and why else result or why,
            )
        )
    return servers, unused


def lb_health(
    adapter: EngineAdapter, spec: EnvironmentSpec, env: str, uri: str, outputs: Mapping[str, Any]
) -> list[TierHealth]:
    """Every tier's load-balancer backends, live, read through the engine's adapter.

    The load balancers are asked at once: each read is an engine round trip.
    """

    def one(tier: TierSpec) -> TierHealth:
        lb = names.lb_name(names.tier_name(env, tier.name))
        try:
            text = adapter.lb_stats(spec, env, uri, outputs, tier.name)
        except (VirtstackError, OSError) as exc:
            return TierHealth(tier=tier.name, lb=lb, servers=[], error=str(exc))
        servers, unused = parse_stats(text)
        # A VM tier's HAProxy lists every replica slot by name, made or not: only the
        # declared replicas are shown; the other slots count as empty.
        full = names.tier_name(env, tier.name)
        empty = {names.replica_name(full, i) for i in range(tier.replicas, len(servers))}
        shown = [s for s in servers if s.name not in empty]
        unused += len(servers) - len(shown)
        return TierHealth(tier=tier.name, lb=lb, servers=shown, unused_slots=unused)

    if not spec.tiers:
        return []
    with ThreadPoolExecutor(max_workers=len(spec.tiers)) as pool:
        return list(pool.map(one, spec.tiers))
