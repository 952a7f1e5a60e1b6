"""The virtstack command line: one typer app, its commands in a module per subject.

``base`` holds the app, exit codes and what every command shares; each other module
registers its commands on import. Options, prompts and printing live here; the work is
done by plain functions (:mod:`virtstack.workflows` and friends).
"""

from virtstack.cli import backups, environments, machines, operator, secrets, state
from virtstack.cli.base import EXIT_BAD_INPUT, EXIT_FAILED, app

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "app",
    "backups",
    "environments",
    "machines",
    "operator",
    "secrets",
    "state",
]
