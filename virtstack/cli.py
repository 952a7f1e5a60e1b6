"""The virtstack command line: options, prompts and printing over :mod:`virtstack.workflows`.

Only here does a :class:`~virtstack.errors.VirtstackError` become a message (one line per
problem, on stderr) and an exit code: 2 for bad input (:class:`BadInputError`), 1 for what
failed. Pulumi and the targets are imported inside commands so ``--help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, ParamSpec, TypeVar

import typer

from virtstack.errors import (
    BadInputError,
    EngineUnreachableError,
    ToolchainMissingError,
    UsageError,
    VirtstackError,
)

if TYPE_CHECKING:
    from rich.console import Console

    from virtstack.engines.base import EngineAdapter
    from virtstack.environment import StackRef
    from virtstack.runner import OnEvent, Runner
    from virtstack.targets import Target
    from virtstack.workflows import Session

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
_PROJECT_KEY = "virtstack.project"

app = typer.Typer(
    name="virtstack",
    help="Deploy one environment spec onto VMs (hostos, hypervisor) or containers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _target_adapter(target: Target) -> EngineAdapter:
    return target.adapter


@dataclass
class Services:
    """What commands use to reach the outside world; tests swap single parts."""

    runner: Runner
    interactive: Callable[[], bool]
    """Whether a person can answer prompts (stdin is a terminal)."""
    adapter: Callable[[Target], EngineAdapter] = field(default=_target_adapter)
    """The engine adapter of a target (probe, preflight, data, load-balancer stats)."""

    @classmethod
    def default(cls) -> Services:
        from virtstack.runner import PulumiRunner

        return cls(runner=PulumiRunner(), interactive=lambda: sys.stdin.isatty())


P = ParamSpec("P")
R = TypeVar("R")


def _fail(exc: VirtstackError) -> NoReturn:
    for line in str(exc).splitlines() or [type(exc).__name__]:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT if isinstance(exc, BadInputError) else EXIT_FAILED)


def _handled(command: Callable[P, R]) -> Callable[P, R]:
    """Run ``command``, turning a VirtstackError into its message and exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except VirtstackError as exc:
            _fail(exc)

    return run


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _services(ctx: typer.Context) -> Services:
    root = ctx.find_root()
    if not isinstance(root.obj, Services):
        root.obj = Services.default()
    return root.obj


def find_project(start: Path) -> Path:
    """The nearest directory from ``start`` up that holds Pulumi.yaml and stacks/."""
    for folder in (start, *start.parents):
        if (folder / "Pulumi.yaml").is_file() and (folder / "stacks").is_dir():
            return folder
    raise UsageError(f"{start}: no virtstack project here or above (Pulumi.yaml and stacks/)")


def _project(ctx: typer.Context) -> Path:
    given: Path | None = ctx.find_root().meta.get(_PROJECT_KEY)
    if given is not None:
        if not (given / "Pulumi.yaml").is_file():
            raise UsageError(f"{given}: no Pulumi.yaml (--project names a virtstack project)")
        return given.resolve()
    return find_project(Path.cwd())


def _ref(ctx: typer.Context, env: str, target: str | None) -> StackRef:
    from virtstack.environment import StackRef

    return StackRef(project=_project(ctx), env=env, target=target)


@app.callback()
def main(
    ctx: typer.Context,
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            "-C",
            envvar="VIRTSTACK_PROJECT",
            help="Project directory (Pulumi.yaml, stacks/); default: found from here up.",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """virtstack: one environment spec, deployed by Pulumi onto VMs or containers."""
    ctx.meta[_PROJECT_KEY] = project


Env = Annotated[
    str, typer.Argument(help="Environment: stacks/Pulumi.<ENV>.yaml.", show_default=False)
]
TargetOverride = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        help="Deploy onto this target for this run only (the stack file is not changed).",
    ),
]


def _start(ctx: typer.Context, env: str, target: str | None, *, preflight: bool = False) -> Session:
    """The command's environment, loaded once, its engine answering (and preflight run)."""
    from virtstack import workflows

    services = _services(ctx)
    ref = _ref(ctx, env, target)
    return workflows.start(ref, services.runner, services.adapter, preflight=preflight)


def _password(session: Session, *, err: bool = False) -> None:
    """Generate the registry password if needed, and say so."""
    from virtstack import workflows
    from virtstack.secrets import PASSWORD_CONFIG_KEY

    if workflows.ensure_password(session):
        message = f"generated the registry password: secret {PASSWORD_CONFIG_KEY}"
        typer.echo(message, err=True) if err else _console().print(message)


# -- targets ----------------------------------------------------------------------------


@app.command("targets")
@_handled
def targets_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the matrix as JSON.")] = False,
) -> None:
    """The targets, what each supports, and whether its engine answers from here."""
    from virtstack import report, workflows
    from virtstack.targets import TARGETS

    reach = workflows.reach_targets(TARGETS, _services(ctx).adapter)
    if as_json:
        typer.echo(json.dumps(report.targets_json(list(TARGETS.values()), reach), indent=2))
        return
    _console().print(report.targets_table(list(TARGETS.values()), reach))


# -- new --------------------------------------------------------------------------------


def _ask_target(services: Services, what: str) -> str:
    from rich.prompt import Prompt

    from virtstack.targets import TARGETS

    if not services.interactive():
        raise UsageError(f"{what}: --target is required (one of {', '.join(TARGETS)})")
    return Prompt.ask("target", choices=list(TARGETS), console=_console())


@app.command()
@_handled
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
    from virtstack import scaffold, secrets, workflows

    services = _services(ctx)
    project = _project(ctx)
    if target is None and source is None:
        target = _ask_target(services, f"new {env}")
    made = scaffold.prepare(
        project, env, target=target, source=source, sets=sets or [], force=force
    )
    scaffold.write(made)
    console = _console()
    console.print(f"wrote {made.path} from {made.origin} (target {made.environment.target.name})")
    session = workflows.open_session(
        _ref(ctx, env, None), services.runner, services.adapter, environment=made.environment
    )
    try:
        services.runner.init(session.ref)
        generated = workflows.ensure_password(session)
    except ToolchainMissingError as exc:
        needed = secrets.needs_registry_password(made.environment.spec)
        later = " and the registry password generated" if needed else ""
        console.print(
            f"[yellow]{exc}[/]\nthe stack will be initialised{later} on first `virtstack up {env}`"
        )
        return
    console.print(f"stack {env} initialised")
    if generated:
        console.print(f"generated the registry password: secret {secrets.PASSWORD_CONFIG_KEY}")


# -- preview ----------------------------------------------------------------------------


def _write_markdown(markdown: Path, text: str) -> None:
    if str(markdown) == "-":
        typer.echo(text, nl=False)
    else:
        markdown.write_text(text)


@app.command()
@_handled
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
        session = _start(ctx, env, target, preflight=True)
        target_name = session.environment.target.name
        # The program refuses to run without the password; generating it changes nothing
        # deployed, so a preview may do it (up would do the same).
        _password(session, err=True)
        plan = workflows.preview(session, log)
    except VirtstackError as exc:
        if markdown is not None:
            failed = workflows.failed_plan(log.events, env, target_name, exc)
            _write_markdown(markdown, plan_markdown(failed))
        raise
    if markdown is not None:
        _write_markdown(markdown, plan_markdown(plan))
    if as_json:
        typer.echo(json.dumps(plan.as_json(), indent=2))
    elif str(markdown) != "-":
        _console().print(renderable(plan))


# -- up / destroy / refresh -------------------------------------------------------------


def _run(session: Session, operation: str, run: Callable[[Session, OnEvent], R]) -> R:
    """Run a Pulumi operation under a progress display, then print its one-line summary."""
    from virtstack.report import RunProgress

    console = _console()
    with RunProgress(console=console, title=f"{operation} {session.env}") as progress:
        result = run(session, progress)
    console.print(f"[bold]{session.env}[/]: {progress.headline()}")
    return result


def _deploy(session: Session, *, confirm: bool = False) -> None:
    """The common tail of up and scale: the password, the update, the summary.

    With ``confirm`` a person is shown the plan and asked first.
    """
    from virtstack import report, workflows
    from virtstack.plan.terminal import renderable
    from virtstack.runner import EventLog

    _password(session)
    console = _console()
    if confirm:
        plan = workflows.preview(session, EventLog())
        console.print(renderable(plan))
        if plan.has_changes and not typer.confirm(f"Apply these changes to {session.env}?"):
            typer.echo("nothing changed", err=True)
            raise typer.Exit(EXIT_FAILED)
    outputs = _run(session, "up", workflows.up)
    console.print(report.outputs_summary(session.env, outputs))


@app.command()
@_handled
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
) -> None:
    """Create or update everything the environment declares."""
    session = _start(ctx, env, target, preflight=True)
    # Without a terminal there is nobody to ask: the command itself is the decision.
    _deploy(session, confirm=not yes and _services(ctx).interactive())


@app.command()
@_handled
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
    from virtstack import workflows

    session = _start(ctx, env, target)
    if not yes:
        if not _services(ctx).interactive():
            raise UsageError(f"destroy {env}: pass --yes to confirm (no terminal to ask on)")
        data = "and delete its data" if delete_data else "(its data is kept)"
        uri = session.environment.uri
        if not typer.confirm(f"Destroy {env} on {uri} {data}?", default=False):
            typer.echo("nothing destroyed", err=True)
            raise typer.Exit(EXIT_FAILED)
    _run(session, "destroy", workflows.destroy)
    found = workflows.data_after_destroy(session, delete=delete_data)
    console = _console()
    if delete_data:
        deleted = ", ".join(found.deleted)
        console.print(f"deleted data: {deleted}" if deleted else "no data volumes to delete")
    elif found.kept:
        console.print(
            f"kept data: {', '.join(found.kept)} (destroy {env} --delete-data removes it)"
        )
    else:
        console.print("no data volumes were kept")


@app.command()
@_handled
def refresh(ctx: typer.Context, env: Env, target: TargetOverride = None) -> None:
    """Read the engine's actual state into the stack (drift shows in the next preview)."""
    from virtstack import workflows

    _run(_start(ctx, env, target), "refresh", workflows.refresh)


# -- status -----------------------------------------------------------------------------


@app.command()
@_handled
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

    services = _services(ctx)
    # Outputs come from the stack, not the engine: shown even when it does not answer.
    session = workflows.open_session(_ref(ctx, env, target), services.runner, services.adapter)
    found = workflows.status(session)
    if as_json:
        typer.echo(json.dumps(found.as_json(), indent=2, default=str))
    else:
        console = _console()
        console.print(report.outputs_summary(env, found.outputs))
        if found.tiers:
            console.print(report.health_table(found.tiers))
    if not found.reach.reachable:
        raise EngineUnreachableError(
            f"{found.reach.uri}: {session.adapter.kind} engine not reachable ({found.reach.detail})"
        )


# -- scale ------------------------------------------------------------------------------


@app.command()
@_handled
def scale(
    ctx: typer.Context,
    env: Env,
    tier: Annotated[str, typer.Argument(help="The tier to scale (its name).", show_default=False)],
    replicas: Annotated[
        int,
        typer.Argument(help="The new replica count, within the tier's scaling min..max.", min=0),
    ],
    target: TargetOverride = None,
) -> None:
    """Set a tier's replica count in the stack file, then run up (so it is never drift)."""
    _scale(_services(ctx), _ref(ctx, env, target), tier, replicas)


def _scale(services: Services, ref: StackRef, tier: str, replicas: int) -> None:
    """Write a tier's new replica count into the stack file, then deploy it."""
    from virtstack import workflows

    change, session = workflows.scale(ref, services.runner, services.adapter, tier, replicas)
    _console().print(f"{change.key}: {change.old} → {replicas} in {change.path}")
    _deploy(session)


@app.command()
@_handled
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

    services = _services(ctx)
    ref = _ref(ctx, env, None)
    while True:
        decisions = workflows.autoscale_step(ref, services.runner, services.adapter, window)
        for d in decisions:
            verdict = f"→ {d.desired}" if d.changes else "stays"
            _console().print(
                f"{d.tier}: {d.per_replica_per_minute:.0f} requests/replica/min "
                f"(threshold {d.threshold}), {d.replicas} replicas {verdict}"
            )
        for d in decisions:
            if d.changes:
                _scale(services, ref, d.tier, d.desired)
        if not watch:
            return
