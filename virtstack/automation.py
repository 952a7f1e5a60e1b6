"""Pulumi's Automation API for the calls virtstack's runs do not make themselves.

virtstack starts ``pulumi`` for its runs and stack creation (:mod:`virtstack.runner`);
the Automation API serves the rest (unlock, export, revealed outputs). The stock objects
start the CLI (about 0.4 s each) for more than asked: ``pulumi version`` for every
workspace and ``stack select`` for every stack. Here the toolchain's own stamp gives the
version, and the local file backend says whether the stack exists (every command names
its stack with ``--stack`` anyway).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pulumi import automation as auto
from pulumi.automation._stack import StackInitMode
from semver import VersionInfo

from virtstack import checkpoint, pulumicmd, toolchain

if TYPE_CHECKING:
    from virtstack.environment import StackRef


class GracefulPulumiCommand(auto.PulumiCommand):
    """``pulumi`` as :func:`virtstack.pulumicmd.run` runs it: a Ctrl-C cancels gracefully."""

    def __init__(self, root: str | None = None, *, known_version: str | None = None) -> None:
        if known_version is None:
            super().__init__(root)
            return
        # The toolchain's own stamp: `pulumi version` would take a CLI start to say it.
        self.command = os.path.join(root, "bin", "pulumi") if root else "pulumi"
        self.version = VersionInfo.parse(known_version.removeprefix("v"))

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: pulumicmd.OnOutput | None = None,
        on_error: pulumicmd.OnOutput | None = None,
    ) -> auto.CommandResult:
        done = pulumicmd.run(self.command, args, cwd, additional_env, on_output, on_error)
        done.check()
        return auto.CommandResult(stdout=done.stdout, stderr=done.stderr, code=done.code)


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
    """A stack of a :class:`Workspace`."""

    workspace: Workspace


def open_stack(ref: StackRef) -> Stack:
    """``ref``'s stack, which exists (:meth:`virtstack.runner.PulumiRunner.init`)."""
    from virtstack.runner import stack_environment

    env_vars = stack_environment(ref)
    root = toolchain.toolchain_dir(ref.project)
    command = GracefulPulumiCommand(str(root), known_version=toolchain.pulumi_version(root))
    workspace = Workspace(
        ref, work_dir=str(Path(ref.project)), env_vars=env_vars, pulumi_command=command
    )
    return Stack(ref.env, workspace, StackInitMode.SELECT)
