"""The environment spec: one validated model of everything an environment declares.

The spec lives in a stack's config under the ``virtstack:`` namespace
(``stacks/Pulumi.<env>.yaml``). :func:`parse_spec` turns that mapping into an
:class:`EnvironmentSpec` or raises :class:`~virtstack.errors.SpecError` whose lines name
the config key path and the bad value. Checks that span fields (unique names, CIDR
overlaps, references between tiers) run after the per-field validation, so each error
points at the key a user has to edit.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from virtstack.errors import SpecError

NAMESPACE = "virtstack"

# Names become container names, VM hostnames and DNS aliases: keep them DNS labels.
_NAME_PATTERN = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"
_ABSOLUTE_PATH = r"^/\S*$"
Name = Annotated[str, StringConstraints(pattern=_NAME_PATTERN)]
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[int, Field(ge=1, le=3600)]
_SSH_KEY = r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/=]+( .*)?$"
SshKey = Annotated[str, StringConstraints(pattern=_SSH_KEY, strip_whitespace=True)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineSpec(_Model):
    """Where the target's engine is and how to talk to it."""

    uri: str | None = None
    """Docker host (``unix://``, ``tcp://``, ``ssh://``) or libvirt URI (``qemu:///system``,
    ``qemu+ssh://user@host/system``). Each target has a default."""
    domain_type: Literal["kvm", "qemu"] | None = None
    """libvirt domain type; hypervisor defaults to ``kvm``, hostos to ``qemu``."""
    pool_path: str | None = None
    """Directory of the libvirt storage pool for this environment's volumes."""
    ssh_opts: list[str] = []
    """Extra ssh options for ``ssh://`` and ``qemu+ssh://`` engines."""


class NetworkSpec(_Model):
    name: Name
    cidr: ipaddress.IPv4Network


class RegistrySpec(_Model):
    """An image registry with persistent storage and htpasswd auth."""

    enabled: bool = False
    port: Port = 5000
    address: ipaddress.IPv4Address = ipaddress.IPv4Address("127.0.0.1")
    """Host address the registry port is published on (container target)."""
    storage: Name = "registry-data"
    """Name of the volume (or VM data disk) holding the registry's blobs."""
    size_gib: PositiveInt = 10
    auth: bool = True
    ssh_authorized_keys: list[SshKey] = []
    """Keys the registry VM accepts besides the environment's (VM targets)."""
    username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = "virtstack"


class HealthCheckSpec(_Model):
    """How a replica's liveness is probed, by Docker and by the load balancer."""

    path: Annotated[str, StringConstraints(pattern=_ABSOLUTE_PATH)] | None = "/healthz"
    """HTTP path answered with 2xx/3xx by a live replica; ``null`` means a TCP connect."""
    interval: Seconds = 5
    timeout: Seconds = 2
    retries: Annotated[int, Field(ge=1, le=10)] = 2
    """Consecutive failures before a replica is out of rotation."""

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> HealthCheckSpec:
        if self.timeout > self.interval:
            raise ValueError(
                f"timeout ({self.timeout}s) must not exceed interval ({self.interval}s)"
            )
        return self


class VolumeSpec(_Model):
    """Where a tier keeps data that outlives its containers or VMs."""

    name: Name
    path: Annotated[str, StringConstraints(pattern=_ABSOLUTE_PATH)]
    size_gib: PositiveInt = 1


class ScalingSpec(_Model):
    """Replica bounds and the threshold rule that moves between them."""

    min: Annotated[int, Field(ge=1)] = 1
    max: Annotated[int, Field(ge=1, le=64)]
    requests_per_replica_per_minute: PositiveInt | None = None
    """Above this load per replica one replica is added; below half of it one is removed."""

    @model_validator(mode="after")
    def _ordered(self) -> ScalingSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class _Placed(_Model):
    """Something with a host name on one of the environment's networks."""

    name: Name
    network: Name | None = None
    """A network from ``networks`` (tiers: whose CIDR the tier's network uses)."""


class TierSpec(_Placed):
    """A horizontally scaled service behind its own load balancer."""

    image: str
    """Container image (container target) the replicas run."""
    command: list[str] | None = None
    """The replica's command; on VM targets it runs as a systemd service."""
    replicas: Annotated[int, Field(ge=0, le=64)] = 1
    port: Port = 8080
    health: HealthCheckSpec = HealthCheckSpec()
    env: dict[str, str] = {}
    stateful: bool = False
    volume: VolumeSpec | None = None
    upstream: Name | None = None
    """The tier this tier sends its traffic to (through that tier's load balancer)."""
    publish: Port | None = None
    """Host port of this tier's load balancer; only the front tier is published."""
    publish_address: ipaddress.IPv4Address = ipaddress.IPv4Address("127.0.0.1")
    scaling: ScalingSpec | None = None
    cpus: Annotated[int, Field(ge=1, le=64)] = 1
    memory: Annotated[int, Field(ge=128)] = 512
    """MiB per replica VM on the VM targets."""
    ssh_authorized_keys: list[SshKey] = []
    """Keys the tier's VMs (replicas and load balancer) accept besides the environment's."""


class VmSpec(_Placed):
    """Plain VMs on the VM targets."""

    count: Annotated[int, Field(ge=1, le=64)] = 1
    cpus: Annotated[int, Field(ge=1, le=64)] = 1
    memory: Annotated[int, Field(ge=128)] = 1024
    disk: Annotated[int, Field(ge=1)] = 8
    """GiB of the VM's root disk."""
    cloud_init: dict[str, Any] = {}
    """Extra cloud-config merged into the VM's user-data."""
    ssh_authorized_keys: list[SshKey] = []


class ContainerHostSpec(_Placed):
    """VMs that run a Docker engine, reachable over ``ssh://``."""

    count: Annotated[int, Field(ge=1, le=64)] = 1
    cpus: Annotated[int, Field(ge=1, le=64)] = 2
    memory: Annotated[int, Field(ge=256)] = 2048
    disk: Annotated[int, Field(ge=1)] = 20
    ssh_user: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")] = "virtstack"
    ssh_authorized_keys: list[SshKey] = []


class ImagesSpec(_Model):
    """Images virtstack itself runs: load balancers, registries and the VM guest."""

    lb: str = "virtstack/base:bookworm-1"
    """Container image with HAProxy and busybox (built by images/build.sh)."""
    registry: str = "virtstack/base:bookworm-1"
    """Container image with Debian's docker-registry and busybox."""
    guest: str | None = None
    """Directory of a guest image built by images/guest/build.sh; defaults to its cache."""


class EnvironmentSpec(_Model):
    """Everything one environment declares, independent of where it runs."""

    target: Name
    """Which target deploys it: ``hostos``, ``hypervisor`` or ``container``."""
    engine: EngineSpec = EngineSpec()
    networks: list[NetworkSpec] = []
    registry: RegistrySpec = RegistrySpec()
    images: ImagesSpec = ImagesSpec()
    tiers: list[TierSpec] = []
    vms: list[VmSpec] = []
    container_hosts: list[ContainerHostSpec] = []
    ssh_authorized_keys: list[SshKey] = []
    """Keys every VM of the environment accepts (VM targets), besides the default key."""

    def placed(self) -> list[tuple[str, Sequence[_Placed]]]:
        """Every section whose items get host names, by config key."""
        return [("tiers", self.tiers), ("vms", self.vms), ("container_hosts", self.container_hosts)]

    def tier(self, name: str) -> TierSpec:
        """The tier called ``name``."""
        return next(t for t in self.tiers if t.name == name)

    def front_tiers(self) -> list[TierSpec]:
        """Tiers no other tier sends traffic to: where requests enter."""
        fed = {t.upstream for t in self.tiers}
        return [t for t in self.tiers if t.name not in fed]

    def network_cidr(self, name: str | None) -> ipaddress.IPv4Network | None:
        """The CIDR of network ``name`` (None for None)."""
        return next((n.cidr for n in self.networks if n.name == name), None)


def key(*loc: str | int) -> str:
    """Render a location inside the spec as the config key path a user edits."""
    path = f"{NAMESPACE}:{loc[0]}" if loc else NAMESPACE
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse_spec(config: Mapping[str, Any]) -> EnvironmentSpec:
    """Validate a ``virtstack:`` config mapping (keys with or without the namespace).

    Keys of other namespaces (``docker:host``, ...) are ignored.
    """
    data = {}
    for name, value in config.items():
        namespace, sep, bare = name.rpartition(":")
        if sep and namespace != NAMESPACE:
            continue
        if bare in _SECRET_KEYS:
            continue
        data[bare] = value
    try:
        spec = EnvironmentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([_describe(error) for error in exc.errors()]) from None
    problems = list(_cross_checks(spec))
    if problems:
        raise SpecError(problems)
    return spec


# Secrets sit beside the spec in the same namespace but are read as Pulumi secrets.
REGISTRY_PASSWORD_KEY = "registry_password"
_SECRET_KEYS = frozenset({REGISTRY_PASSWORD_KEY})


# pydantic reports a pattern mismatch by the regex; say what the pattern means instead.
_PATTERN_MEANING = {
    _NAME_PATTERN: "must be a DNS label: lowercase letters, digits and '-', "
    "starting with a letter, at most 32 characters",
    _ABSOLUTE_PATH: "must be an absolute path without spaces",
    _SSH_KEY: "must be one public key line: '<type> <base64> [comment]' (ssh-ed25519, "
    "ssh-rsa, ecdsa-sha2-*, sk-*)",
}


def _describe(error: Any) -> str:
    loc = tuple(error["loc"]) or ("(root)",)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "string_pattern_mismatch":
        message = _PATTERN_MEANING.get(error["ctx"]["pattern"], message)
    if error["type"] == "extra_forbidden":
        return f"{key(*loc)}: unknown key"
    if error["type"] == "missing":
        return f"{key(*loc)}: required"
    return f"{key(*loc)}: {message} (got {error['input']!r})"


def _cross_checks(spec: EnvironmentSpec) -> Iterator[str]:
    yield from _check_networks(spec)
    yield from _check_names(spec)
    yield from _check_tiers(spec)


def _check_networks(spec: EnvironmentSpec) -> Iterator[str]:
    for i, net in enumerate(spec.networks):
        for j, other in enumerate(spec.networks[:i]):
            if net.name == other.name:
                yield f"{key('networks', i, 'name')}: {net.name!r} is already networks[{j}]"
            elif net.cidr.overlaps(other.cidr):
                yield (
                    f"{key('networks', i, 'cidr')}: {net.cidr} overlaps "
                    f"networks[{j}] ({other.name}, {other.cidr})"
                )
    known = {n.name for n in spec.networks}
    for section, items in spec.placed():
        for i, item in enumerate(items):
            if item.network is not None and item.network not in known:
                yield (
                    f"{key(section, i, 'network')}: no network named {item.network!r} "
                    f"(networks: {sorted(known) or 'none'})"
                )


def _check_names(spec: EnvironmentSpec) -> Iterator[str]:
    # Tiers, VMs and hosts share one namespace: they become host and container names.
    owners: dict[str, str] = {}
    for section, items in spec.placed():
        for i, item in enumerate(items):
            here = key(section, i, "name")
            if item.name in owners:
                yield f"{here}: {item.name!r} is already used by {owners[item.name]}"
            else:
                owners[item.name] = here
    volumes = [t.volume.name for t in spec.tiers if t.volume] + (
        [spec.registry.storage] if spec.registry.enabled else []
    )
    for name in sorted(n for n, count in Counter(volumes).items() if count > 1):
        i = next(i for i, t in enumerate(spec.tiers) if t.volume and t.volume.name == name)
        yield f"{key('tiers', i, 'volume', 'name')}: volume {name!r} is used twice"


def _check_tiers(spec: EnvironmentSpec) -> Iterator[str]:
    names = [t.name for t in spec.tiers]
    published: dict[tuple[str, int], str] = {}
    if spec.registry.enabled:
        published[(str(spec.registry.address), spec.registry.port)] = key("registry", "port")
    front = {t.name for t in spec.front_tiers()}
    for i, tier in enumerate(spec.tiers):
        if tier.stateful and tier.volume is None:
            yield f"{key('tiers', i, 'volume')}: stateful tier {tier.name!r} needs a volume"
        if tier.upstream is not None:
            if tier.upstream == tier.name:
                yield f"{key('tiers', i, 'upstream')}: tier {tier.name!r} cannot feed itself"
            elif tier.upstream not in names:
                yield (
                    f"{key('tiers', i, 'upstream')}: no tier named {tier.upstream!r} "
                    f"(tiers: {names})"
                )
        if tier.scaling is not None:
            lo, hi = tier.scaling.min, tier.scaling.max
            if not lo <= tier.replicas <= hi:
                yield (
                    f"{key('tiers', i, 'replicas')}: {tier.replicas} is outside "
                    f"scaling min..max ({lo}..{hi})"
                )
        if tier.publish is not None:
            if tier.name not in front:
                yield (
                    f"{key('tiers', i, 'publish')}: only a front tier is published; "
                    f"{tier.name!r} receives traffic from another tier"
                )
            where = (str(tier.publish_address), tier.publish)
            if where in published:
                taken = published[where]
                yield f"{key('tiers', i, 'publish')}: port {tier.publish} is taken by {taken}"
            published[where] = key("tiers", i, "publish")
    yield from _check_cycles(spec)


def _check_cycles(spec: EnvironmentSpec) -> Iterator[str]:
    upstream = {t.name: t.upstream for t in spec.tiers}
    for i, tier in enumerate(spec.tiers):
        seen = [tier.name]
        nxt = upstream.get(tier.name)
        while nxt is not None and nxt in upstream and nxt != tier.name:
            if nxt in seen:
                break
            seen.append(nxt)
            nxt = upstream[nxt]
        if nxt == tier.name and len(seen) > 1:
            chain = " -> ".join([*seen, tier.name])
            yield f"{key('tiers', i, 'upstream')}: traffic loops: {chain}"
            return
