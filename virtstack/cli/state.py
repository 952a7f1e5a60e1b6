"""Commands that repair what an earlier run left behind: a stale lock, data under old names."""

from __future__ import annotations

import typer

from virtstack.cli.base import Env, app, handled, holding, new_console, start_session


@app.command()
@handled
def unlock(ctx: typer.Context, env: Env) -> None:
    """Clear the lock a crashed run left on ENV's stack (refused while its holder runs)."""
    from virtstack import workflows

    with holding(ctx, env, "unlock"):
        cleared = workflows.unlock(start_session(ctx, env, None, check=False))
    console = new_console()
    if not cleared:
        console.print(f"{env}: not locked")
    for holder in cleared:
        console.print(f"{env}: cleared the lock of {holder}")


@app.command("migrate-data")
@handled
def migrate_data(ctx: typer.Context, env: Env) -> None:
    """Copy ENV's data from virtstack 0.1's names to the current ones (old copies stay)."""
    from virtstack import workflows

    with holding(ctx, env, "migrate-data"):
        copied = workflows.migrate_data(start_session(ctx, env, None))
    console = new_console()
    if not copied:
        console.print(f"{env}: nothing to migrate")
    for old, new in copied.items():
        console.print(f"{env}: copied {old} → {new} (delete {old} once {env} serves again)")
