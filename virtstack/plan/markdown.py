"""A plan as markdown, for a pull-request comment."""

from __future__ import annotations

from virtstack.plan.events import RETAINED, Op, short_type
from virtstack.plan.model import Change, Plan, covered, tally


def _md(text: str) -> str:
    """Plain ``text`` safe in markdown and inside a table cell."""
    for char, escaped in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), ("\n", " ")):
        text = text.replace(char, escaped)
    return text


def _code(text: str) -> str:
    """``text`` as inline code in a table cell: only pipes need escaping there."""
    text = text.replace("|", "\\|").replace("\n", " ")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _detail(change: Change) -> str:
    parts = [f"{_code(k)}: {_code(o)} → {_code(n)}" for k, (o, n) in change.values.items()]
    extra = [p for p in change.diffs if not covered(p, change.values)]
    parts += [_code(p) for p in extra]
    if change.replace_keys:
        parts.append("**replaced because of** " + ", ".join(_code(k) for k in change.replace_keys))
    if change.retained:
        parts.append(RETAINED)
    return "<br>".join(parts)


def diagram_block(mermaid: str) -> list[str]:
    """A Mermaid diagram as a collapsible markdown section (GitHub draws the block)."""
    return [
        "<details open>",
        "<summary><b>environment</b>: changed parts marked</summary>",
        "",
        "```mermaid",
        *mermaid.rstrip("\n").splitlines(),
        "```",
        "",
        "</details>",
        "",
    ]


def markdown(plan: Plan, diagram: str | None = None) -> str:
    """The plan as markdown for a pull-request comment; ``diagram``: Mermaid text of the
    environment with the changed parts marked, shown after the counts."""
    title = f"### `{plan.env}`" + (f" ({plan.target})" if plan.target else "")
    if plan.errors:
        lines = [f"{title}: preview failed", "", "> [!CAUTION]"]
        lines += [f"> - {_md(e)}" for e in plan.errors]
        return "\n".join(lines) + "\n"
    lines = [f"{title}: {plan.headline()}", ""]
    replaced = plan.replacements()
    if replaced:
        lines += ["> [!WARNING]", f"> {len(replaced)} resource(s) will be **replaced**:"]
        for c in replaced:
            why = ", ".join(_code(k) for k in c.replace_keys) or "provider decision"
            lines.append(f"> - {_code(c.name)} ({_code(short_type(c.type))}), because of {why}")
        lines.append("")
    if plan.warnings:
        lines += [f"- warning: {_md(w)}" for w in plan.warnings] + [""]
    counts = plan.counts()
    lines += [
        "| create | update | replace | delete | unchanged |",
        "|---:|---:|---:|---:|---:|",
        "| {create} | {update} | {replace} | {delete} | {same} |".format(**counts),
        "",
    ]
    if diagram:
        lines += diagram_block(diagram)
    for group, changes in plan.groups().items():
        summary = tally(changes)
        lines += [
            "<details open>",
            f"<summary><b>{_md(group.label)}</b>: {summary}</summary>",
            "",
            "| | resource | type | change |",
            "|:-:|---|---|---|",
        ]
        for c in changes:
            op = f"**{c.op.value}**" if c.op in (Op.REPLACE, Op.DELETE) else c.op.value
            lines.append(f"| {op} | {_code(c.name)} | {_code(short_type(c.type))} | {_detail(c)} |")
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
