"""Commands on backups: backup (and its retention, verification, timer), backups, restore."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from virtstack.cli.base import (
    EXIT_FAILED,
    Env,
    app,
    handled,
    holding,
    new_console,
    services_of,
    stack_ref,
    start_session,
)
from virtstack.errors import UsageError


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    # A stopped service (SIGTERM) unwinds like Ctrl-C: paused replicas are released.
    raise KeyboardInterrupt


@app.command()
@handled
def backup(
    ctx: typer.Context,
    env: Env,
    tag: Annotated[
        str | None, typer.Option("--tag", help="A label for this backup (letters, digits, ._-).")
    ] = None,
    keep_last: Annotated[
        int, typer.Option("--keep-last", min=0, help="Then keep only the newest N backups.")
    ] = 0,
    keep_daily: Annotated[
        int,
        typer.Option("--keep-daily", min=0, help="Then keep the newest backup of the last N days."),
    ] = 0,
    include_root: Annotated[
        bool,
        typer.Option("--include-root", help="VM targets: the VMs' root disks too (not restored)."),
    ] = False,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Do not back up: read back a sample and report damage."),
    ] = False,
    sample: Annotated[
        str, typer.Option("--sample", help="What --verify reads: a percentage or n/t.")
    ] = "10%",
    print_timer: Annotated[
        bool,
        typer.Option(
            "--print-timer", help="Do not back up: write a systemd timer and service for this."
        ),
    ] = False,
    on_calendar: Annotated[
        str, typer.Option("--on-calendar", help="When the timer runs (systemd OnCalendar=).")
    ] = "daily",
    timer_dir: Annotated[
        Path,
        typer.Option("--timer-dir", help="Where --print-timer writes the units.", file_okay=False),
    ] = Path("."),
) -> None:
    """Back up the environment's data, declaration and state into its restic repository."""
    from virtstack import backup as backups
    from virtstack import schedule

    console = new_console()
    ref = stack_ref(ctx, env, None)
    if tag is not None and not tag.replace(".", "").replace("_", "").replace("-", "").isalnum():
        raise UsageError(f"--tag {tag!r}: letters, digits, '.', '_' and '-' only")
    if print_timer:
        options = [f"--keep-last={keep_last}"] if keep_last else []
        options += [f"--keep-daily={keep_daily}"] if keep_daily else []
        units = schedule.timer_units(ref.project, env, options, on_calendar=on_calendar)
        for path in schedule.write_units(units, timer_dir):
            console.print(f"wrote {path}")
        return
    if verify:
        session = start_session(ctx, env, None, check=False)
        repo = backups.repository(ref.project, env, session.environment)
        damage = backups.verify(repo, sample)
        for line in damage:
            typer.echo(f"damaged: {line}", err=True)
        if damage:
            raise typer.Exit(EXIT_FAILED)
        console.print(f"{env}: {sample} of {repo.location} read back, no damage")
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with holding(ctx, env, "backup"):
            session = start_session(ctx, env, None)
            done = backups.backup(session, tag=tag, say=console.print, include_root=include_root)
            for line in done.warnings:
                typer.echo(f"warning: {line}", err=True)
            console.print(
                f"[bold]{env}[/]: backup {done.backup_id} ({_size(done.added)} added): "
                + ", ".join(done.files)
            )
            if keep_last or keep_daily:
                repo = backups.repository(ref.project, env, session.environment)
                gone = backups.retain(repo, env, keep_last=keep_last, keep_daily=keep_daily)
                console.print(f"removed backups: {', '.join(gone) or 'none'}")
    finally:
        signal.signal(signal.SIGTERM, previous)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return str(n)


@app.command("backups")
@handled
def backups_command(
    ctx: typer.Context,
    env: Env,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """The environment's backups: id, time, tag, size added, what is inside."""
    from rich.table import Table

    from virtstack import backup as backups

    session = start_session(ctx, env, None, check=False)
    repo = backups.repository(session.ref.project, env, session.environment)
    found = backups.list_backups(repo, env)
    if as_json:
        rows = [
            {"id": b.id, "time": b.time, "tag": b.tag, "added": b.added, "files": b.files}
            for b in found
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"backups of {env} in {repo.location}", title_justify="left")
    for column in ("id", "time", "tag", "added", "inside"):
        table.add_column(column)
    for b in found:
        table.add_row(b.id, b.time[:19], b.tag, _size(b.added), ", ".join(b.files))
    new_console().print(table)


@app.command()
@handled
def restore(
    ctx: typer.Context,
    env: Env,
    backup_id: Annotated[
        str, typer.Option("--backup", help="The backup's id (or a prefix), or latest.")
    ] = "latest",
    into: Annotated[
        str | None,
        typer.Option("--into", help="Restore into a new environment of this name (a clone)."),
    ] = None,
    publish: Annotated[
        list[str] | None,
        typer.Option(
            "--publish",
            metavar="TIER=PORT",
            help="A clone's published port (a tier's, or registry=PORT); others stay unpublished.",
        ),
    ] = None,
    network: Annotated[
        list[str] | None,
        typer.Option("--network", metavar="NAME=CIDR", help="A clone's network range (else free)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the data the environment holds now.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Check a backup, put its declaration and data back, then bring the environment up."""
    from virtstack import netranges
    from virtstack import restore as restoring
    from virtstack.cli.environments import _deploy

    ports = _ports(publish or [])
    networks = netranges.parse_given(network or [])
    target = into or env
    if not yes:
        if not services_of(ctx).interactive():
            raise UsageError(f"restore {env}: pass --yes to confirm (no terminal to ask on)")
        if not typer.confirm(f"Restore {env} ({backup_id}) into {target}?", default=False):
            typer.echo("nothing restored", err=True)
            raise typer.Exit(EXIT_FAILED)
    console = new_console()
    with holding(ctx, target, "restore"):
        done = restoring.restore(
            stack_ref(ctx, env, None).project,
            env,
            wanted=backup_id,
            into=into,
            publish=ports,
            networks=networks,
            force=force,
            say=console.print,
        )
        console.print(f"restored backup {done.backup.id}: {', '.join(done.data) or 'no data'}")
        services_of(ctx).runner.init(done.ref)
        _deploy(start_session(ctx, target, None, preflight=True))


def _ports(given: list[str]) -> dict[str, int]:
    ports = {}
    for item in given:
        name, sep, port = item.partition("=")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"--publish {item}: expected TIER=PORT (a port 1-65535)")
        ports[name] = int(port)
    return ports
