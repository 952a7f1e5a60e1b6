"""The Pulumi CLI as the Automation API runs it, made safe to interrupt.

The stock runner starts ``pulumi`` in virtstack's own process group, so a Ctrl-C on the
terminal also reaches the language host and the provider plugins directly; and when
Python unwinds on KeyboardInterrupt it stops waiting for ``pulumi``, which then dies on a
closed pipe holding the stack's lock, with its plugins orphaned. Here ``pulumi`` runs in a
session of its own and gets exactly one SIGINT from virtstack, which is Pulumi's own
graceful cancel: operations in flight finish, the state is written, the lock is released
and the plugins are stopped. virtstack waits for that, then reports the interruption.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from pulumi.automation import CommandResult, PulumiCommand
from pulumi.automation.errors import create_command_error
from semver import VersionInfo

from virtstack.errors import RunInterruptedError

CANCEL_GRACE = 300.0
"""Seconds Pulumi may take to finish the operations in flight after a Ctrl-C."""

OnOutput = Callable[[str], None]


class GracefulPulumiCommand(PulumiCommand):
    """``pulumi`` in its own session; a Ctrl-C becomes Pulumi's graceful cancel."""

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
        on_output: OnOutput | None = None,
        on_error: OnOutput | None = None,
    ) -> CommandResult:
        # Never prompt: a run with nobody to answer must fail, not hang.
        head = args[: args.index("--")] if "--" in args else args
        argv = [
            self.command,
            *([] if "--non-interactive" in head else ["--non-interactive"]),
            *args,
        ]
        env = {**os.environ, **additional_env, "PULUMI_AUTOMATION_API": "true"}
        # Plugins next to the binary first, as the stock runner does.
        env["PATH"] = os.pathsep.join([str(Path(self.command).parent), env.get("PATH", "")])
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            encoding="utf-8",
            start_new_session=True,
        )
        out: list[str] = []
        err: list[str] = []
        readers = [
            threading.Thread(target=_read, args=(process.stdout, on_output, out), daemon=True),
            threading.Thread(target=_read, args=(process.stderr, on_error, err), daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            code = _wait(process)
        except KeyboardInterrupt:
            _cancel(process)
            raise RunInterruptedError(
                "interrupted: Pulumi cancelled the run after the operations in flight "
                "(the stack is consistent; run the command again to converge)"
            ) from None
        for reader in readers:
            reader.join()
        result = CommandResult(stdout="\n".join(out), stderr="\n".join(err), code=code)
        if code != 0:
            raise create_command_error(result)
        return result


def _read(stream: IO[str] | None, callback: OnOutput | None, lines: list[str]) -> None:
    assert stream is not None
    for line in iter(stream.readline, ""):
        line = line.rstrip()
        if callback is not None:
            callback(line)
        lines.append(line)
    stream.close()


def _wait(process: subprocess.Popen[str], timeout: float | None = None) -> int:
    """The process's exit code; short waits in a loop, so a Ctrl-C is seen at once."""
    waited = 0.0
    while True:
        try:
            return process.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            waited += 0.2
            if timeout is not None and waited >= timeout:
                raise


def _cancel(process: subprocess.Popen[str]) -> None:
    """Pulumi's graceful cancel, then nothing of its process tree left behind."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        while True:
            try:
                _wait(process, timeout=CANCEL_GRACE)
                break
            except KeyboardInterrupt:
                # A second Ctrl-C: Pulumi's own "force exit" (it may leave the lock).
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGINT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    # Plugins or the program that outlived pulumi (it leads its own process group).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
