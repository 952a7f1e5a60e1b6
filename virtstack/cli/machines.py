"""Commands on an environment's machines: ssh."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from virtstack.cli.base import Env, app, handled, start_session


@app.command(context_settings={"allow_extra_args": False})
@handled
def ssh(
    ctx: typer.Context,
    env: Env,
    name: Annotated[
        str,
        typer.Argument(
            help="The machine: its domain name, or without '<ENV>-' (web-0, web-lb, registry).",
            show_default=False,
        ),
    ],
    command: Annotated[
        list[str] | None,
        typer.Argument(help="A command to run there (after --); a login shell without one."),
    ] = None,
) -> None:
    """Log in to one of the environment's VMs over SSH, or run a command there."""
    from virtstack import workflows

    session = start_session(ctx, env, None, check=False)
    argv = workflows.ssh_command(session, name, list(command or []))
    # ssh takes over the terminal and its exit code becomes ours.
    os.execvp(argv[0], argv)
