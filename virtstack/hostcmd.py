"""The docker and virsh command-line clients, pointed at an environment's engine.

virtstack talks to engines directly only to check on them (reachability, load-balancer
stats, data volumes); everything it deploys goes through Pulumi.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from virtstack.errors import EngineCommandError, EngineUnreachableError

DEFAULT_TIMEOUT = 8.0


def docker_argv(uri: str, *args: str) -> list[str]:
    """``docker`` against the engine at ``uri``."""
    return ["docker", "--host", uri, *args]


def virsh_argv(uri: str, *args: str) -> list[str]:
    """``virsh`` against the libvirt at ``uri``."""
    return ["virsh", "--quiet", "-c", uri, *args]


def run(argv: Sequence[str], *, uri: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """stdout of ``argv``; its first error line, naming ``uri``, if it fails.

    A missing client or a command that hangs past ``timeout`` means the engine cannot be
    reached from here (:class:`EngineUnreachableError`); a non-zero exit is a failed
    command (:class:`EngineCommandError`).
    """
    if shutil.which(argv[0]) is None:
        raise EngineUnreachableError(f"{uri}: the {argv[0]} client is not installed here")
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise EngineUnreachableError(
            f"{uri}: no answer within {timeout:g}s ({' '.join(argv[:4])} ...)"
        ) from None
    if done.returncode != 0:
        raise EngineCommandError(f"{uri}: {first_line(done.stderr or done.stdout)}")
    return done.stdout


def first_line(text: str) -> str:
    """The first non-empty line of a client's output, without its ``error:`` prefix."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line.removeprefix("error: ").removeprefix("Error: ")
    return "failed without a message"
