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
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveInt,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from virtstack.configkeys import NAMESPACE, SECRET_KEYS, key
from virtstack.errors import SpecError

# Names become container names, VM hostnames and DNS aliases: keep them DNS labels.
_NAME_PATTERN = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"
# User strings end up in cloud-config YAML, systemd units, fstab, HAProxy configs and
# Docker's API. Rendering quotes them per consumer; what no consumer can carry is refused
# here, where the error can name the key.
# Words of a command and env values: anything a unit file and argv/environ can carry.
# Tab and newline travel escaped; other control characters (NUL above all) do not.
_TEXT_PATTERN = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
_FILE_PATTERN = r"^/[^\x00-\x1f\x7f-\x9f]*$"
_ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# A libvirt pool or volume name: one path component (libvirt keeps volumes as files).
_POOL_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.+@:-]{0,254}$"
# A mount point: cloud-init writes it into fstab (whitespace, '\' and '#' mean something
# there) and Docker reads ':' and ',' in volume specs; brackets broke the cloud-config list.
_VOLUME_PATH_PATTERN = r"^(/[A-Za-z0-9._@+=~-]+)+$"
# An origin-form request target (RFC 3986 path and query characters, %XX escapes): what
# HAProxy sends on its check line and wget requests, never a space, '#', quote or '\'.
_HEALTH_PATH_PATTERN = r"^/([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*$"
# Bounds that keep any single word or value within Linux's per-string limit for argv and
# environ (128 KiB) even as 4-byte UTF-8, and a command line within systemd's 1 MiB line.
_MAX_WORD = 32768
_MAX_COMMAND = 65536
_EXEC_PREFIXES = "-@:+!"
Name = Annotated[str, StringConstraints(pattern=_NAME_PATTERN)]
Text = Annotated[str, StringConstraints(pattern=_TEXT_PATTERN, max_length=_MAX_WORD)]
EnvName = Annotated[str, StringConstraints(pattern=_ENV_NAME_PATTERN, max_length=256)]
Port = Annotated[int, Field(ge=1, le=65535)]
# Bounds that keep a typo (an extra digit, a pasted list) from asking the engine for the
# impossible: 1 TiB of memory per VM, 64 TiB of disk, 64 of anything but tiers, whose
# chains are the program's scale goal (200 tiers, see bench/program_scale.py).
MAX_MIB = 1024 * 1024
MAX_GIB = 64 * 1024
MAX_ITEMS = 64
MAX_TIERS = 256
Gib = Annotated[int, Field(ge=1, le=MAX_GIB)]
Seconds = Annotated[int, Field(ge=1, le=3600)]
_SSH_KEY = r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/=]+( .*)?$"
SshKey = Annotated[str, StringConstraints(pattern=_SSH_KEY, strip_whitespace=True)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSpec(_Model):
    """Client certificate files for a ``tcp://`` Docker engine that verifies its clients."""

    ca: Annotated[str, StringConstraints(pattern=_LINE_PATTERN, min_length=1)]
    """The CA certificate the engine's certificate is checked against (PEM file)."""
    cert: Annotated[str, StringConstraints(pattern=_LINE_PATTERN, min_length=1)]
    key: Annotated[str, StringConstraints(pattern=_LINE_PATTERN, min_length=1)]


class EngineSpec(_Model):
    """Where the target's engine is and how to talk to it."""

    uri: str | None = None
    """Docker host (``unix://``, ``tcp://``, ``ssh://``) or libvirt URI (``qemu:///system``,
    ``qemu+ssh://user@host/system``). Each target has a default."""
    domain_type: Literal["kvm", "qemu"] | None = None
    """libvirt domain type; hypervisor defaults to ``kvm``, hostos to ``qemu``."""
    pool_path: str | None = None
    """Directory of the libvirt storage pool for this environment's volumes."""
    ssh_opts: list[Annotated[str, StringConstraints(pattern=_LINE_PATTERN, min_length=1)]] = []
    """Extra ssh options for ``ssh://`` and ``qemu+ssh://`` engines, as ssh's argv items
    (``["-i", "/path/key", "-o", "UserKnownHostsFile=/path/known_hosts"]``)."""
    tls: TlsSpec | None = None
    """Client certificates for a ``tcp://`` Docker engine."""
    insecure: bool = False
    """Allow a ``tcp://`` Docker engine without TLS (anyone on the network can drive it)."""


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
    size_gib: Gib = 10
    auth: bool = True
    ssh_authorized_keys: list[SshKey] = []
    """Keys the registry VM accepts besides the environment's (VM targets)."""
    username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = "virtstack"


class HealthCheckSpec(_Model):
    """How a replica's liveness is probed, by Docker and by the load balancer."""

    path: (
        Annotated[str, StringConstraints(pattern=_HEALTH_PATH_PATTERN, max_length=2048)] | None
    ) = "/healthz"
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
    path: Annotated[str, StringConstraints(pattern=_VOLUME_PATH_PATTERN, max_length=1024)]
    size_gib: Gib = 1


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


class SecretRef(_Model):
    """An env value kept as a Pulumi secret: ``{secret: NAME}`` names a value set with
    ``virtstack secret set ENV NAME`` (stored encrypted under ``virtstack:secrets``)."""

    secret: Name


def _env_kind(value: Any) -> str:
    return _SECRET_TAG if isinstance(value, Mapping) else _TEXT_TAG


# A plain value or {secret: NAME}: told apart by shape, so an error speaks of the one meant.
_TEXT_TAG, _SECRET_TAG = "text", "secret-ref"
EnvValue = Annotated[
    Annotated[Text, Tag(_TEXT_TAG)] | Annotated[SecretRef, Tag(_SECRET_TAG)],
    Discriminator(_env_kind),
]


class PoolVolume(_Model):
    """A volume already in a storage pool on the libvirt host."""

    pool: Annotated[str, StringConstraints(pattern=_POOL_NAME_PATTERN)]
    volume: Annotated[str, StringConstraints(pattern=_POOL_NAME_PATTERN)]


def _image_kind(value: Any) -> str:
    return _VOLUME_TAG if isinstance(value, Mapping) else _PATH_TAG


# A file path or {pool, volume}: told apart by shape, like an env value.
_PATH_TAG, _VOLUME_TAG = "path", "pool-volume"
VmImage = Annotated[
    Annotated[
        Annotated[str, StringConstraints(pattern=_FILE_PATTERN, max_length=4096)], Tag(_PATH_TAG)
    ]
    | Annotated[PoolVolume, Tag(_VOLUME_TAG)],
    Discriminator(_image_kind),
]


class HooksSpec(_Model):
    """Commands run in a replica around the copy of its volume (exec form, no shell)."""

    pre: Annotated[list[Text], Field(min_length=1)] | None = None
    post: Annotated[list[Text], Field(min_length=1)] | None = None


class BackupSpec(_Model):
    """Where ``virtstack backup`` keeps the environment's backups."""

    repository: Annotated[str, StringConstraints(pattern=_LINE_PATTERN)] | None = None
    """A restic repository (a path, ``sftp:``, ``rest:``, ``s3:``...); default: a
    repository of the environment's own under ``.virtstack/backups/``."""
    password_file: Annotated[str, StringConstraints(pattern=_LINE_PATTERN)] | None = None
    """A file (mode 0600) holding the repository's password; default: generated."""


class TierSpec(_Placed):
    """A horizontally scaled service behind its own load balancer."""

    image: str
    """Container image (container target) the replicas run."""
    command: list[Text] | None = None
    """The replica's command, as words (no shell); on VM targets a systemd service."""
    replicas: Annotated[int, Field(ge=0, le=64)] = 1
    port: Port = 8080
    health: HealthCheckSpec = HealthCheckSpec()
    env: dict[EnvName, EnvValue] = {}
    """Environment variables; a value ``{secret: NAME}`` is delivered as a secret."""
    stateful: bool = False
    volume: VolumeSpec | None = None
    upstream: Name | None = None
    """The tier this tier sends its traffic to (through that tier's load balancer)."""
    publish: Port | None = None
    """Host port of this tier's load balancer; only the front tier is published."""
    publish_address: ipaddress.IPv4Address = ipaddress.IPv4Address("127.0.0.1")
    scaling: ScalingSpec | None = None
    cpus: Annotated[int, Field(ge=1, le=64)] = 1
    memory: Annotated[int, Field(ge=128, le=MAX_MIB)] = 512
    """MiB per replica VM on the VM targets."""
    backup: HooksSpec = HooksSpec()
    ssh_authorized_keys: list[SshKey] = []
    """Keys the tier's VMs (replicas and load balancer) accept besides the environment's."""
    """Hooks around the copy of a replica's volume; without ``pre`` it is paused instead."""

    @property
    def plain_env(self) -> dict[str, str]:
        """The env values given as text."""
        return {k: v for k, v in self.env.items() if isinstance(v, str)}

    @property
    def secret_env(self) -> dict[str, str]:
        """The env values given as ``{secret: NAME}``: each variable's secret's name."""
        return {k: v.secret for k, v in self.env.items() if isinstance(v, SecretRef)}

    @field_validator("command")
    @classmethod
    def _runnable(cls, command: list[str] | None) -> list[str] | None:
        if command is None:
            return None
        if not command or not command[0]:
            raise ValueError("must start with a program to run (leave it out for the image's)")
        if command[0][0] in _EXEC_PREFIXES or command[0] == ";":
            # systemd reads these off the unquoted first word of ExecStart=, so no quoting
            # keeps them literal; no real program is named like that.
            raise ValueError(
                f"the program must not start with any of {' '.join(_EXEC_PREFIXES)} "
                "nor be ';' (systemd reads them as ExecStart= prefixes)"
            )
        if sum(len(word) + 1 for word in command) > _MAX_COMMAND:
            raise ValueError(f"must be at most {_MAX_COMMAND} characters in all")
        return command


class VmSpec(_Placed):
    """Plain VMs on the VM targets."""

    count: Annotated[int, Field(ge=1, le=64)] = 1
    cpus: Annotated[int, Field(ge=1, le=64)] = 1
    memory: Annotated[int, Field(ge=128, le=MAX_MIB)] = 1024
    disk: Gib = 8
    """GiB of the VM's root disk."""
    cloud_init: dict[str, Any] = {}
    """Extra cloud-config merged into the VM's user-data."""
    ssh_authorized_keys: list[SshKey] = []
    image: VmImage | None = None
    """The VM's own qcow2 root disk instead of the built guest's, carrying cloud-init
    (NoCloud): an absolute path on this machine, uploaded once, or ``{pool: NAME, volume:
    NAME}``, a volume already in a storage pool on the libvirt host. Either way the VM's
    root disk is a copy-on-write layer on it."""

    boot: Literal["auto", "disk", "kernel"] = "auto"
    """How a VM with its own image boots. ``disk``: BIOS from the disk's own bootloader
    (a cloud image with a partition table); ``kernel``: direct kernel boot of a bare root
    filesystem with the built guest's kernel and initrd; ``auto``: for a file, ``disk``
    when its first sector holds a partition table (MBR signature, GPT's protective MBR)
    and ``kernel`` otherwise; for a pool volume (not read before boot), ``disk``."""

    @field_validator("boot")
    @classmethod
    def _boot_needs_image(cls, boot: str, info: ValidationInfo) -> str:
        # An image that failed its own check is missing here: that error says enough.
        if boot != "auto" and "image" in info.data and info.data["image"] is None:
            raise ValueError("only a VM with an image of its own chooses how it boots")
        return boot

    @property
    def pool_image(self) -> PoolVolume | None:
        """The volume of a storage pool the VM's image is, if it is one."""
        return self.image if isinstance(self.image, PoolVolume) else None


class ContainerHostSpec(_Placed):
    """VMs that run a Docker engine, reachable over ``ssh://``."""

    count: Annotated[int, Field(ge=1, le=64)] = 1
    cpus: Annotated[int, Field(ge=1, le=64)] = 2
    memory: Annotated[int, Field(ge=256, le=MAX_MIB)] = 2048
    disk: Gib = 20
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
    networks: Annotated[list[NetworkSpec], Field(max_length=MAX_ITEMS)] = []
    registry: RegistrySpec = RegistrySpec()
    images: ImagesSpec = ImagesSpec()
    tiers: Annotated[list[TierSpec], Field(max_length=MAX_TIERS)] = []
    vms: Annotated[list[VmSpec], Field(max_length=MAX_ITEMS)] = []
    container_hosts: Annotated[list[ContainerHostSpec], Field(max_length=MAX_ITEMS)] = []
    backup: BackupSpec = BackupSpec()
    ssh_authorized_keys: Annotated[list[SshKey], Field(max_length=MAX_ITEMS)] = []
    """Keys every VM of the environment accepts (VM targets), besides the default key."""

    def placed(self) -> list[tuple[str, Sequence[_Placed]]]:
        """Every section whose items get host names, by config key."""
        return [("tiers", self.tiers), ("vms", self.vms), ("container_hosts", self.container_hosts)]

    def tier(self, name: str) -> TierSpec:
        """The tier called ``name``."""
        return next(t for t in self.tiers if t.name == name)

    def secret_refs(self) -> list[tuple[str, str]]:
        """Every ``{secret: NAME}`` env value: its config key and the secret's name."""
        return [
            (key("tiers", i, "env", var), name)
            for i, t in enumerate(self.tiers)
            for var, name in t.secret_env.items()
        ]

    def front_tiers(self) -> list[TierSpec]:
        """Tiers no other tier sends traffic to: where requests enter."""
        fed = {t.upstream for t in self.tiers}
        return [t for t in self.tiers if t.name not in fed]

    def network_cidr(self, name: str | None) -> ipaddress.IPv4Network | None:
        """The CIDR of network ``name`` (None for None)."""
        return next((n.cidr for n in self.networks if n.name == name), None)


def parse_spec(config: Mapping[str, Any]) -> EnvironmentSpec:
    """Validate a ``virtstack:`` config mapping (keys with or without the namespace).

    Keys of other namespaces (``docker:host``, ...) are ignored.
    """
    data = {}
    for name, value in config.items():
        namespace, sep, bare = name.rpartition(":")
        if sep and namespace != NAMESPACE:
            continue
        if bare in SECRET_KEYS:
            continue
        data[bare] = value
    # The checks import this module's models and patterns: imported here, not above.
    from virtstack import speccheck

    try:
        spec = EnvironmentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([speccheck.describe(error) for error in exc.errors()]) from None
    problems = list(speccheck.cross_checks(spec))
    if problems:
        raise SpecError(problems)
    return spec
