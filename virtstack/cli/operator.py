"""Commands for the operator: graph, logs, doctor.

Pulumi and the targets are imported inside commands so ``virtstack --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from virtstack.cli.base import (
    EXIT_FAILED,
    Env,
    TargetOverride,
    app,
    complete_tier,
    handled,
    new_console,
    project_of,
    stack_ref,
    start_session,
)
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


@app.command()
@handled
def doctor(
    ctx: typer.Context,
    docker_uri: Annotated[
        str,
        typer.Option(envvar="VIRTSTACK_DOCKER_URI", help="The Docker engine to check."),
    ] = "unix:///var/run/docker.sock",
    libvirt_uri: Annotated[
        str, typer.Option(envvar="VIRTSTACK_LIBVIRT_URI", help="The libvirt daemon to check.")
    ] = "qemu:///system",
) -> None:
    """Check this machine: engines, toolchain, images, KVM, disk, passphrase, locks.

    One line a check, with a fix under each failure; exit code 1 if any failed.
    """
    from rich.text import Text

    from virtstack import doctor as checks

    machine = checks.Machine(
        project=project_of(ctx),
        docker_uri=docker_uri,
        libvirt_uri=libvirt_uri,
    )
    found = checks.run_all(machine)
    console = new_console()
    style = {checks.Level.OK: "green", checks.Level.WARN: "yellow", checks.Level.FAIL: "red"}
    width = max(len(c.name) for c in found)
    for c in found:
        console.print(
            Text.assemble(
                (f"{c.level.value:<4}", style[c.level]), f" {c.name:<{width}}  {c.detail}"
            )
        )
        if c.fix:
            console.print(Text(f"     fix: {c.fix}", style="dim"))
    failed = [c for c in found if c.failed]
    if failed:
        console.print(Text(f"{len(failed)} check(s) failed", style="bold red"))
        raise typer.Exit(EXIT_FAILED)
    console.print(Text("all checks passed", style="bold green"))


@app.command()
@handled
def logs(
    ctx: typer.Context,
    env: Env,
    selector: Annotated[
        str | None,
        typer.Argument(
            metavar="[TIER|NAME]",
            help="A tier (all its replicas) or one replica; default: every tier.",
            autocompletion=complete_tier,
            show_default=False,
        ),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    since: Annotated[
        str | None,
        typer.Option(help="Only lines since then: 10m, 2h, or a timestamp (Docker's syntax)."),
    ] = None,
    timestamps: Annotated[bool, typer.Option("--timestamps", help="Show times.")] = False,
    target: TargetOverride = None,
) -> None:
    """The replicas' logs, merged by time, each line prefixed by its replica."""
    from virtstack import logs as replica_logs

    session = start_session(ctx, env, target)
    spec, uri = session.environment.spec, session.environment.uri
    chosen = replica_logs.replicas(spec, env, selector)
    sources = session.adapter.log_sources(env, uri, chosen, follow=follow, since=since)
    for line in replica_logs.merged(sources, follow=follow, timestamps=timestamps):
        typer.echo(line)
