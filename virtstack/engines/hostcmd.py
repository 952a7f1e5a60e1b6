"""The docker and virsh command-line clients, pointed at an environment's engine.

Adapters talk to engines directly only to check on them (reachability, load-balancer
stats, data volumes); everything virtstack deploys goes through Pulumi.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from urllib.parse import urlsplit

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_fixed

from virtstack.engines.base import Reachability
from virtstack.errors import EngineCommandError, EngineUnreachableError

DEFAULT_TIMEOUT = 8.0
PROBE_TIMEOUT = 5.0
LONG_TIMEOUT = 3600.0
"""For commands that copy data: bounded, but by the size of the data."""

retry_transient = retry(
    # A load balancer restarts with its container or VM; a read during that second is
    # not a verdict.
    retry=retry_if_exception_type((EngineCommandError, OSError)),
    stop=stop_after_attempt(3),
    wait=wait_fixed(1),
    reraise=True,
)


def is_local(uri: str) -> bool:
    """Whether an engine URI points at this machine."""
    parts = urlsplit(uri)
    if parts.scheme in ("unix", "npipe"):
        return True
    if parts.scheme.startswith("qemu"):
        transport = parts.scheme.partition("+")[2]
        return transport in ("", "unix") and not parts.hostname
    return parts.hostname in (None, "localhost", "127.0.0.1", "::1")


def unreachable(kind: str, uri: str, exc: Exception) -> Reachability:
    """The :class:`Reachability` of an engine whose client failed with ``exc``."""
    return Reachability(
        engine=kind, uri=uri, reachable=False, detail=str(exc).removeprefix(f"{uri}: ")
    )


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
