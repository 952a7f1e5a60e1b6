"""The virtstack command line, thin over operations, scaffold, diff, health and data.

Only here does a :class:`~virtstack.errors.VirtstackError` become a message (one line per
problem, on stderr) and an exit code: 2 for bad input, 1 for what failed. Pulumi and the
targets are imported inside commands so ``virtstack --help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, ParamSpec, TypeVar

import typer

from virtstack.errors import (
    EngineUnreachableError,
    EnvironmentExistsError,
    EnvironmentNotFoundError,
    SpecError,
    ToolchainMissingError,
    UsageError,
    VirtstackError,
)

if TYPE_CHECKING:
    from rich.console import Console

    from virtstack.health import Reachability, TierHealth
    from virtstack.operations import Engine, StackRef
    from virtstack.spec import EnvironmentSpec

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
_BAD_INPUT = (SpecError, EnvironmentNotFoundError, EnvironmentExistsError, UsageError)
_PROJECT_KEY = "virtstack.project"

app = typer.Typer(
    name="virtstack",
    help="Deploy one environment spec onto VMs (hostos, hypervisor) or containers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@dataclass
class Services:
    """What commands use to reach the outside world; tests swap single parts."""

    engine: Engine
    probe: Callable[[str, str], Reachability]
    interactive: Callable[[], bool]
    """Whether a person can answer prompts (stdin is a terminal)."""
    lb_health: Callable[..., list[TierHealth]]
    find_data: Callable[[EnvironmentSpec, str, str, str], list[str]]
    delete_data: Callable[[EnvironmentSpec, str, str, str], list[str]]
    preflight: Callable[[EnvironmentSpec, str], None]
    """Checks on the live engine (images, ports, guest image) before anything changes."""
    read_stats: Callable[[str, str], str]
    """HAProxy's stats CSV of a load-balancer container: (engine uri, container)."""

    @classmethod
    def default(cls) -> Services:
        from virtstack import data, health, operations, preflight

        return cls(
            engine=operations.PulumiEngine(),
            probe=health.probe,
            interactive=lambda: sys.stdin.isatty(),
            lb_health=health.lb_health,
            find_data=data.find_data,
            delete_data=data.delete_data,
            preflight=preflight.check,
            read_stats=health.container_stats,
        )


P = ParamSpec("P")
R = TypeVar("R")


def _fail(exc: VirtstackError) -> NoReturn:
    for line in str(exc).splitlines() or [type(exc).__name__]:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT if isinstance(exc, _BAD_INPUT) else EXIT_FAILED)


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
    from virtstack.operations import StackRef

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


# -- targets ----------------------------------------------------------------------------


@app.command("targets")
@_handled
def targets_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the matrix as JSON.")] = False,
) -> None:
    """The targets, what each supports, and whether its engine answers from here."""
    from virtstack import report
    from virtstack.targets import TARGETS

    services = _services(ctx)
    engines = sorted({(t.engine, t.default_uri) for t in TARGETS.values()})
    with ThreadPoolExecutor(max_workers=len(engines)) as pool:
        found = dict(zip(engines, pool.map(lambda e: services.probe(*e), engines), strict=True))
    reach = {name: found[(t.engine, t.default_uri)] for name, t in TARGETS.items()}
    if as_json:
        typer.echo(
            json.dumps(
                {
                    name: {
                        "summary": t.summary,
                        "engine": t.engine,
                        "default_uri": t.default_uri,
                        "capabilities": sorted(c.value for c in t.capabilities),
                        "reachable": reach[name].reachable,
                        "detail": reach[name].detail,
                    }
                    for name, t in TARGETS.items()
                },
                indent=2,
            )
        )
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
    from virtstack import operations, scaffold

    services = _services(ctx)
    project = _project(ctx)
    if target is None and source is None:
        target = _ask_target(services, f"new {env}")
    made = scaffold.prepare(
        project, env, target=target, source=source, sets=sets or [], force=force
    )
    scaffold.write(made)
    console = _console()
    spec = made.checked.spec
    console.print(f"wrote {made.path} from {made.origin} (target {made.checked.target.name})")
    ref = operations.StackRef(project=project, env=env)
    try:
        services.engine.init(ref)
        generated = operations.ensure_registry_password(services.engine, ref, spec)
    except ToolchainMissingError as exc:
        later = (
            " and the registry password generated"
            if operations.needs_registry_password(spec)
            else ""
        )
        console.print(
            f"[yellow]{exc}[/]\nthe stack will be initialised{later} on first `virtstack up {env}`"
        )
        return
    console.print(f"stack {env} initialised")
    if generated:
        console.print(f"generated the registry password: secret {operations.PASSWORD_CONFIG_KEY}")


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
    from virtstack import diff, health, operations

    services = _services(ctx)
    ref = _ref(ctx, env, target)
    log = operations.EventLog()
    target_name = target or ""
    try:
        checked = operations.load(ref)
        target_name = checked.target.name
        health.require_reachable(checked.target.engine, checked.uri, services.probe)
        services.preflight(checked.spec, env)
        # The program refuses to run without the password; generating it changes nothing
        # deployed, so a preview may do it (up would do the same).
        if operations.ensure_registry_password(services.engine, ref, checked.spec):
            typer.echo(
                f"generated the registry password: {operations.PASSWORD_CONFIG_KEY}", err=True
            )
        services.engine.preview(ref, log)
    except VirtstackError as exc:
        if markdown is not None:
            failed = diff.plan(log.events, env, target_name)
            failed.errors = _problems(exc)
            _write_markdown(markdown, diff.markdown(failed))
        raise
    plan = diff.plan(log.events, env, checked.target.name)
    if markdown is not None:
        _write_markdown(markdown, diff.markdown(plan))
    if as_json:
        typer.echo(json.dumps(plan.as_json(), indent=2))
    elif str(markdown) != "-":
        _console().print(diff.renderable(plan))


def _problems(exc: VirtstackError) -> list[str]:
    problems = getattr(exc, "problems", None)
    return [str(p) for p in problems] if isinstance(problems, list) else str(exc).splitlines()


# -- up / destroy / refresh -------------------------------------------------------------


def _run(services: Services, ref: StackRef, operation: str, run: Callable[..., None]) -> str:
    """Run an engine operation under a progress display; its one-line summary."""
    from virtstack.report import RunProgress

    with RunProgress(console=_console(), title=f"{operation} {ref.env}") as progress:
        run(ref, progress)
    return progress.headline()


def _deploy(ref: StackRef, services: Services, *, confirm: bool = False) -> None:
    """The common tail of up and scale: the password, the update, the summary.

    With ``confirm`` a person is shown the plan and asked first.
    """
    from virtstack import diff, operations, report

    checked = operations.load(ref)
    services.preflight(checked.spec, ref.env)
    console = _console()
    if operations.ensure_registry_password(services.engine, ref, checked.spec):
        console.print(f"generated the registry password: secret {operations.PASSWORD_CONFIG_KEY}")
    if confirm:
        log = operations.EventLog()
        services.engine.preview(ref, log)
        plan = diff.plan(log.events, ref.env, checked.target.name)
        console.print(diff.renderable(plan))
        if plan.has_changes and not typer.confirm(f"Apply these changes to {ref.env}?"):
            typer.echo("nothing changed", err=True)
            raise typer.Exit(EXIT_FAILED)
    headline = _run(services, ref, "up", services.engine.up)
    console.print(f"[bold]{ref.env}[/]: {headline}")
    console.print(report.outputs_summary(ref.env, services.engine.outputs(ref)))


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
    from virtstack import health, operations

    services = _services(ctx)
    ref = _ref(ctx, env, target)
    checked = operations.load(ref)
    health.require_reachable(checked.target.engine, checked.uri, services.probe)
    # Without a terminal there is nobody to ask: the command itself is the decision.
    _deploy(ref, services, confirm=not yes and services.interactive())


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
    from virtstack import health, operations

    services = _services(ctx)
    ref = _ref(ctx, env, target)
    checked = operations.load(ref)
    engine, uri = checked.target.engine, checked.uri
    health.require_reachable(engine, uri, services.probe)
    if not yes:
        if not services.interactive():
            raise UsageError(f"destroy {env}: pass --yes to confirm (no terminal to ask on)")
        data = "and delete its data" if delete_data else "(its data is kept)"
        if not typer.confirm(f"Destroy {env} on {uri} {data}?", default=False):
            typer.echo("nothing destroyed", err=True)
            raise typer.Exit(EXIT_FAILED)
    console = _console()
    headline = _run(services, ref, "destroy", services.engine.destroy)
    console.print(f"[bold]{env}[/]: {headline}")
    if delete_data:
        removed = services.delete_data(checked.spec, env, engine, uri)
        console.print(
            f"deleted data: {', '.join(removed)}" if removed else "no data volumes to delete"
        )
        return
    kept = services.find_data(checked.spec, env, engine, uri)
    if kept:
        console.print(f"kept data: {', '.join(kept)} (destroy {env} --delete-data removes it)")
    else:
        console.print("no data volumes were kept")


@app.command()
@_handled
def refresh(ctx: typer.Context, env: Env, target: TargetOverride = None) -> None:
    """Read the engine's actual state into the stack (drift shows in the next preview)."""
    from virtstack import health, operations

    services = _services(ctx)
    ref = _ref(ctx, env, target)
    checked = operations.load(ref)
    health.require_reachable(checked.target.engine, checked.uri, services.probe)
    headline = _run(services, ref, "refresh", services.engine.refresh)
    _console().print(f"[bold]{env}[/]: {headline}")


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
    from dataclasses import asdict

    from virtstack import operations, report

    services = _services(ctx)
    ref = _ref(ctx, env, target)
    checked = operations.load(ref)
    outputs = services.engine.outputs(ref)
    values = report.plain_outputs(outputs)
    engine, uri = checked.target.engine, checked.uri
    reach = services.probe(engine, uri)
    tiers = (
        services.lb_health(checked.spec, env, engine, uri, values)
        if reach.reachable and values
        else []
    )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "outputs": values,
                    "reachable": reach.reachable,
                    "health": [asdict(t) for t in tiers],
                },
                indent=2,
                default=str,
            )
        )
    else:
        console = _console()
        console.print(report.outputs_summary(env, outputs))
        if tiers:
            console.print(report.health_table(tiers))
    if not reach.reachable:
        raise EngineUnreachableError(f"{uri}: {engine} engine not reachable ({reach.detail})")


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
    from virtstack import health, operations

    change = operations.plan_scale(ref, tier, replicas)
    checked = change.checked
    health.require_reachable(checked.target.engine, checked.uri, services.probe)
    services.preflight(checked.spec, ref.env)  # before the file changes: a refusal leaves it
    change.write()
    _console().print(f"{change.key}: {change.old} → {replicas} in {change.path}")
    _deploy(ref, services)


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
    from virtstack import autoscale as rules
    from virtstack import health, operations

    services = _services(ctx)
    ref = _ref(ctx, env, None)
    while True:
        checked = operations.load(ref)
        if checked.target.engine != "docker":
            raise UsageError(
                f"autoscale {env}: the {checked.target.name} target has no threshold scaling"
            )
        health.require_reachable(checked.target.engine, checked.uri, services.probe)
        decisions = rules.decide(
            checked.spec, env, functools.partial(services.read_stats, checked.uri), window
        )
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
