"""Live checks: can this machine reach an engine, and are the load balancers' backends up."""

from __future__ import annotations

import csv
import io
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_fixed

from virtstack import hostcmd
from virtstack.errors import EngineCommandError, EngineUnreachableError, VirtstackError
from virtstack.spec import EnvironmentSpec, key

PROBE_TIMEOUT = 5.0
STATS_PORT = 8404  # components.service.STATS_PORT; not imported: that pulls in Pulumi
STATS_PATH = "/stats;csv"


@dataclass(frozen=True, kw_only=True)
class Reachability:
    """Whether an engine answered, and its version or why not."""

    engine: str
    uri: str
    reachable: bool
    detail: str


def probe(engine: str, uri: str, *, timeout: float = PROBE_TIMEOUT) -> Reachability:
    """Ask the engine at ``uri`` to answer: its version (Docker) or host name (libvirt)."""
    try:
        if engine == "docker":
            argv = hostcmd.docker_argv(uri, "version", "--format", "{{.Server.Version}}")
            detail = f"Docker {hostcmd.run(argv, uri=uri, timeout=timeout).strip()}"
        elif engine == "libvirt":
            # `virsh version` asks the daemon to probe the hypervisor binary (4-16 s on a
            # quiet machine); `hostname` is one RPC round trip over the same connection.
            argv = hostcmd.virsh_argv(uri, "hostname")
            detail = f"libvirt on {hostcmd.run(argv, uri=uri, timeout=timeout).strip()}"
        else:
            raise ValueError(f"unknown engine kind {engine!r}")
    except (EngineUnreachableError, EngineCommandError) as exc:
        return Reachability(
            engine=engine, uri=uri, reachable=False, detail=str(exc).removeprefix(f"{uri}: ")
        )
    return Reachability(engine=engine, uri=uri, reachable=True, detail=detail)


Probe = Callable[[str, str], Reachability]


def require_reachable(engine: str, uri: str, probe: Probe = probe) -> Reachability:
    """The engine's :class:`Reachability`, or an error naming the URI and the config key."""
    found = probe(engine, uri)
    if not found.reachable:
        raise EngineUnreachableError(
            f"{uri}: {engine} engine not reachable ({found.detail}); "
            f"start it or fix {key('engine', 'uri')}"
        )
    return found


@dataclass(frozen=True, kw_only=True)
class ServerHealth:
    """One backend server of a load balancer, as HAProxy sees it."""

    name: str
    address: str
    status: str
    """``UP``, ``DOWN``, ``MAINT``, ``no check``, or a transition like ``DOWN 1/2``."""
    check: str
    """The last health check's result (``L7OK 200``, ``L4CON``, ...)."""

    @property
    def up(self) -> bool:
        return self.status.startswith("UP") or self.status == "no check"


@dataclass(frozen=True, kw_only=True)
class TierHealth:
    """The backends of one tier's load balancer (or why they could not be read)."""

    tier: str
    lb: str
    servers: list[ServerHealth]
    unused_slots: int = 0
    """DNS-discovered servers reserve slots up to the tier's max; these are empty."""
    error: str | None = None


# HAProxy's CSV: `type` 2 is a server row; unresolved server-template slots sit in MAINT.
_SERVER_ROW = "2"
_UNRESOLVED = "MAINT (resolution)"


def parse_stats(text: str) -> tuple[list[ServerHealth], int]:
    """The server rows of HAProxy's stats CSV, and how many slots are empty."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("# ")))
    servers: list[ServerHealth] = []
    unused = 0
    for row in reader:
        if row.get("type") != _SERVER_ROW:
            continue
        status = (row.get("status") or "").strip()
        if status == _UNRESOLVED:
            unused += 1
            continue
        result = " ".join(filter(None, (row.get("check_status"), row.get("check_code"))))
        why = ": ".join(filter(None, (row.get("check_desc"), row.get("last_chk"))))
        servers.append(
            ServerHealth(
                name=row.get("svname") or "?",
                address=(row.get("addr") or "").strip(),
                status=status or "?",
                check=f"{result} ({why})" if result and why else result or why,
            )
        )
    return servers, unused


_again = retry(
    # HAProxy restarts with its container; a read during that second is not a verdict.
    retry=retry_if_exception_type((EngineCommandError, OSError)),
    stop=stop_after_attempt(3),
    wait=wait_fixed(1),
    reraise=True,
)


@_again
def container_stats(uri: str, lb: str) -> str:
    """HAProxy's stats CSV, read from inside the load-balancer container ``lb``."""
    url = f"http://127.0.0.1:{STATS_PORT}{STATS_PATH}"
    return hostcmd.run(
        hostcmd.docker_argv(uri, "exec", lb, "busybox", "wget", "-q", "-O-", url), uri=uri
    )


@_again
def http_stats(host: str) -> str:
    """HAProxy's stats CSV from a load-balancer VM's stats port."""
    with urllib.request.urlopen(
        f"http://{host}:{STATS_PORT}{STATS_PATH}", timeout=hostcmd.DEFAULT_TIMEOUT
    ) as response:
        body: bytes = response.read()
    return body.decode()


def lb_health(
    spec: EnvironmentSpec,
    env: str,
    engine: str,
    uri: str,
    outputs: Mapping[str, Any],
    *,
    read_container: Callable[[str, str], str] = container_stats,
    read_http: Callable[[str], str] = http_stats,
) -> list[TierHealth]:
    """Every tier's load-balancer backends, live.

    Containers are read with ``docker exec`` (the stats port is not published); VM load
    balancers at their address from the stack outputs.
    """
    tiers_out = outputs.get("tiers") or {}
    found: list[TierHealth] = []
    for tier in spec.tiers:
        lb = f"{env}-{tier.name}-lb"
        try:
            if engine == "docker":
                text = read_container(uri, lb)
            else:
                endpoint = str((tiers_out.get(tier.name) or {}).get("endpoint") or "")
                host = endpoint.rpartition(":")[0]
                if not host:
                    raise EngineCommandError(f"{lb}: no address in the stack outputs (run up)")
                lb = f"{lb} ({host})"
                text = read_http(host)
        except (VirtstackError, OSError, urllib.error.URLError) as exc:
            found.append(TierHealth(tier=tier.name, lb=lb, servers=[], error=str(exc)))
            continue
        servers, unused = parse_stats(text)
        found.append(TierHealth(tier=tier.name, lb=lb, servers=servers, unused_slots=unused))
    return found
