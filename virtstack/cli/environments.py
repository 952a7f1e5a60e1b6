"""Commands on environments: targets, new, preview, up, destroy, refresh, status, scale, autoscale.

Pulumi and the targets are imported inside commands so ``virtstack --help`` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from virtstack.cli.base import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    Env,
    TargetOverride,
    announce_password,
    app,
    complete_tier,
    handled,
    holding,
    new_console,
    services_of,
    stack_ref,
    start_session,
)
from virtstack.errors import ToolchainMissingError, UsageError, VirtstackError

if TYPE_CHECKING:
    from virtstack.environment import StackRef
    from virtstack.runner import EventLog, OnEvent, PendingRun, StackOutput
    from virtstack.session import Services, Session

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "app"]

R = TypeVar("R")


@app.command("targets")
@handled
def targets_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the matrix as JSON.")] = False,
) -> None:
    """The targets, what each supports, and whether its engine answers from here."""
    from virtstack import report, workflows
    from virtstack.targets import TARGETS

    reach = workflows.reach_targets(TARGETS, services_of(ctx).adapter)
    if as_json:
        typer.echo(json.dumps(report.targets_json(list(TARGETS.values()), reach), indent=2))
        return
    new_console().print(report.targets_table(list(TARGETS.values()), reach))


def _ask_target(services: Services, what: str) -> str:
    from rich.prompt import Prompt

    from virtstack.targets import TARGETS

    if not services.interactive():
        raise UsageError(f"{what}: --target is required (one of {', '.join(TARGETS)})")
    return Prompt.ask("target", choices=list(TARGETS), console=new_console())


@app.command()
@handled
def new(
    ctx: typer.Context,
    env: Annotated[str, typer.Argument(help="Name of the new environment (a DNS label).")],
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="hostos, hypervisor or container; asked if unset."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--from", help="Copy this environment's config instead of a template."),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Set a config value, e.g. tiers[0].replicas=3 (value read as YAML); repeatable.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing environment.")
    ] = False,
) -> None:
    """Create stacks/Pulumi.ENV.yaml from the target's template (or another environment)."""
    from virtstack import scaffold, secrets

    services = services_of(ctx)
    project = stack_ref(ctx, env, None).project
    if target is None and source is None:
        target = _ask_target(services, f"new {env}")
    made = scaffold.prepare(
        project, env, target=target, source=source, sets=sets or [], force=force
    )
    scaffold.write(made)
    console = new_console()
    console.print(f"wrote {made.path} from {made.origin} (target {made.environment.target.name})")
    session = start_session(ctx, env, None, check=False, environment=made.environment)
    try:
        session.runner.init(session.ref)
    except ToolchainMissingError as exc:
        needed = secrets.needs_registry_password(made.environment.spec)
        later = " and the registry password generated" if needed else ""
        console.print(
            f"[yellow]{exc}[/]\nthe stack will be initialised{later} on first `virtstack up {env}`"
        )
        return
    console.print(f"stack {env} initialised")
    announce_password(session)


def _write_markdown(markdown: Path, text: str) -> None:
    if str(markdown) == "-":
        typer.echo(text, nl=False)
    else:
        markdown.write_text(text)


@app.command()
@handled
def preview(
    ctx: typer.Context,
    env: Env,
    target: TargetOverride = None,
    markdown: Annotated[
        Path | None,
        typer.Option(
            "--markdown",
            metavar="FILE",
            help="Also write the diff as markdown for a pull-request comment ('-': stdout).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Show what `up` would change, grouped by tier and component."""
    from virtstack import workflows
    from virtstack.plan.markdown import markdown as plan_markdown
    from virtstack.plan.terminal import renderable
    from virtstack.runner import EventLog

    log = EventLog()
    target_name = target or ""
    try:
        # A preview changes nothing, not even the stack file: a password `up` would
        # generate stands in as a placeholder (see virtstack.program).
        session = start_session(ctx, env, target, preflight=True, keep_orphans=True)
        target_name = session.environment.target.name
        plan = workflows.preview(session, log)
    except VirtstackError as exc:
        if markdown is not None:
            failed = workflows.failed_plan(log.events, env, target_name, exc)
            _write_markdown(markdown, plan_markdown(failed))
        raise
    if markdown is not None:
        from virtstack.graph import plan_diagram

        diagram = plan_diagram(session.environment, env, plan.changes)
        _write_markdown(markdown, plan_markdown(plan, diagram))
    if as_json:
        typer.echo(json.dumps(plan.as_json(), indent=2))
    elif str(markdown) != "-":
        new_console().print(renderable(plan))


def _run(session: Session, operation: str, run: Callable[[Session, OnEvent], R]) -> R:
    """Run a Pulumi operation under a progress display, then print its one-line summary."""
    from virtstack.progress import RunProgress

    console = new_console()
    with RunProgress(console=console, title=f"{operation} {session.env}") as progress:
        result = run(session, progress)
    console.print(f"[bold]{session.env}[/]: {progress.headline()}")
    return result


def _deploy(session: Session) -> None:
    """The common tail of scale and restore: the update and its report."""
    _report(session, *_apply(session))


def _apply(
    session: Session,
    *,
    confirm: bool = False,
    checks: Callable[[Session], None] | None = None,
    started: PendingRun | None = None,
) -> tuple[dict[str, StackOutput], EventLog]:
    """The checks, the password, the plan and question (with ``confirm``), the update.

    ``checks`` (of the engine, raising what they find) run first: while ``started`` waits
    for them at its gate (:mod:`virtstack.gate`), else before the run starts.
    """
    # Imported while a started run's Pulumi starts.
    from virtstack import workflows
    from virtstack.runner import EventLog

    if checks is not None:
        checks(session)
    announce_password(session)
    for line in session.environment.warnings:
        typer.echo(f"warning: {line}", err=True)
    if confirm:
        from virtstack.plan.terminal import renderable

        plan = workflows.preview(session, EventLog())
        new_console().print(renderable(plan))
        if plan.has_changes and not typer.confirm(f"Apply these changes to {session.env}?"):
            typer.echo("nothing changed", err=True)
            raise typer.Exit(EXIT_FAILED)
    logs: list[EventLog] = []

    def deploy(s: Session, on_event: OnEvent) -> dict[str, StackOutput]:
        logs.append(EventLog(on_event))  # kept: the machines made are in the events
        return workflows.up(s, logs[-1], started)

    return _run(session, "up", deploy), logs[-1]


def _report(session: Session, outputs: dict[str, StackOutput], log: EventLog) -> None:
    """After an update: its warnings, the machines it made becoming ready, the summary."""
    from virtstack import report

    for line in log.warnings():  # the progress display shows resources, not these
        typer.echo(f"warning: {line}", err=True)
    _wait_ready(session, log)
    new_console().print(report.outputs_summary(session.env, outputs))


def _wait_ready(session: Session, log: EventLog) -> None:
    """Wait, with live progress, until the machines the run made are configured."""
    from virtstack import workflows
    from virtstack.progress import ReadyProgress

    console = new_console()
    with ReadyProgress(console=console, title=f"ready {session.env}") as progress:
        machines = workflows.wait_ready(session, log.events, progress.ready, progress.expect)
    if machines:
        console.print(f"[bold]{session.env}[/]: {len(machines)} machines ready")


@app.command()
@handled
def up(
    ctx: typer.Context,
    env: Env,
    target: TargetOverride = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Apply without showing the plan first (on a terminal it asks)."
        ),
    ] = False,
    keep_orphans: Annotated[
        bool,
        typer.Option(
            "--keep-orphaned-data",
            help="Deploy even though the engine holds data the spec no longer declares "
            "(a renamed or removed volume); that data is left in place.",
        ),
    ] = False,
) -> None:
    """Create or update everything the environment declares."""
    from virtstack.session import up_session

    def checks(session: Session) -> None:
        from virtstack import workflows

        workflows.check(session, preflight=True, keep_orphans=keep_orphans)

    with holding(ctx, env, "up"):
        services = services_of(ctx)
        # Without a terminal there is nobody to ask: the command itself is the decision.
        confirm = not yes and services.interactive()
        ref = stack_ref(ctx, env, target)
        with up_session(ref, services, start=not confirm) as (session, started):
            done = _apply(session, confirm=confirm, checks=checks, started=started)
        _report(session, *done)


@app.command()
@handled
def destroy(
    ctx: typer.Context,
    env: Env,
    target: TargetOverride = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    delete_data: Annotated[
        bool,
        typer.Option(
            "--delete-data",
            help="Also remove the data volumes (tier volumes, registry storage); kept otherwise.",
        ),
    ] = False,
) -> None:
    """Remove everything the environment deployed; data volumes are kept unless asked."""

    with holding(ctx, env, "destroy"):
        _destroy(ctx, env, target, yes=yes, delete_data=delete_data)


def _destroy(
    ctx: typer.Context, env: str, target: str | None, *, yes: bool, delete_data: bool
) -> None:
    from virtstack import workflows

    session = start_session(ctx, env, target)
    if not yes:
        if not services_of(ctx).interactive():
            raise UsageError(f"destroy {env}: pass --yes to confirm (no terminal to ask on)")
        data = "and delete its data" if delete_data else "(its data is kept)"
        uri = session.environment.uri
        if not typer.confirm(f"Destroy {env} on {uri} {data}?", default=False):
            typer.echo("nothing destroyed", err=True)
            raise typer.Exit(EXIT_FAILED)
    _run(session, "destroy", workflows.destroy)
    found = workflows.data_after_destroy(session, delete=delete_data)
    new_console().print(found.summary(env))


@app.command()
@handled
def refresh(ctx: typer.Context, env: Env, target: TargetOverride = None) -> None:
    """Read the engine's actual state into the stack (drift shows in the next preview)."""
    from virtstack import workflows

    with holding(ctx, env, "refresh"):
        _run(start_session(ctx, env, target), "refresh", workflows.refresh)


@app.command()
@handled
def status(
    ctx: typer.Context,
    env: Env,
    target: TargetOverride = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print outputs and health as JSON.")
    ] = False,
) -> None:
    """The stack's outputs and the live health of every load-balancer backend."""
    from virtstack import report, workflows

    # Outputs come from the stack, not the engine: shown even when it does not answer.
    session = start_session(ctx, env, target, check=False)
    found = workflows.status(session)
    if as_json:
        typer.echo(json.dumps(found.as_json(), indent=2, default=str))
    else:
        console = new_console()
        console.print(report.outputs_summary(env, found.outputs))
        if found.tiers:
            console.print(report.health_table(found.tiers))
        if found.replicas:
            console.print(report.replicas_table(found.replicas, found.tiers))
    if not found.reach.reachable:
        raise workflows.unreachable(session.adapter, found.reach)


@app.command()
@handled
def scale(
    ctx: typer.Context,
    env: Env,
    tier: Annotated[
        str,
        typer.Argument(
            help="The tier to scale (its name).", show_default=False, autocompletion=complete_tier
        ),
    ],
    replicas: Annotated[
        int,
        typer.Argument(help="The new replica count, within the tier's scaling min..max.", min=0),
    ],
    target: TargetOverride = None,
) -> None:
    """Set a tier's replica count in the stack file, then run up (so it is never drift)."""
    with holding(ctx, env, "scale"):
        _scale(services_of(ctx), stack_ref(ctx, env, target), tier, replicas)


def _scale(services: Services, ref: StackRef, tier: str, replicas: int) -> None:
    """Deploy a tier's new replica count, then write it into the stack file."""
    from virtstack import workflows

    change, session = workflows.scale(ref, services, tier, replicas)
    with workflows.drained(session, tier, change.old, replicas):
        _deploy(session)
    change.write()
    new_console().print(f"{change.key}: {change.old} → {replicas} in {change.path}")


@app.command()
@handled
def autoscale(
    ctx: typer.Context,
    env: Env,
    window: Annotated[
        float,
        typer.Option(help="Seconds of traffic to measure each tier's load over.", min=1),
    ] = 60.0,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep measuring and scaling until interrupted.")
    ] = False,
) -> None:
    """Apply the tiers' threshold rules once (or keep doing it with --watch).

    A tier above its requests_per_replica_per_minute gets one more replica, one well
    below it one fewer, within min..max; each change is a `scale`.
    """
    from virtstack import workflows

    services = services_of(ctx)
    ref = stack_ref(ctx, env, None)
    while True:
        decisions = workflows.autoscale_step(ref, services, window)
        for d in decisions:
            new_console().print(str(d))
        for d in decisions:
            if d.changes:
                with holding(ctx, env, "autoscale"):
                    _scale(services, ref, d.tier, d.desired)
        if not watch:
            return
