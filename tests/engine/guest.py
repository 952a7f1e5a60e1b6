"""Looking inside a VM from the host, through its QEMU guest agent (no network needed).

Thin over virtstack's own guest-agent client, on the test tier's libvirt URI.
"""

from __future__ import annotations

from tests.engine.harness import LIBVIRT_URI
from virtstack.engines import guestagent
from virtstack.engines.guestagent import Exec

__all__ = ["Exec", "cloud_init_done", "run_in"]


def run_in(domain: str, script: str) -> Exec:
    """Run ``sh -c script`` inside the VM; its exit code and output."""
    return guestagent.run_in(LIBVIRT_URI, domain, script)


def cloud_init_done(domain: str) -> str:
    """cloud-init's status in ``domain``, which must be ``done`` (``up`` waited for it)."""
    found = guestagent.cloud_init(LIBVIRT_URI, domain)
    assert found.status == "done", f"{domain}: cloud-init {found.status}: {found.errors}"
    return found.status
