"""The one exception hierarchy of virtstack.

Library code raises these; only the CLI turns them into a message and an exit code.
Every message is one line per problem and names the config key, host or file at fault.
"""

from __future__ import annotations

# The root and the components' own errors live with the components (the lowest layer).
from virtstack_components.errors import ComponentError, TemplateError, VirtstackError


class BadInputError(VirtstackError):
    """What the user gave is wrong (a spec, a stack file, a command-line value): exit 2."""


class SpecError(BadInputError):
    """An environment spec is malformed or asks for something its target cannot do.

    ``problems`` holds one ``"virtstack:key.path: what is wrong"`` line per problem.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ToolchainMissingError(VirtstackError):
    """The Pulumi CLI or a pinned provider plugin is not installed."""


class ToolMissingError(VirtstackError):
    """A program a command needs (Graphviz's dot, ...) is not installed here."""


class EnvironmentNotFoundError(BadInputError):
    """No stack file for the named environment."""


class EnvironmentExistsError(BadInputError):
    """An environment's stack file already exists and would be overwritten."""


class StackFileError(BadInputError):
    """A stack file is not valid YAML, or not shaped like one (a mapping with ``config:``)."""


class UsageError(BadInputError):
    """A command-line value is malformed, or missing with no terminal to ask on."""


class EngineUnreachableError(BadInputError):
    """The Docker engine or libvirt host an environment names does not answer.

    Bad input: nothing was changed, and the fix is the engine or ``engine.uri``."""


class EngineCommandError(VirtstackError):
    """A docker or virsh command against a reachable engine failed."""


class RunInterruptedError(VirtstackError):
    """The user interrupted a run; Pulumi cancelled it cleanly (exit 130, like a shell)."""


class RunStoppedError(VirtstackError):
    """virtstack stopped a run it had started before its checks ended (they failed, or
    the user interrupted): the Pulumi program ends before it declares anything."""


class EnvironmentBusyError(VirtstackError):
    """Another virtstack command holds the environment (its holder is named)."""


class OperationError(VirtstackError):
    """A Pulumi operation (preview, up, destroy, refresh) failed.

    ``problems`` holds Pulumi's error diagnostics, one line each.
    """

    def __init__(self, operation: str, env: str, problems: list[str]) -> None:
        self.operation = operation
        self.env = env
        self.problems = problems
        super().__init__("\n".join(f"{operation} {env}: {p}" for p in problems))


__all__ = [
    "BadInputError",
    "ComponentError",
    "EngineCommandError",
    "EngineUnreachableError",
    "EnvironmentBusyError",
    "EnvironmentExistsError",
    "EnvironmentNotFoundError",
    "OperationError",
    "RunInterruptedError",
    "RunStoppedError",
    "SpecError",
    "StackFileError",
    "TemplateError",
    "ToolchainMissingError",
    "UsageError",
    "VirtstackError",
]


class BackupError(VirtstackError):
    """A backup, restore or verification failed (restic, a hook, a damaged repository)."""
