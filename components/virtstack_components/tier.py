"""What a service tier is, independent of the engine: its arguments and its HAProxy config."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pulumi

from virtstack_components import names
from virtstack_components.errors import ComponentError
from virtstack_components.templating import render

DOCKER_DNS = "127.0.0.11:53"
UPSTREAM_ENV = "VIRTSTACK_UPSTREAM"
"""Replicas learn where to send traffic (their upstream tier's load balancer) from this."""


@dataclass(frozen=True, kw_only=True)
class HealthCheck:
    """An HTTP probe of ``path`` (TCP connect when None), made by the engine and by HAProxy."""

    path: str | None = "/healthz"
    interval: int = 5
    timeout: int = 2
    retries: int = 2


@dataclass(frozen=True, kw_only=True)
class DataVolume:
    """Per-replica storage that outlives the replica."""

    name: str
    path: str
    size_gib: int = 1


@dataclass(frozen=True, kw_only=True)
class Publish:
    """A host port in front of a tier's load balancer."""

    port: int
    address: str = "127.0.0.1"


@dataclass(frozen=True, kw_only=True)
class TierArgs:
    """What one tier runs, independent of where."""

    image: pulumi.Input[str] = ""
    """Container image (container engines)."""
    command: Sequence[str] | None = None
    replicas: int = 1
    port: int = 8080
    health: HealthCheck = HealthCheck()
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Variables whose values are secrets: never in a container's config or a unit file,
    delivered in a file only the replica's root can read."""
    volume: DataVolume | None = None
    publish: Publish | None = None
    max_replicas: int = 1
    """The most replicas scaling may ask for; sizes the load balancer's server slots."""
    cpus: int = 1
    memory_mib: int = 512
    ssh_authorized_keys: Sequence[str] = ()
    """Keys the tier's VMs accept besides their placement's (VM engines)."""

    def __post_init__(self) -> None:
        if self.replicas > self.max_replicas:
            raise ComponentError(
                f"{self.replicas} replicas exceed max_replicas {self.max_replicas}"
            )


class Tier(Protocol):
    """What a stack needs of a built tier, whatever engine runs it."""

    endpoint: pulumi.Output[str]
    """``host:port`` of the load balancer, as the tiers in front of this one reach it."""
    url: pulumi.Output[str]
    """``http://address:port/`` where the tier is published, or "" when it is not."""
    replica_names: list[str]


def resolved(values: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[dict[str, str]]:
    """A mapping of inputs as one output (secret when any value is)."""
    # Output.all() of nothing is a list, not a dict: start from an empty mapping.
    return pulumi.Output.all(**values) if values else pulumi.Output.from_input({})


SECRETS_FILE = "/run/virtstack/secrets.env"
"""Secret env values, sourced by the replica's shell: Docker keeps env in the container's
(or Swarm service's) spec, which `docker inspect` shows to anyone who may talk to the engine."""


def secret_command(t: TierArgs) -> list[str] | None:
    """The replica's command; with secrets, run by a shell that first reads them."""
    if not t.secret_env:
        return list(t.command) if t.command else None
    if not t.command:
        raise ComponentError("secret env values need the tier's command (it is wrapped)")
    return ["/bin/sh", "-c", f'. {SECRETS_FILE} && exec "$@"', "virtstack", *t.command]


def secret_env_file(t: TierArgs) -> pulumi.Output[str]:
    """The content of :data:`SECRETS_FILE`: one quoted ``export`` per secret variable."""
    return resolved(t.secret_env).apply(
        lambda values: "".join(f"export {k}={shlex.quote(v)}\n" for k, v in values.items())
    )


def published_url(publish: Publish | None) -> pulumi.Output[str]:
    """The URL a published tier answers at ("" when it is not published)."""
    return pulumi.Output.from_input(f"http://{publish.address}:{publish.port}/" if publish else "")


def haproxy_config(
    name: str,
    tier: TierArgs,
    servers: Sequence[tuple[str, str]] = (),
    *,
    listen_port: int = names.LB_PORT,
    stats_port: int = names.STATS_PORT,
    dns_name: str | None = None,
) -> str:
    """HAProxy config for tier ``name``.

    With ``servers`` (name, address) pairs the replicas are listed (VMs); without, they
    are discovered through Docker's DNS under ``dns_name`` (default: the tier's replica
    alias; ``tasks.<service>`` on a Swarm).
    """
    common = {
        "tier": name,
        "backend": names.backend_name(name),
        "listen_port": listen_port,
        "stats_port": stats_port,
        "port": tier.port,
        "health": tier.health,
    }
    if servers:
        return render(
            "haproxy/static.cfg.j2",
            servers=[{"name": n, "address": a} for n, a in servers],
            admin_socket=names.ADMIN_SOCKET,
            **common,
        )
    return render(
        "haproxy/dns.cfg.j2",
        alias=dns_name or names.replica_alias(name),
        slots=max(names.MIN_SLOTS, tier.max_replicas),
        resolver=DOCKER_DNS,
        **common,
    )
