"""What a target is: a name, an engine, what it can do, and how it deploys a spec."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from virtstack.configkeys import key
from virtstack.engines.base import EngineAdapter
from virtstack.engines.hostcmd import EngineUri, is_local

if TYPE_CHECKING:
    import pulumi

    from virtstack.spec import EnvironmentSpec


class Capability(StrEnum):
    """Features a spec may ask for; each target declares the ones it honours."""

    SERVICE_TIERS = "service tiers"
    REGISTRY = "registry"
    PERSISTENT_DATA = "persistent data"
    VMS = "VMs"
    CONTAINER_HOSTS = "container hosts"
    THRESHOLD_SCALING = "threshold scaling"
    REMOTE_ENGINE = "remote engine"
    KVM = "KVM with the host CPU"
    AUTOSTART = "autostart with the host"
    SSH_LOGIN = "SSH logins"


@dataclass(frozen=True, kw_only=True)
class DeployContext:
    """What a deployment needs besides the spec."""

    env: str
    """The environment (stack) name; prefixes every name the engine sees."""
    registry_password: pulumi.Input[str] | None = None
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """The named secrets tiers use as env values (``{secret: NAME}``), each a secret."""
    project: Path = Path()
    """The project directory (where ``.virtstack/`` keeps the environment's SSH key)."""


Outputs = Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class Target:
    """One kind of server virtualization and the module that deploys onto it."""

    name: str
    summary: str
    adapter: EngineAdapter
    """What differs between engines outside a Pulumi run (probe, preflight, data, stats)."""
    default_uri: str
    uri_schemes: tuple[str, ...]
    capabilities: frozenset[Capability]
    deploy: Callable[[EnvironmentSpec, DeployContext], Outputs]
    extra_checks: Callable[[EnvironmentSpec], Iterable[str]] = field(default=lambda spec: ())
    ignores: Callable[[EnvironmentSpec], Iterable[str]] = field(default=lambda spec: ())
    """Config keys set in a spec that this target has no use for (each is refused)."""

    def uri(self, spec: EnvironmentSpec) -> EngineUri:
        """The engine endpoint the spec names, or this target's default (with its ssh
        options, which every client virtstack runs against it takes)."""
        tls = spec.engine.tls
        return EngineUri(
            spec.engine.uri or self.default_uri,
            spec.engine.ssh_opts,
            (tls.ca, tls.cert, tls.key) if tls else None,
        )

    def problems(self, spec: EnvironmentSpec) -> Iterator[str]:
        """Everything in ``spec`` this target cannot honour, one line each."""
        uri = self.uri(spec)
        scheme = urlsplit(uri).scheme
        if scheme not in self.uri_schemes:
            yield (
                f"{key('engine', 'uri')}: {uri!r} is not a {self.adapter.kind} endpoint for the "
                f"{self.name} target (schemes: {', '.join(self.uri_schemes)})"
            )
        for capability, where in required_capabilities(spec):
            if capability not in self.capabilities:
                yield f"{where}: the {self.name} target has no {capability}"
        yield from self.extra_checks(spec)
        for where in self.ignores(spec):
            yield f"{where}: the {self.name} target cannot honour this key; remove it"


def set_keys(spec: EnvironmentSpec, paths: Iterable[tuple[str, ...]]) -> Iterator[str]:
    """The config keys among ``paths`` (``("registry", "port")``, ``("tiers", "*",
    "cpus")``) that the spec sets explicitly, defaults aside."""
    for path in paths:
        yield from _set_at(spec, path, ())


def _set_at(node: Any, path: tuple[str, ...], done: tuple[str | int, ...]) -> Iterator[str]:
    head, rest = path[0], path[1:]
    if head == "*":
        for i, item in enumerate(node):
            yield from _set_at(item, rest, (*done, i))
    elif head in node.model_fields_set:
        if rest:
            yield from _set_at(getattr(node, head), rest, (*done, head))
        else:
            yield key(*done, head)


def required_capabilities(spec: EnvironmentSpec) -> Iterator[tuple[Capability, str]]:
    """The capabilities ``spec`` needs, each with the config key that needs it."""
    if spec.tiers:
        yield Capability.SERVICE_TIERS, key("tiers")
    if spec.registry.enabled:
        yield Capability.REGISTRY, key("registry", "enabled")
    if spec.vms:
        yield Capability.VMS, key("vms")
    if spec.container_hosts:
        yield Capability.CONTAINER_HOSTS, key("container_hosts")
    if spec.ssh_authorized_keys:
        yield Capability.SSH_LOGIN, key("ssh_authorized_keys")
    if spec.registry.ssh_authorized_keys:
        yield Capability.SSH_LOGIN, key("registry", "ssh_authorized_keys")
    for i, tier in enumerate(spec.tiers):
        if tier.ssh_authorized_keys:
            yield Capability.SSH_LOGIN, key("tiers", i, "ssh_authorized_keys")
        if tier.volume is not None:
            yield Capability.PERSISTENT_DATA, key("tiers", i, "volume")
        if tier.scaling is not None and tier.scaling.requests_per_replica_per_minute:
            yield (
                Capability.THRESHOLD_SCALING,
                key("tiers", i, "scaling", "requests_per_replica_per_minute"),
            )
    if spec.engine.uri is not None and not is_local(spec.engine.uri):
        yield Capability.REMOTE_ENGINE, key("engine", "uri")
