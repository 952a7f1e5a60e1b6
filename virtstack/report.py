"""What the CLI shows: targets, run progress, stack outputs and load-balancer health.

Tables for a terminal, and the same facts as JSON-ready data for ``--json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from virtstack.engines.base import Reachability, TierHealth
from virtstack.plan.events import OPS, RETAINED, SECRET, STYLE, SYMBOL, Op, short_type, split_urn

if TYPE_CHECKING:
    from pulumi.automation import EngineEvent

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
    engines.add_column("engine", no_wrap=True)
    engines.add_column("default URI", no_wrap=True)
    engines.add_column("reachable from here", ratio=2)
    for t in targets:
        r = reach[t.name]
        engines.add_row(
            Text.assemble((t.name, "bold"), "\n", (t.summary, "dim")),
            t.adapter.kind,
            t.default_uri,
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
    outputs: Mapping[str, Any], reachable: bool, tiers: Sequence[TierHealth]
) -> dict[str, Any]:
    """``status --json``: plain outputs, whether the engine answered, backend health."""
    return {"outputs": dict(outputs), "reachable": reachable, "health": [asdict(t) for t in tiers]}


@dataclass
class RunProgress:
    """Live progress of an up/destroy/refresh from engine events.

    Pulumi announces each step (``ResourcePreEvent``) and reports it done
    (``ResOutputsEvent``) or failed; every finished change is printed as a line above
    the bar, unchanged resources only move the bar.
    """

    console: Console
    title: str
    counts: dict[Op, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    _progress: Progress | None = None
    _task: Any = None
    _started: set[str] = field(default_factory=set)

    def __enter__(self) -> RunProgress:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[current]}", style="dim"),
            console=self.console,
            transient=True,
        )
        self._task = self._progress.add_task(self.title, total=0, current="starting")
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: EngineEvent) -> None:
        progress = self._progress
        if event.resource_pre_event is not None:
            m = event.resource_pre_event.metadata
            if m.urn not in self._started:
                self._started.add(m.urn)
                if progress is not None:
                    progress.update(self._task, total=len(self._started))
            if progress is not None:
                progress.update(self._task, current=f"{m.op.value} {split_urn(m.urn)[1]}")
        elif event.res_outputs_event is not None:
            m = event.res_outputs_event.metadata
            op = OPS.get(str(m.op.value), Op.SAME)
            if progress is not None:
                progress.advance(self._task)
            state = m.new or m.old
            if state is None or not state.custom:
                return  # components and the stack group resources; they are not counted
            self.counts[op] = self.counts.get(op, 0) + 1
            if op is not Op.SAME:
                done = (
                    "forgotten, " + RETAINED
                    if op is Op.DELETE and state.retain_on_delete
                    else f"{op.value}d"
                )
                self.console.print(
                    Text(f"{SYMBOL[op]:>2} ", style=STYLE[op]),
                    Text(split_urn(m.urn)[1]),
                    Text(f"{short_type(m.type)}  {done}", style="dim"),
                )
        elif event.res_op_failed_event is not None:
            m = event.res_op_failed_event.metadata
            name = split_urn(m.urn)[1]
            self.failed.append(name)
            self.console.print(Text(f" ✗ {name} {m.op.value} failed", style="red"))
            if progress is not None:
                progress.advance(self._task)

    def headline(self) -> str:
        parts = [f"{n} {op.value}d" for op, n in self.counts.items() if op is not Op.SAME and n]
        same = self.counts.get(Op.SAME, 0)
        return (", ".join(parts) or "no changes") + (f", {same} unchanged" if same else "")


@dataclass
class ReadyProgress:
    """Live progress of the wait for new machines to finish configuring themselves."""

    console: Console
    title: str
    _progress: Progress | None = None
    _task: Any = None

    def __enter__(self) -> ReadyProgress:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._task = self._progress.add_task(self.title, total=0)
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def expect(self, machines: Sequence[str]) -> None:
        """The machines about to be waited for."""
        if self._progress is not None:
            self._progress.update(self._task, total=len(machines))

    def ready(self, machine: str, status: str) -> None:
        """One machine finished: cloud-init ``status`` (``done`` when all went well)."""
        if self._progress is not None:
            self._progress.advance(self._task)
        good = status == "done"
        self.console.print(
            Text(" ✓ " if good else " ✗ ", style="green" if good else "red"),
            Text(machine),
            Text(f"  cloud-init {status}", style="dim" if good else "red"),
        )


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
