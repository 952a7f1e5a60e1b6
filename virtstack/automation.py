"""Pulumi's Automation API as virtstack runs it: one CLI start per operation.

The stock objects start the CLI (about 0.4 s each) for more than the operation asked:
``pulumi version`` for every workspace, ``stack select`` for every stack, and after every
update ``stack output`` twice and ``stack history``. Here the toolchain's own stamp gives
the version, the local file backend says whether the stack exists (every command names
its stack with ``--stack`` anyway), and an update's outputs come from the checkpoint it
wrote (:mod:`virtstack.checkpoint`, secrets masked). virtstack reads no run summary.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pulumi import automation as auto
from pulumi.automation._stack import StackInitMode

from virtstack import checkpoint, pki, toolchain
from virtstack.pulumicmd import GracefulPulumiCommand

if TYPE_CHECKING:
    from virtstack.environment import StackRef


class Workspace(auto.LocalWorkspace):
    """The project's workspace on its local file backend."""

    def __init__(self, ref: StackRef, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.ref = ref

    def select_stack(self, stack_name: str) -> None:
        # Selecting only proves the stack exists: its checkpoint file says so.
        if checkpoint.checkpoint_file(self.ref) is None:
            super().select_stack(stack_name)


class Stack(auto.Stack):
    """A stack whose runs start the CLI once each."""

    workspace: Workspace

    def outputs(self) -> auto.OutputMap:
        """The latest outputs, secrets masked (read from the checkpoint, no CLI start)."""
        found = checkpoint.outputs(self.workspace.ref) or {}
        return {k: auto.OutputValue(o.value, o.secret) for k, o in found.items()}

    def info(self, show_secrets: bool = True) -> auto.UpdateSummary | None:
        """No summary: virtstack reports a run from its events (`stack history` not run)."""
        now = datetime.datetime.now(tz=datetime.UTC)
        return auto.UpdateSummary("update", now, "", {}, {}, "succeeded", end_time=now)


def stack_environment(ref: StackRef) -> dict[str, str]:
    """The variables ``ref``'s Pulumi runs get: the toolchain's, and the one CA they trust.

    The providers (Go: the file is read when they first verify a certificate, after the
    program made the CA) trust the environment's own CA and no other: its registry is the
    only HTTPS server they reach by the system's roots.
    """
    env_vars = toolchain.pulumi_environment(ref.project)  # ToolchainMissingError
    env_vars["SSL_CERT_FILE"] = str(pki.ca_file(Path(ref.project), ref.env))
    return env_vars


def open_stack(ref: StackRef) -> Stack:
    """``ref``'s stack, created in the backend unless it exists."""
    env_vars = stack_environment(ref)
    root = toolchain.toolchain_dir(ref.project)
    command = GracefulPulumiCommand(str(root), known_version=toolchain.pulumi_version(root))
    workspace = Workspace(
        ref, work_dir=str(Path(ref.project)), env_vars=env_vars, pulumi_command=command
    )
    return Stack(ref.env, workspace, StackInitMode.CREATE_OR_SELECT)
