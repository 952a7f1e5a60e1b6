"""Commands for the operator: graph, logs, doctor.

Pulumi and the targets are imported inside commands so ``virtstack --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from virtstack.cli.base import Env, TargetOverride, app, handled, stack_ref
from virtstack.errors import UsageError


@app.command()
@handled
def graph(
    ctx: typer.Context,
    env: Env,
    target: TargetOverride = None,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="mermaid, dot or svg (svg: Graphviz's dot)."),
    ] = "mermaid",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write here instead of stdout."),
    ] = None,
) -> None:
    """Draw the environment: networks, load balancers, tiers, data, registry, VMs, entries."""
    from virtstack import graph as drawing
    from virtstack.environment import load

    if fmt not in drawing.FORMATS:
        raise UsageError(f"graph --format: {fmt!r} is not one of {', '.join(drawing.FORMATS)}")
    environment = load(stack_ref(ctx, env, target))
    text = drawing.render(drawing.of_environment(environment, env), fmt)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
