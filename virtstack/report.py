"""What the CLI shows: targets, stack outputs and load-balancer health.

Tables for a terminal, and the same facts as JSON-ready data for ``--json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from virtstack.engines.base import Reachability, ReplicaPlacement, TierHealth
from virtstack.plan.events import SECRET

if TYPE_CHECKING:
    from virtstack.runner import StackOutput
    from virtstack.targets import Target

YES = "✓"
NO = "-"


def targets_table(targets: Sequence[Target], reach: Mapping[str, Reachability]) -> RenderableType:
    """Each target's engine and reachability, then the capability matrix.

    The matrix is read from ``Target.capabilities``: the same sets that validate specs.
    """
    from virtstack.targets import Capability  # imports Pulumi

    engines = Table(title="targets", title_justify="left", show_lines=True)
    engines.add_column("target", ratio=3)
    engines.add_column("engine and default URI", ratio=2, overflow="fold")
    engines.add_column("reachable from here", ratio=2)
    for t in targets:
        r = reach[t.name]
        engines.add_row(
            Text.assemble((t.name, "bold"), "\n", (t.summary, "dim")),
            Text.assemble(t.adapter.kind, "\n", (t.default_uri, "dim")),
            Text(f"{YES} {r.detail}", style="green")
            if r.reachable
            else Text(f"✗ {r.detail}", style="red"),
        )
    matrix = Table(title="capabilities", title_justify="left")
    matrix.add_column("capability")
    for t in targets:
        matrix.add_column(t.name, justify="center")
    for cap in Capability:
        matrix.add_row(
            cap.value,
            *(
                Text(YES, style="green") if cap in t.capabilities else Text(NO, style="dim")
                for t in targets
            ),
        )
    return Group(engines, Text(), matrix)


def targets_json(
    targets: Sequence[Target], reach: Mapping[str, Reachability]
) -> dict[str, dict[str, Any]]:
    """``targets --json``: each target's engine, capabilities and reachability."""
    return {
        t.name: {
            "summary": t.summary,
            "engine": t.adapter.kind,
            "default_uri": t.default_uri,
            "capabilities": sorted(c.value for c in t.capabilities),
            "reachable": reach[t.name].reachable,
            "detail": reach[t.name].detail,
        }
        for t in targets
    }


def status_json(
    outputs: Mapping[str, Any],
    reachable: bool,
    tiers: Sequence[TierHealth],
    replicas: Sequence[ReplicaPlacement] = (),
) -> dict[str, Any]:
    """``status --json``: plain outputs, whether the engine answered, backend health, and
    which node runs which replica (engines that spread replicas over nodes)."""
    return {
        "outputs": dict(outputs),
        "reachable": reachable,
        "health": [asdict(t) for t in tiers],
        "replicas": [asdict(r) | {"load_balancer": lb_view(r, tiers)} for r in replicas],
    }


def replicas_table(
    replicas: Sequence[ReplicaPlacement], tiers: Sequence[TierHealth] = ()
) -> RenderableType:
    """Every replica: where it runs, its state, how its load balancer sees it, its
    restarts and since when it runs."""
    table = Table(title="replicas", title_justify="left")
    for column in ("replica", "runs on", "state", "load balancer", "restarts", "up since"):
        table.add_column(column)
    for r in replicas:
        seen = lb_view(r, tiers)
        table.add_row(
            r.replica,
            r.node,
            r.state,
            Text(seen, style="green" if seen.startswith("UP") else "red") if seen else "-",
            "-" if r.restarts is None else str(r.restarts),
            r.started or "-",
        )
    return table


def lb_view(replica: ReplicaPlacement, tiers: Sequence[TierHealth]) -> str:
    """The status of ``replica`` as its load balancer sees it ("" when it lists it not):
    VMs are listed by name, DNS-discovered containers by address."""
    for t in tiers:
        for server in t.servers:
            host = server.address.rpartition(":")[0]
            if server.name == replica.replica or (replica.address and host == replica.address):
                return server.status
    return ""


def plain_outputs(outputs: Mapping[str, StackOutput]) -> dict[str, Any]:
    """Output values with secrets masked, for display or JSON."""
    return {k: SECRET if o.secret else o.value for k, o in outputs.items()}


def outputs_summary(env: str, outputs: Mapping[str, StackOutput]) -> RenderableType:
    """Where things are: load-balancer URLs, registry, tiers, VM and host addresses."""
    values = plain_outputs(outputs)
    table = Table(title=f"{env}", title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    if not values:
        return Text(f"{env}: no outputs (not deployed)", style="yellow")
    for key in ("target", "engine"):
        if key in values:
            table.add_row(key, str(values[key]))
    for name, url in (values.get("urls") or {}).items():
        table.add_row(f"{name} URL", Text(str(url), style="cyan underline"))
    if values.get("registry"):
        user = values.get("registry_username") or ""
        table.add_row("registry", f"{values['registry']}" + (f"  (user {user})" if user else ""))
    for name, tier in (values.get("tiers") or {}).items():
        replicas = ", ".join(tier.get("replicas") or []) if isinstance(tier, dict) else ""
        endpoint = tier.get("endpoint", "") if isinstance(tier, dict) else tier
        table.add_row(f"tier {name}", f"{endpoint}  [dim]{replicas}[/dim]")
    for section, label in (("vms", "vm"), ("container_hosts", "container host")):
        for name, address in (values.get(section) or {}).items():
            table.add_row(f"{label} {name}", str(address))
    shown = {"target", "engine", "urls", "registry", "registry_username", "registry_password"}
    shown |= {"tiers", "vms", "container_hosts", "images"}
    for key, value in values.items():
        if key not in shown:
            table.add_row(key, str(value))
    return table


def health_table(tiers: Sequence[TierHealth]) -> RenderableType:
    """Every load balancer's backends with status and last check."""
    table = Table(title="load-balancer backends", title_justify="left")
    table.add_column("tier", style="bold")
    table.add_column("load balancer")
    table.add_column("server")
    # HAProxy fills addr only for some server kinds: no empty column otherwise.
    with_address = any(s.address for t in tiers for s in t.servers)
    if with_address:
        table.add_column("address")
    table.add_column("status")
    table.add_column("check")
    for t in tiers:
        rows: list[tuple[str, str, Text, str]] = []
        if t.error:
            rows.append(("", "", Text("unreadable", style="red"), t.error))
        elif not t.servers:
            rows.append(("", "", Text("no servers", style="red"), ""))
        for s in t.servers:
            rows.append(
                (s.name, s.address, Text(s.status, style="green" if s.up else "red"), s.check)
            )
        if t.unused_slots:
            rows.append((f"({t.unused_slots} empty slots)", "", Text(""), ""))
        for server, address, state, check in rows:
            table.add_row(t.tier, t.lb, server, *([address] if with_address else []), state, check)
    return table
