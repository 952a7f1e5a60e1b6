"""Looking inside libvirt VMs through the QEMU guest agent: commands, cloud-init's verdict.

No network is needed: ``virsh qemu-agent-command`` reaches the agent over the domain's
virtio channel, on a local or remote libvirt host alike.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_delay,
    stop_when_event_set,
    wait_fixed,
)

from virtstack.engines import hostcmd
from virtstack.errors import EngineCommandError, EngineUnreachableError

READY_TIMEOUT = 900
"""Seconds a new VM may take from creation to cloud-init's end (TCG on a busy host: ~2 min)."""
ERROR_LINES = 5
"""How much of a failed VM's cloud-init log the error quotes."""

# One guest command: cloud-init's own verdict, and on error where its log says it failed.
_STATUS_SCRIPT = (
    "cloud-init status --long; rc=$?; "
    "if [ $rc -ne 0 ] || cloud-init status | grep -q error; then "
    "echo '--- errors'; grep -E 'ERROR|WARNING.*[Ff]ail|Traceback' /var/log/cloud-init.log "
    f"| head -n {ERROR_LINES}; fi"
)


class AgentNotReadyError(EngineCommandError):
    """The guest agent does not answer yet (the VM is still booting)."""


class StillRunningError(EngineCommandError):
    """cloud-init has not finished yet."""


@dataclass(frozen=True)
class Exec:
    exitcode: int
    stdout: str
    stderr: str


def agent(uri: str, domain: str, command: str, **arguments: Any) -> Any:
    """One guest agent command; its ``return`` value."""
    request = {"execute": command, "arguments": arguments} if arguments else {"execute": command}
    argv = hostcmd.virsh_argv(uri, "qemu-agent-command", domain, json.dumps(request))
    try:
        out = hostcmd.run(argv, uri=uri)
    except EngineCommandError as exc:
        raise AgentNotReadyError(f"{domain}: {exc}") from None
    return json.loads(out)["return"]


@retry(
    stop=stop_after_delay(120),
    wait=wait_fixed(0.5),
    retry=retry_if_exception_type(StillRunningError),
    reraise=True,
)
def _exited(uri: str, domain: str, pid: int) -> dict[str, Any]:
    status: dict[str, Any] = agent(uri, domain, "guest-exec-status", pid=pid)
    if not status.get("exited"):
        raise StillRunningError(f"{domain}: pid {pid} still running")
    return status


def run(uri: str, domain: str, argv: list[str]) -> Exec:
    """Run ``argv`` (no shell) inside the VM; its exit code and output."""
    capture = {"capture-output": True}
    started = agent(uri, domain, "guest-exec", path=argv[0], arg=argv[1:], **capture)
    status = _exited(uri, domain, int(started["pid"]))

    def text(field: str) -> str:
        return base64.b64decode(str(status.get(field, ""))).decode(errors="replace")

    return Exec(int(status.get("exitcode", -1)), text("out-data"), text("err-data"))


def run_in(uri: str, domain: str, script: str) -> Exec:
    """Run ``sh -c script`` inside the VM; its exit code and output."""
    return run(uri, domain, ["/bin/sh", "-c", script])


@dataclass(frozen=True)
class CloudInit:
    """cloud-init's verdict in one VM."""

    domain: str
    status: str
    """``done``, ``error``, ``running``, ``not run``."""
    errors: list[str]


def cloud_init(uri: str, domain: str) -> CloudInit:
    """What ``cloud-init status --long`` says in ``domain`` (and its log, on error)."""
    out = run_in(uri, domain, _STATUS_SCRIPT).stdout
    status_part, _, errors = out.partition("--- errors")
    status = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in status_part.splitlines()
            if ln.startswith("status:")
        ),
        "unknown",
    )
    lines = [ln.strip() for ln in errors.splitlines() if ln.strip()]
    if status == "error" and not lines:
        lines = [ln.strip() for ln in status_part.splitlines() if ln.strip()]
    return CloudInit(domain=domain, status=status, errors=lines[:ERROR_LINES])


def wait_ready(
    uri: str,
    domains: Iterable[str],
    on_done: Callable[[CloudInit], None] = lambda found: None,
    timeout: float = READY_TIMEOUT,
    interval: float = 3,
) -> list[CloudInit]:
    """Wait until cloud-init has finished in every domain (all at once); each verdict
    (``timeout`` for a VM that did not finish in time)."""
    given_up = threading.Event()

    @retry(
        # Given up (a Ctrl-C in the waiting thread): the askers stop too, not at the timeout.
        stop=stop_after_delay(timeout) | stop_when_event_set(given_up),
        wait=wait_fixed(interval),
        # A slow answer from libvirtd (it may be busy starting other VMs) is asked again.
        retry=retry_if_exception_type(
            (AgentNotReadyError, StillRunningError, EngineUnreachableError)
        ),
        reraise=True,
    )
    def finished(domain: str) -> CloudInit:
        found = cloud_init(uri, domain)
        if found.status in ("running", "not run", "unknown"):
            raise StillRunningError(f"{domain}: cloud-init {found.status}")
        return found

    def one(domain: str) -> CloudInit:
        try:
            found = finished(domain)
        except (AgentNotReadyError, StillRunningError, EngineUnreachableError) as exc:
            found = CloudInit(domain, "timeout", [f"not ready after {timeout:.0f} s: {exc}"])
        on_done(found)
        return found

    names = sorted(set(domains))
    if not names:
        return []
    pool = ThreadPoolExecutor(max_workers=min(8, len(names)))
    try:
        return list(pool.map(one, names))
    finally:
        given_up.set()
        pool.shutdown(wait=False, cancel_futures=True)


def failures(verdicts: Iterable[CloudInit]) -> list[str]:
    """One problem per VM whose cloud-init did not end well: its name, status, log lines."""
    return [
        f"{v.domain}: cloud-init {v.status}" + "".join(f"\n  {line}" for line in v.errors)
        for v in verdicts
        if v.status != "done"
    ]


def service(uri: str, domain: str, unit: str) -> tuple[int | None, str]:
    """A VM service's restart count and start time (RFC 3339, as Docker says it), asked
    of systemd inside the VM; None and "" while the agent does not answer."""
    argv = ["/bin/systemctl", "show", "--timestamp=unix", "-p", "NRestarts,ActiveEnterTimestamp"]
    try:
        done = run(uri, domain, [*argv, unit])
    except (EngineCommandError, EngineUnreachableError):
        return None, ""
    props = dict(line.partition("=")[::2] for line in done.stdout.splitlines())
    count = props.get("NRestarts", "")
    # "@<seconds>"; empty while the service never became active.
    seconds = props.get("ActiveEnterTimestamp", "").removeprefix("@")
    started = (
        datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if seconds.isdigit()
        else ""
    )
    return (int(count) if count.isdigit() else None), started


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
