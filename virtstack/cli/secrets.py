"""Commands on an environment's named secrets: values tiers use as ``{secret: NAME}``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from virtstack.cli.base import Env, app, handled, new_console, services_of, stack_ref

secret_app = typer.Typer(help="An environment's named secrets (tier env values).")
app.add_typer(secret_app, name="secret")

SecretName = Annotated[
    str, typer.Argument(help="The secret's name, as tiers name it: {secret: NAME}.")
]


@secret_app.command("set")
@handled
def set_secret(ctx: typer.Context, env: Env, name: SecretName) -> None:
    """Store a secret, read from standard input (or asked for, hidden): never from argv."""
    from virtstack import secrets

    if sys.stdin.isatty():
        value = typer.prompt(f"{name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().removesuffix("\n")
    secrets.set_named_secret(services_of(ctx).runner, stack_ref(ctx, env, None), name, value)
    new_console().print(f"{env}: secret {name} stored (encrypted in the stack file)")


@secret_app.command("list")
@handled
def list_secrets(ctx: typer.Context, env: Env) -> None:
    """The names of ENV's secrets and the tier env values that use each (never values)."""
    from virtstack import secrets

    for line in secrets.describe(stack_ref(ctx, env, None)):
        typer.echo(line)
