"""Load-balanced service tiers, and stacks of them wired front to back."""

from __future__ import annotations

import functools
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pulumi
import pulumi_docker as docker

from virtstack_components.cloudinit import user_data
from virtstack_components.errors import ComponentError
from virtstack_components.network import Network, NetworkArgs
from virtstack_components.placement import DockerPlacement, LibvirtPlacement
from virtstack_components.templating import render
from virtstack_components.vm import DataDisk, VirtualMachine, VirtualMachineArgs

LB_PORT = 80
"""Where every tier's load balancer listens, inside its network."""
STATS_PORT = 8404
"""HAProxy's stats page and its own liveness URI (/healthz)."""
LB_CHECK_INTERVAL = 2
"""Seconds between Docker's health checks of a load balancer; `up` waits for the first."""
LB_HEALTH_TEST = [
    "CMD", "busybox", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{STATS_PORT}/healthz"
]  # fmt: skip
DOCKER_DNS = "127.0.0.11:53"
MIN_SLOTS = 10
"""Server slots HAProxy keeps for DNS-discovered replicas; scaling within them needs no reload."""


@dataclass(frozen=True, kw_only=True)
class HealthCheck:
    """An HTTP probe of ``path`` (TCP connect when None), made by Docker and by HAProxy."""

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
    """Container image (container placement)."""
    command: Sequence[str] | None = None
    replicas: int = 1
    port: int = 8080
    health: HealthCheck = HealthCheck()
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    volume: DataVolume | None = None
    publish: Publish | None = None
    max_replicas: int = 1
    """The most replicas scaling may ask for; sizes the load balancer's server slots."""
    cpus: int = 1
    memory_mib: int = 512


@dataclass(frozen=True, kw_only=True)
class ServiceTierArgs:
    placement: DockerPlacement | LibvirtPlacement
    tier: TierArgs
    network: pulumi.Input[str] = ""
    """Docker network of the replicas (container placement)."""
    client_networks: Sequence[pulumi.Input[str]] = ()
    """Docker networks of the tiers that send traffic here: the load balancer joins them."""
    lb_image: pulumi.Input[str] = ""
    """An image with HAProxy and busybox (container placement)."""


def health_command(health: HealthCheck, port: int) -> list[str]:
    """Docker's healthcheck for a replica: the same probe HAProxy makes."""
    if health.path is None:
        # Plain `nc` with no input: busybox's has no -z, and exits 0 once it has connected.
        return ["CMD-SHELL", f"nc -w {health.timeout} 127.0.0.1 {port} </dev/null || exit 1"]
    return ["CMD-SHELL", f"wget -q -O /dev/null http://127.0.0.1:{port}{health.path} || exit 1"]


def haproxy_config(
    name: str,
    tier: TierArgs,
    servers: Sequence[tuple[str, str]] = (),
    *,
    listen_port: int = LB_PORT,
    stats_port: int = STATS_PORT,
) -> str:
    """HAProxy config for tier ``name``.

    With ``servers`` (name, address) pairs the replicas are listed (VMs); without, they
    are discovered through Docker's DNS under the alias ``<name>-replica``.
    """
    common = {
        "tier": name,
        "listen_port": listen_port,
        "stats_port": stats_port,
        "port": tier.port,
        "health": tier.health,
    }
    if servers:
        return render(
            "haproxy/static.cfg.j2",
            servers=[{"name": n, "address": a} for n, a in servers],
            **common,
        )
    return render(
        "haproxy/dns.cfg.j2",
        alias=replica_alias(name),
        slots=max(MIN_SLOTS, tier.max_replicas),
        resolver=DOCKER_DNS,
        **common,
    )


def replica_alias(name: str) -> str:
    """The network alias every replica of tier ``name`` answers to."""
    return f"{name}-replica"


def _seconds(n: int) -> str:
    return f"{n}s"


class ServiceTier(pulumi.ComponentResource):
    """N health-checked replicas behind an HAProxy load balancer.

    Containers share a network alias that HAProxy resolves through Docker's DNS, so a
    replica count change never touches the load balancer. On libvirt every replica and
    the load balancer are VMs, and HAProxy lists the replicas by address.
    """

    endpoint: pulumi.Output[str]
    """``host:port`` of the load balancer, as the tiers in front of this one reach it."""
    url: pulumi.Output[str]
    """``http://address:port/`` where the tier is published, or "" when it is not."""
    replica_names: list[str]
    """Engine names of the replicas (container or domain names)."""

    def __init__(
        self, name: str, args: ServiceTierArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("virtstack:service:ServiceTier", name, None, opts)
        p = args.placement
        t = args.tier
        if t.replicas > t.max_replicas:
            raise ComponentError(
                f"tier {name}: {t.replicas} replicas exceed max_replicas {t.max_replicas}"
            )
        self.replica_names = [f"{name}-{i}" for i in range(t.replicas)]
        if isinstance(p, DockerPlacement):
            self.endpoint = self._containers(name, args, p)
        else:
            self.endpoint = self._vms(name, args, p)
        publish = t.publish
        self.url = pulumi.Output.from_input(
            f"http://{publish.address}:{publish.port}/" if publish else ""
        )
        self.register_outputs(
            {"endpoint": self.endpoint, "url": self.url, "replica_names": self.replica_names}
        )

    def _containers(
        self, name: str, args: ServiceTierArgs, p: DockerPlacement
    ) -> pulumi.Output[str]:
        t = args.tier
        labels = [
            docker.ContainerLabelArgs(label="virtstack.namespace", value=p.namespace),
            docker.ContainerLabelArgs(label="virtstack.tier", value=name),
        ]
        alias = replica_alias(name)
        for i, engine_name in enumerate(self.replica_names):
            volumes = []
            if t.volume is not None:
                volume = docker.Volume(
                    f"{name}-data-{i}",
                    name=p.data_name(f"{t.volume.name}-{i}"),
                    # Data is kept when the replica is replaced or the stack destroyed.
                    opts=p.opts(self, retain_on_delete=True),
                )
                volumes.append(
                    docker.ContainerVolumeArgs(
                        volume_name=volume.name, container_path=t.volume.path
                    )
                )
            docker.Container(
                f"{name}-replica-{i}",
                name=engine_name,
                hostname=engine_name,
                image=t.image,
                command=list(t.command) if t.command else None,
                envs=[
                    pulumi.Output.concat(k, "=", v)
                    for k, v in {
                        **t.env,
                        "VIRTSTACK_TIER": name,
                        "VIRTSTACK_REPLICA": str(i),
                    }.items()
                ],
                networks_advanced=[
                    docker.ContainerNetworksAdvancedArgs(name=args.network, aliases=[alias])
                ],
                healthcheck=docker.ContainerHealthcheckArgs(
                    tests=health_command(t.health, t.port),
                    interval=_seconds(t.health.interval),
                    timeout=_seconds(t.health.timeout),
                    retries=t.health.retries,
                ),
                volumes=volumes,
                restart="always",
                wait=True,
                wait_timeout=120,
                labels=[
                    *labels,
                    docker.ContainerLabelArgs(label="virtstack.role", value="replica"),
                ],
                opts=p.opts(self, delete_before_replace=True),
            )
        config = haproxy_config(name, t)
        ports = (
            [
                docker.ContainerPortArgs(
                    internal=LB_PORT, external=t.publish.port, ip=t.publish.address
                )
            ]
            if t.publish
            else []
        )
        docker.Container(
            f"{name}-lb",
            name=f"{name}-lb",
            image=args.lb_image,
            command=["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"],
            uploads=[docker.ContainerUploadArgs(file="/etc/haproxy/haproxy.cfg", content=config)],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network)]
            + [
                docker.ContainerNetworksAdvancedArgs(name=client, aliases=[name])
                for client in args.client_networks
            ],
            ports=ports,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=LB_HEALTH_TEST,
                interval=f"{LB_CHECK_INTERVAL}s",
                timeout="2s",
                retries=2,
            ),
            restart="always",
            wait=True,
            wait_timeout=60,
            labels=[*labels, docker.ContainerLabelArgs(label="virtstack.role", value="lb")],
            opts=p.opts(self, delete_before_replace=True),
        )
        return pulumi.Output.from_input(f"{name}:{LB_PORT}")

    def _vms(self, name: str, args: ServiceTierArgs, p: LibvirtPlacement) -> pulumi.Output[str]:
        t = args.tier
        if t.command is None:
            raise ComponentError(f"tier {name}: VM replicas need a command to run")
        command = shlex.join(t.command)
        # Output.all() of nothing is a list, not a dict: start from an empty mapping.
        env: pulumi.Output[dict[str, str]] = (
            pulumi.Output.all(**dict(t.env)) if t.env else pulumi.Output.from_input({})
        )

        def replica_data(values: dict[str, str], replica: str) -> str:
            return user_data(
                "service",
                hostname=replica,
                user="virtstack",
                ssh_authorized_keys=[],
                service=name,
                command=command,
                env={**values, "VIRTSTACK_TIER": name},
                data_path=t.volume.path if t.volume else None,
            )

        addresses = []
        for i in range(t.replicas):
            vm = VirtualMachine(
                f"{name}-replica-{i}",
                VirtualMachineArgs(
                    placement=p,
                    hostname=f"{name}-{i}",
                    user_data=env.apply(functools.partial(replica_data, replica=f"{name}-{i}")),
                    cpus=t.cpus,
                    memory_mib=t.memory_mib,
                    data_disks=(
                        [
                            DataDisk(
                                name=p.data_name(f"{t.volume.name}-{i}"), size_gib=t.volume.size_gib
                            )
                        ]
                        if t.volume
                        else []
                    ),
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            addresses.append(vm.address)
        config = pulumi.Output.all(*addresses).apply(
            lambda found: haproxy_config(
                name, t, servers=[(f"{name}-{i}", a) for i, a in enumerate(found)]
            )
        )
        lb = VirtualMachine(
            f"{name}-lb",
            VirtualMachineArgs(
                placement=p,
                user_data=config.apply(
                    lambda cfg: user_data(
                        "lb",
                        hostname=f"{name}-lb",
                        user="virtstack",
                        ssh_authorized_keys=[],
                        haproxy_cfg=cfg,
                    )
                ),
                memory_mib=512,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return lb.address.apply(lambda a: f"{a}:{LB_PORT}")


@dataclass(frozen=True, kw_only=True)
class StackTier:
    """A tier of a stack: what it runs, where its traffic goes and its network's CIDR."""

    name: str
    args: TierArgs
    upstream: str | None = None
    cidr: str | None = None


@dataclass(frozen=True, kw_only=True)
class ServiceStackArgs:
    placement: DockerPlacement | LibvirtPlacement
    tiers: Sequence[StackTier]
    lb_image: pulumi.Input[str] = ""


UPSTREAM_ENV = "VIRTSTACK_UPSTREAM"
"""Replicas learn where to send traffic (their upstream tier's load balancer) from this."""


class ServiceStack(pulumi.ComponentResource):
    """Tiers wired in order (web -> app -> db), each reachable only from the tier before it.

    On Docker every tier has its own network; a tier's load balancer also joins the
    networks of the tiers that send traffic to it, so replicas never see another tier's
    replicas, and only a published front load balancer is reachable from the host.
    """

    tiers: dict[str, ServiceTier]
    urls: pulumi.Output[dict[str, str]]
    """Published URL of every front tier."""

    def __init__(
        self, name: str, args: ServiceStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("virtstack:service:ServiceStack", name, None, opts)
        p = args.placement
        networks: dict[str, pulumi.Input[str]] = {}
        if isinstance(p, DockerPlacement):
            fed = {t.upstream for t in args.tiers}
            for tier in args.tiers:
                networks[tier.name] = Network(
                    f"{name}-{tier.name}-net",
                    NetworkArgs(
                        placement=p,
                        cidr=tier.cidr,
                        # Only a front tier needs a route to the host (its published port).
                        internal=tier.name in fed,
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                ).engine_name
        self.tiers = {}
        # Upstream tiers first: a tier's replicas are told its upstream's address.
        for tier in _upstream_first(args.tiers):
            env = dict(tier.args.env)
            if tier.upstream is not None:
                env[UPSTREAM_ENV] = pulumi.Output.concat(
                    "http://", self.tiers[tier.upstream].endpoint
                )
            self.tiers[tier.name] = ServiceTier(
                f"{name}-{tier.name}",
                ServiceTierArgs(
                    placement=p,
                    tier=replace(tier.args, env=env),
                    network=networks.get(tier.name, ""),
                    client_networks=[
                        networks[c.name]
                        for c in args.tiers
                        if c.upstream == tier.name and c.name in networks
                    ],
                    lb_image=args.lb_image,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        fronts = {t.name: self.tiers[t.name].url for t in args.tiers if t.args.publish}
        self.urls = pulumi.Output.all(**fronts) if fronts else pulumi.Output.from_input({})
        self.register_outputs({"urls": self.urls})


def _upstream_first(tiers: Sequence[StackTier]) -> list[StackTier]:
    done: list[StackTier] = []
    pending = list(tiers)
    names = {t.name for t in tiers}
    while pending:
        ready = [
            t
            for t in pending
            if t.upstream is None or t.upstream not in names or t.upstream in {d.name for d in done}
        ]
        if not ready:
            raise ComponentError(f"tiers {[t.name for t in pending]} send traffic in a loop")
        done.extend(ready)
        pending = [t for t in pending if t not in ready]
    return done
