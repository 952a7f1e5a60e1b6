"""The typer app and what every command shares: exit codes, the project, the session.

Only here does a :class:`~virtstack.errors.VirtstackError` become a message (one line per
problem, on stderr) and an exit code: 2 for bad input (:class:`BadInputError`), 1 for what
failed. The commands are in the other modules of :mod:`virtstack.cli`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, ParamSpec, TypeVar

import typer

from virtstack.errors import BadInputError, RunInterruptedError, VirtstackError

if TYPE_CHECKING:
    from rich.console import Console

    from virtstack.environment import Environment, StackRef
    from virtstack.session import Services, Session

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
"""As a shell reports a command ended by SIGINT."""
_PROJECT_KEY = "virtstack.project"

app = typer.Typer(
    name="virtstack",
    help="Deploy one environment spec onto VMs (hostos, hypervisor) or containers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


P = ParamSpec("P")
R = TypeVar("R")


def fail(exc: VirtstackError) -> NoReturn:
    for line in str(exc).splitlines() or [type(exc).__name__]:
        typer.echo(f"error: {line}", err=True)
    if isinstance(exc, BadInputError):
        raise typer.Exit(EXIT_BAD_INPUT)
    raise typer.Exit(EXIT_INTERRUPTED if isinstance(exc, RunInterruptedError) else EXIT_FAILED)


def handled(command: Callable[P, R]) -> Callable[P, R]:
    """Run ``command``, turning a VirtstackError into its message and exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except VirtstackError as exc:
            fail(exc)
        except KeyboardInterrupt:
            # A Ctrl-C while no Pulumi run was in flight (those are cancelled gracefully).
            fail(RunInterruptedError("interrupted: run the command again to converge"))

    return run


def new_console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def services_of(ctx: typer.Context) -> Services:
    from virtstack.session import Services

    root = ctx.find_root()
    if not isinstance(root.obj, Services):
        root.obj = Services.default()
    return root.obj


def project_of(ctx: typer.Context) -> Path:
    """The project directory: ``--project`` or found from here up."""
    from virtstack.environment import project_dir

    return project_dir(ctx.find_root().meta.get(_PROJECT_KEY))


def stack_ref(ctx: typer.Context, env: str, target: str | None) -> StackRef:
    from virtstack.environment import StackRef

    return StackRef(project=project_of(ctx), env=env, target=target)


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


def _completion_project(ctx: typer.Context) -> Path | None:
    """The project while completing (the app's callback has not run): None if none here."""
    from virtstack.environment import project_dir

    given = ctx.find_root().params.get("project")
    try:
        return project_dir(Path(given) if given else None)
    except VirtstackError:
        return None


def complete_env(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion: the project's environments (stack files in stacks/)."""
    from virtstack.stackfiles import environments

    project = _completion_project(ctx)
    return [e for e in environments(project) if e.startswith(incomplete)] if project else []


def complete_tier(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion: the tiers of the environment given before (read, not validated)."""
    from virtstack.stackfiles import read_config

    project, env = _completion_project(ctx), ctx.params.get("env")
    if project is None or not env:
        return []
    try:
        tiers = read_config(project, str(env)).get("virtstack:tiers") or []
    except VirtstackError:
        return []
    found = [str(t.get("name")) for t in tiers if isinstance(t, dict) and t.get("name")]
    return [t for t in found if t.startswith(incomplete)]


Env = Annotated[
    str,
    typer.Argument(
        help="Environment: stacks/Pulumi.<ENV>.yaml.",
        show_default=False,
        autocompletion=complete_env,
    ),
]
TargetOverride = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        help="Deploy onto this target for this run only (the stack file is not changed).",
    ),
]


def start_session(
    ctx: typer.Context,
    env: str,
    target: str | None,
    *,
    check: bool = True,
    preflight: bool = False,
    keep_orphans: bool = False,
    environment: Environment | None = None,
) -> Session:
    """The command's environment, loaded once; with ``check`` its engine answering."""
    from virtstack.session import open_session

    ref, services = stack_ref(ctx, env, target), services_of(ctx)
    if not check:
        return open_session(ref, services, environment=environment)
    from virtstack import workflows

    return workflows.start(
        ref, services, environment=environment, preflight=preflight, keep_orphans=keep_orphans
    )


def holding(ctx: typer.Context, env: str, command: str) -> AbstractContextManager[None]:
    """The environment held for this command; a second command on it is refused."""
    from virtstack import locks

    return locks.hold(stack_ref(ctx, env, None).project, env, command)


def announce_password(session: Session) -> None:
    """Generate the registry password if needed, and say so."""
    from virtstack import workflows
    from virtstack.secrets import PASSWORD_CONFIG_KEY

    if workflows.ensure_password(session):
        new_console().print(f"generated the registry password: secret {PASSWORD_CONFIG_KEY}")
