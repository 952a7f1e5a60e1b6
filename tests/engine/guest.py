"""Looking inside a VM from the host, through its QEMU guest agent (no network needed).

Thin over virtstack's own guest-agent client, on the test tier's libvirt URI.
"""

from __future__ import annotations

from tests.engine.harness import LIBVIRT_URI
from virtstack.engines import guestagent
from virtstack.engines.guestagent import Exec
from virtstack.errors import OperationError

__all__ = ["Exec", "cloud_init_done", "run_in"]


def run_in(domain: str, script: str) -> Exec:
    """Run ``sh -c script`` inside the VM; its exit code and output."""
    return guestagent.run_in(LIBVIRT_URI, domain, script)


def cloud_init_done(domain: str, timeout: float = 600) -> None:
    """Wait until cloud-init has finished in ``domain`` without errors."""
    problems = guestagent.failures(guestagent.wait_ready(LIBVIRT_URI, [domain], timeout=timeout))
    if problems:
        raise OperationError("wait", domain, problems)
