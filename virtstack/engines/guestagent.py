"""Running a command inside a VM through its QEMU guest agent, over the libvirt connection.

No network path from this machine to the guest is needed: what the agent runs travels over
the same connection virsh uses, local or ``qemu+ssh://``.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from virtstack.engines import hostcmd
from virtstack.errors import EngineCommandError

EXEC_TIMEOUT = 30.0


@dataclass(frozen=True)
class Exec:
    """How a command run in a guest ended."""

    exitcode: int
    stdout: str
    stderr: str


def agent(uri: str, domain: str, command: str, **arguments: Any) -> Any:
    """One guest agent command to ``domain``; its ``return`` value."""
    request = {"execute": command, "arguments": arguments} if arguments else {"execute": command}
    argv = hostcmd.virsh_argv(uri, "qemu-agent-command", domain, json.dumps(request))
    return json.loads(hostcmd.run(argv, uri=uri))["return"]


class _StillRunning(Exception):
    pass


def run(uri: str, domain: str, argv: list[str], *, timeout: float = EXEC_TIMEOUT) -> Exec:
    """Run ``argv`` (no shell) inside ``domain``; its exit code and output."""
    started = agent(
        uri, domain, "guest-exec", path=argv[0], arg=argv[1:], **{"capture-output": True}
    )

    @retry(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(0.2),
        retry=retry_if_exception_type(_StillRunning),
        reraise=True,
    )
    def finished() -> dict[str, Any]:
        status: dict[str, Any] = agent(uri, domain, "guest-exec-status", pid=started["pid"])
        if not status.get("exited"):
            raise _StillRunning
        return status

    try:
        status = finished()
    except _StillRunning:
        raise EngineCommandError(
            f"{uri}: {domain}: {' '.join(argv)} still running after {timeout:g}s"
        ) from None

    def text(field: str) -> str:
        return base64.b64decode(str(status.get(field, ""))).decode(errors="replace")

    return Exec(int(status.get("exitcode", -1)), text("out-data"), text("err-data"))


def journal(uri: str, domain: str, unit: str, *, follow: bool, since: str | None) -> Iterator[str]:
    """A VM service's journal, one ``<ISO time> <text>`` line each; with ``follow`` it keeps
    asking for what came after the last line (the agent answers, it cannot stream)."""
    base = ["/bin/journalctl", "-u", unit, "-o", "short-iso-precise", "--no-pager"]
    window = ["--since", f"-{since}" if since and since[:-1].isdigit() else since] if since else []
    cursor = ""
    while True:
        after = ["--after-cursor", cursor] if cursor else window
        done = run(uri, domain, [*base, "--show-cursor", *after])
        for line in done.stdout.splitlines():
            if line.startswith("-- cursor: "):
                cursor = line.removeprefix("-- cursor: ")
            elif not line.startswith("-- "):
                yield line
        if not follow:
            return
        time.sleep(FOLLOW_EVERY)


FOLLOW_EVERY = 1.0
"""Seconds between two questions to the guest agent while following a journal."""


def main(argv: list[str]) -> int:
    """``python -m virtstack.engines.guestagent journal URI DOMAIN UNIT [--follow] [SINCE]``:
    the command ``virtstack logs`` runs per VM replica."""
    _, uri, domain, unit, *rest = argv
    follow = "--follow" in rest
    since = next((a for a in rest if a != "--follow"), None)
    try:
        for line in journal(uri, domain, unit, follow=follow, since=since):
            print(line, flush=True)
    except (EngineCommandError, KeyboardInterrupt) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
