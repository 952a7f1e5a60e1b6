"""Looking inside a VM from the host, through its QEMU guest agent (no network needed)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from tests.engine.harness import virsh


class AgentNotReadyError(Exception):
    """The guest agent does not answer yet (the VM is still booting)."""


@dataclass(frozen=True)
class Exec:
    exitcode: int
    stdout: str
    stderr: str


def agent(domain: str, command: str, **arguments: object) -> dict[str, object]:
    """One guest agent command; its ``return`` value."""
    request = {"execute": command, "arguments": arguments} if arguments else {"execute": command}
    done = virsh("qemu-agent-command", domain, json.dumps(request), check=False)
    if done.returncode != 0:
        raise AgentNotReadyError(f"{domain}: {done.stderr.strip()}")
    answer: dict[str, object] = json.loads(done.stdout)["return"]
    return answer


@retry(
    stop=stop_after_delay(60),
    wait=wait_fixed(0.5),
    retry=retry_if_exception_type(AssertionError),
    reraise=True,
)
def _finished(domain: str, pid: int) -> dict[str, object]:
    status = agent(domain, "guest-exec-status", pid=pid)
    assert status["exited"], f"{domain}: pid {pid} still running"
    return status


def run_in(domain: str, script: str) -> Exec:
    """Run ``sh -c script`` inside the VM; its exit code and output."""
    started = agent(
        domain, "guest-exec", path="/bin/sh", arg=["-c", script], **{"capture-output": True}
    )
    status = _finished(domain, int(started["pid"]))  # type: ignore[call-overload]

    def text(field: str) -> str:
        return base64.b64decode(str(status.get(field, ""))).decode(errors="replace")

    return Exec(int(status.get("exitcode", -1)), text("out-data"), text("err-data"))  # type: ignore[call-overload]


@retry(
    stop=stop_after_delay(600),
    wait=wait_fixed(5),
    retry=retry_if_exception_type((AgentNotReadyError, AssertionError)),
    reraise=True,
)
def cloud_init_done(domain: str) -> str:
    """Wait until cloud-init has finished in ``domain`` without errors; its status."""
    result = run_in(domain, "cloud-init status --long")
    assert "status: done" in result.stdout, f"{domain}: {result.stdout}{result.stderr}"
    return result.stdout
