"""A plan for a terminal: one rich table, a section per group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtstack.plan.events import RETAINED, STYLE, SYMBOL, short_type
from virtstack.plan.model import Plan, covered

if TYPE_CHECKING:
    from rich.console import RenderableType


def renderable(plan: Plan) -> RenderableType:
    """The plan for a terminal: one table, a section per group."""
    from rich.console import Group as Stack  # rich only when printing
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=f"{plan.env}" + (f" ({plan.target})" if plan.target else ""),
        caption=plan.headline(),
        show_lines=False,
        expand=False,
    )
    table.add_column("", no_wrap=True)
    table.add_column("resource", no_wrap=True)
    table.add_column("type", style="dim", no_wrap=True)
    table.add_column("change")
    for group, changes in plan.groups().items():
        table.add_section()
        table.add_row("", Text(group.label, style="bold"), "", "")
        for c in changes:
            detail = Text()
            for k, (old, new) in c.values.items():
                detail.append(f"{k}: ", style="bold")
                detail.append(old, style="red")
                detail.append(" → ")
                detail.append(new, style="green")
                detail.append("\n")
            rest = [p for p in c.diffs if not covered(p, c.values)]
            if rest:
                detail.append(", ".join(rest) + "\n")
            if c.replace_keys:
                detail.append("replaced because of " + ", ".join(c.replace_keys), style="magenta")
            if c.retained:
                detail.append(RETAINED, style="cyan")
            detail.rstrip()
            table.add_row(
                Text(SYMBOL[c.op], style=STYLE[c.op]),
                Text(f"  {c.name}", style=STYLE[c.op]),
                short_type(c.type),
                detail,
            )
    parts: list[RenderableType] = []
    if plan.changes:
        parts.append(table)
    else:
        parts.append(Text(f"{plan.env}: {plan.headline()}", style="green"))
    parts += [Text(f"warning: {w}", style="yellow") for w in plan.warnings]
    parts += [Text(f"error: {e}", style="red") for e in plan.errors]
    return Stack(*parts)
