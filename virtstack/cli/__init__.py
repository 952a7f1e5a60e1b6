"""The virtstack command line: one typer app, its commands in a module per subject.

``base`` holds the app, exit codes and what every command shares; each other module
registers its commands on import. Options, prompts and printing live here; the work is
done by plain functions (:mod:`virtstack.workflows` and friends).
"""

import signal
import sys

from virtstack.cli import backups, environments, machines, operator, secrets, state
from virtstack.cli.base import EXIT_BAD_INPUT, EXIT_FAILED, app

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "app",
    "backups",
    "environments",
    "machines",
    "main",
    "operator",
    "secrets",
    "state",
]


RUNS_PULUMI = frozenset({"preview", "up", "destroy", "refresh", "scale", "autoscale", "restore"})
"""Commands that run Pulumi: they start importing its Automation API before typer has
even built the command line (about 0.1 s) and the environment is loaded."""


def main() -> None:
    """The ``virtstack`` command."""
    if RUNS_PULUMI & set(sys.argv[1:]):
        from virtstack.runner import warm_up

        warm_up()
    try:
        app()
    finally:
        # The command's work and its exit code are settled: a Ctrl-C while Python shuts
        # down (joining threads) would only turn that exit code into a KeyboardInterrupt.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
