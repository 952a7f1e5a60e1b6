"""Docker healthchecks of replicas, in exec form: no shell ever sees a user's string.

The replica images are busybox-based (images/busybox, images/demo), so the probes call
busybox applets by name through ``busybox`` itself and need no applet links on PATH.
"""

from __future__ import annotations

from virtstack_components.errors import ComponentError

LOOPBACK = "127.0.0.1"


def health_test(path: str | None, port: int, timeout: int) -> list[str]:
    """Docker's healthcheck ``test`` for a replica: the probe HAProxy makes too.

    ``path`` is an HTTP path (already validated by the spec): the check passes when a GET of
    it answers 2xx/3xx. ``None`` means a TCP connect to ``port``. Either way the probe gives
    up after ``timeout`` seconds on its own, so no check outlives Docker's timeout.
    """
    if not 1 <= port <= 65535:
        raise ComponentError(f"health check: port {port} is not a TCP port")
    if timeout < 1:
        raise ComponentError(f"health check: timeout {timeout}s must be at least 1s")
    if path is None:
        # busybox nc has no -z, and without input it waits for the peer to hang up, which a
        # server that waits for a request never does. With -e it execs `busybox true` on the
        # connected socket instead: 0 once connected, 1 when refused or after -w seconds.
        return [
            "CMD", "busybox", "nc", "-w", str(timeout), LOOPBACK, str(port),
            "-e", "busybox", "true",
        ]  # fmt: skip
    if not path.startswith("/") or any(c.isspace() or not c.isprintable() for c in path):
        # The spec refuses these; a URL with them would be another request, not this one.
        raise ComponentError(f"health check: path {path!r} is not an HTTP path")
    # busybox wget -T crashes in this busybox, and without a limit wget waits forever on a
    # replica that accepts but never answers: `busybox timeout` bounds it (exit 143, a failure).
    return [
        "CMD", "busybox", "timeout", str(timeout),
        "busybox", "wget", "-q", "-O", "/dev/null", f"http://{LOOPBACK}:{port}{path}",
    ]  # fmt: skip
