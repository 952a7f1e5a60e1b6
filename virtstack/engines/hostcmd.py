"""The docker and virsh command-line clients, pointed at an environment's engine.

Adapters talk to engines directly only to check on them (reachability, load-balancer
stats, data volumes); everything virtstack deploys goes through Pulumi.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from virtstack.engines.base import Reachability
from virtstack.errors import EngineCommandError, EngineUnreachableError

DEFAULT_TIMEOUT = 8.0
PROBE_TIMEOUT = 5.0
SSH_CONNECT_TIMEOUT = 10
"""Seconds ssh waits for a remote engine's host to answer (also bounds virsh, which
otherwise waits forever for a silent host)."""
REMOTE_SLACK = 2 * SSH_CONNECT_TIMEOUT
"""Added to a command's timeout when it goes over ssh (connection and key exchange)."""
SLOW_TIMEOUT = 90.0
"""For libvirt calls that probe every emulator on the host first (``virsh capabilities``)."""
LONG_TIMEOUT = 3600.0
"""For commands that copy data: bounded, but by the size of the data."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


def retry_transient(call: Callable[_P, _R]) -> Callable[_P, _R]:
    """``call``, tried up to three times a second apart on an engine's command error."""

    @functools.wraps(call)
    def tried(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        # tenacity is imported on the first call: engine adapters load as a command starts.
        from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_fixed

        return retry(
            # A load balancer restarts with its container or VM; a read during that second
            # is not a verdict.
            retry=retry_if_exception_type((EngineCommandError, OSError)),
            stop=stop_after_attempt(3),
            wait=wait_fixed(1),
            reraise=True,
        )(call)(*args, **kwargs)

    return tried


class EngineUri(str):
    """An engine URI that carries the ssh options (``engine.ssh_opts``) to reach it.

    A ``str``, so messages and records show the URI alone; every client virtstack runs
    against it (:func:`run`) gets the options too.
    """

    ssh_opts: tuple[str, ...]
    tls: tuple[str, str, str] | None
    """CA certificate, client certificate and key files (``tcp://`` Docker engines)."""

    def __new__(
        cls, uri: str, ssh_opts: Sequence[str] = (), tls: tuple[str, str, str] | None = None
    ) -> EngineUri:
        made = super().__new__(cls, uri)
        made.ssh_opts = tuple(ssh_opts)
        made.tls = tls
        return made


def ssh_opts_of(uri: str) -> tuple[str, ...]:
    """The ssh options an engine URI carries (none for a plain string)."""
    return getattr(uri, "ssh_opts", ())


def over_ssh(uri: str) -> bool:
    """Whether clients reach the engine at ``uri`` by running ``ssh``."""
    scheme = urlsplit(uri).scheme
    return scheme == "ssh" or scheme.endswith("+ssh")


def ssh_argv(uri: str) -> list[str]:
    """``ssh`` with the engine's options first (OpenSSH keeps an option's first value), then
    virtstack's: never prompt, and give up on a silent host."""
    return [
        shutil.which("ssh") or "ssh",
        *ssh_opts_of(uri),
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT}",
    ]  # fmt: skip


@contextlib.contextmanager
def client_env(uri: str) -> Iterator[dict[str, str] | None]:
    """The environment for a client of ``uri``: over ssh, a private ``ssh`` first on PATH.

    docker and virsh run ``ssh`` from PATH and take no ssh options of their own; a wrapper
    that adds the engine's options, in a directory of this run's own, is how they reach
    them without touching anyone's ssh configuration.
    """
    if not over_ssh(uri):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="virtstack-ssh-") as folder:
        wrapper = Path(folder) / "ssh"
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.join(ssh_argv(uri))} "$@"\n')
        wrapper.chmod(0o700)
        yield {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"}


def ssh_run(uri: str, *command: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Run ``command`` on the host of an ``ssh://`` or ``qemu+ssh://`` engine."""
    parts = urlsplit(uri)
    target = f"{parts.username}@{parts.hostname}" if parts.username else str(parts.hostname)
    port = ["-p", str(parts.port)] if parts.port else []
    return run([*ssh_argv(uri), *port, "--", target, shlex.join(command)], uri=uri, timeout=timeout)


def is_local(uri: str) -> bool:
    """Whether an engine URI points at this machine without a network hop.

    An engine reached over ssh counts as remote even at 127.0.0.1: its ssh options may
    lead anywhere, so nothing about it is read from this machine directly.
    """
    if over_ssh(uri):
        return False
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
    """``docker`` against the engine at ``uri`` (over ssh, :func:`run` adds its options)."""
    tls: tuple[str, str, str] | None = getattr(uri, "tls", None)
    if tls is None:
        return ["docker", "--host", uri, *args]
    ca, cert, key = tls
    return [
        "docker", "--host", uri, "--tlsverify",
        "--tlscacert", ca, "--tlscert", cert, "--tlskey", key, *args,
    ]  # fmt: skip


def virsh_argv(uri: str, *args: str) -> list[str]:
    """``virsh`` against the libvirt at ``uri`` (over ssh, :func:`run` adds its options)."""
    return ["virsh", "--quiet", "-c", uri, *args]


def run(argv: Sequence[str], *, uri: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """stdout of ``argv``; its first error line, naming ``uri``, if it fails.

    A missing client or a command that hangs past ``timeout`` means the engine cannot be
    reached from here (:class:`EngineUnreachableError`); a non-zero exit is a failed
    command (:class:`EngineCommandError`).
    """
    if shutil.which(argv[0]) is None:
        raise EngineUnreachableError(f"{uri}: the {argv[0]} client is not installed here")
    if over_ssh(uri):
        timeout += REMOTE_SLACK
    try:
        with client_env(uri) as env:
            done = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
                env=env,
            )
    except subprocess.TimeoutExpired:
        raise EngineUnreachableError(
            f"{uri}: no answer within {timeout:g}s ({' '.join(argv[:4])} ...)"
        ) from None
    if done.returncode != 0:
        raise EngineCommandError(f"{uri}: {first_line(done.stderr or done.stdout)}")
    return done.stdout


GENERIC = ("failed to connect to the hypervisor",)
"""First lines that say nothing on their own: virsh puts the reason on the next line."""


def first_line(text: str) -> str:
    """The first telling line of a client's output, without its ``error:`` prefix."""
    lines = [
        line.strip().removeprefix("error: ").removeprefix("Error: ")
        for line in text.splitlines()
        if line.strip()
    ]
    if not lines:
        return "failed without a message"
    if lines[0] in GENERIC and len(lines) > 1:
        return f"{lines[0]}: {lines[1]}"
    return lines[0]
