"""Live progress of a long run (up, destroy, refresh, ...), one line per resource.

On a terminal a rich ``Live`` table updates in place: each resource's step, how long it
has taken, and the whole run's elapsed time. Without a terminal (CI, pipes) every change
of step is one plain line, with no control characters.

Engine events drive it (``ResourcePreEvent``: a step starts; ``ResOutputsEvent``: done;
``ResOpFailedEvent``: failed). Anything else may report a resource's *phase* (a VM's
boot, its cloud-init) while its step runs:

- in this process: :meth:`RunProgress.phase` or the module's :func:`phase`, which goes to
  the run in progress (if any);
- from the Pulumi program (another process): a diagnostic on the resource whose message
  starts with :data:`PHASE_PREFIX`, e.g. ``pulumi.log.info("phase: cloud-init", resource=vm)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from virtstack.plan.events import OPS, RETAINED, STYLE, SYMBOL, Op, short_type, split_urn

if TYPE_CHECKING:
    from virtstack.engineevents import EngineEvent

PHASE_PREFIX = "phase: "
"""A program diagnostic starting with this sets its resource's phase."""
_DOING = {
    Op.CREATE: "creating",
    Op.UPDATE: "updating",
    Op.REPLACE: "replacing",
    Op.DELETE: "deleting",
    Op.IMPORT: "importing",
}
_ACTIVE: list[RunProgress] = []
_LOCK = threading.Lock()


def phase(resource: str, text: str) -> None:
    """Report ``text`` as the phase of ``resource`` (its name) to the run in progress."""
    with _LOCK:
        active = _ACTIVE[-1] if _ACTIVE else None
    if active is not None:
        active.phase(resource, text)


def _seconds(value: float) -> str:
    value = max(value, 0.0)
    return f"{value:.0f}s" if value < 60 else f"{int(value // 60)}m{int(value % 60):02d}s"


@dataclass
class ResourceLine:
    """One resource's line: what is being done to it, since when, and how it ended."""

    name: str
    type: str
    op: Op
    started: float
    step: str
    ended: float | None = None
    failed: bool = False

    def elapsed(self, now: float) -> float:
        return (self.ended if self.ended is not None else now) - self.started


@dataclass
class RunProgress:
    """Live per-resource progress of a run from engine events; see the module docstring.

    Only resources on the engine are shown (not the stack and its components), and only
    those that change: unchanged ones are counted.
    """

    console: Console
    title: str
    clock: Callable[[], float] = time.monotonic
    counts: dict[Op, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    lines: dict[str, ResourceLine] = field(default_factory=dict)
    _start: float = 0.0
    _live: Live | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def live(self) -> bool:
        """Whether the view updates in place (a terminal) or prints plain lines."""
        return self.console.is_terminal

    def __enter__(self) -> RunProgress:
        self._start = self.clock()
        if self.live:
            self._live = Live(
                get_renderable=self.renderable,
                console=self.console,
                refresh_per_second=4,
                transient=False,
            )
            self._live.start()
        else:
            self.console.print(f"{self.title}: started", markup=False, highlight=False)
        with _LOCK:
            _ACTIVE.append(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
        if self._live is not None:
            self._live.stop()

    # -- events -------------------------------------------------------------------------

    def __call__(self, event: EngineEvent) -> None:
        with self._lock:
            self._handle(event)

    def _handle(self, event: EngineEvent) -> None:
        now = self.clock()
        if event.resource_pre_event is not None:
            m = event.resource_pre_event.metadata
            op = OPS.get(m.op, Op.SAME)
            state = m.new or m.old
            if op is Op.SAME or state is None or not state.custom:
                return
            name = split_urn(m.urn)[1]
            line = self.lines.get(m.urn)
            if line is None:
                line = ResourceLine(name, short_type(m.type), op, now, _DOING.get(op, op.value))
                self.lines[m.urn] = line
            else:  # a replacement's second step (create, then delete the old one)
                line.step = f"{_DOING.get(op, op.value)} ({m.op})"
            self._changed(line)
        elif event.res_outputs_event is not None:
            m = event.res_outputs_event.metadata
            op = OPS.get(m.op, Op.SAME)
            state = m.new or m.old
            if state is None or not state.custom:
                return  # components and the stack group resources; they are not counted
            self.counts[op] = self.counts.get(op, 0) + 1
            line = self.lines.get(m.urn)
            if line is None:
                return  # unchanged
            line.ended = now
            line.step = (
                "forgotten, " + RETAINED
                if op is Op.DELETE and state.retain_on_delete
                else f"{op.value}d"
            )
            self._changed(line)
        elif event.res_op_failed_event is not None:
            m = event.res_op_failed_event.metadata
            name = split_urn(m.urn)[1]
            self.failed.append(name)
            line = self.lines.setdefault(
                m.urn, ResourceLine(name, short_type(m.type), Op.SAME, now, "")
            )
            line.ended, line.failed, line.step = now, True, f"{m.op} failed"
            self._changed(line)
        elif event.diagnostic_event is not None:
            d = event.diagnostic_event
            if d.urn and d.message.startswith(PHASE_PREFIX):
                self.phase(split_urn(d.urn)[1], d.message.removeprefix(PHASE_PREFIX).strip())

    def phase(self, resource: str, text: str) -> None:
        """Show ``text`` as the current phase of the resource named ``resource``."""
        with self._lock:
            line = next((ln for ln in self.lines.values() if ln.name == resource), None)
            if line is None:
                line = ResourceLine(resource, "", Op.SAME, self.clock(), "")
                self.lines[resource] = line
            if line.ended is None:
                line.step = text
                self._changed(line)

    # -- output -------------------------------------------------------------------------

    def _changed(self, line: ResourceLine) -> None:
        if self._live is not None:
            self._live.refresh()
            return
        now = self.clock()
        took = f" ({_seconds(line.elapsed(now))})" if line.ended is not None else ""
        self.console.print(
            f"[{_seconds(now - self._start):>6}] {SYMBOL[line.op]:>2} {line.name} "
            f"{line.type}  {line.step}{took}",
            markup=False,
            highlight=False,
        )

    def renderable(self) -> RenderableType:
        """The live view: a headline with the run's elapsed time, then one row a resource."""
        with self._lock:
            now = self.clock()
            done = sum(1 for ln in self.lines.values() if ln.ended is not None)
            head = Text.assemble(
                (self.title, "bold"),
                f"  {_seconds(now - self._start)}  ",
                (f"{done}/{len(self.lines)} done", "dim"),
            )
            table = Table(box=None, show_header=False, pad_edge=False)
            for column in ("op", "name", "type", "step", "time"):
                table.add_column(column, no_wrap=column != "step")
            for ln in self.lines.values():
                style = "red" if ln.failed else STYLE[ln.op]
                table.add_row(
                    Text(SYMBOL[ln.op], style=style),
                    ln.name,
                    Text(ln.type, style="dim"),
                    Text(ln.step, style="red" if ln.failed else ("" if ln.ended else "cyan")),
                    Text(_seconds(ln.elapsed(now)), style="dim"),
                )
            return Group(head, table)

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
