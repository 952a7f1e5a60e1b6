"""ContainerTier: health-checked replica containers behind an HAProxy container."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_docker as docker

from virtstack_components import names
from virtstack_components.compat import renamed_from
from virtstack_components.probes import health_test
from virtstack_components.tier import (
    SECRETS_FILE,
    TierArgs,
    haproxy_config,
    published_url,
    secret_command,
    secret_env_file,
)

if TYPE_CHECKING:
    from virtstack_components.docker.placement import DockerPlacement

LB_CHECK_INTERVAL = 2
"""Seconds between Docker's health checks of a load balancer; `up` waits for the first."""
LB_HEALTH_TEST = [
    "CMD", "busybox", "wget", "-q", "-O", "/dev/null",
    f"http://127.0.0.1:{names.STATS_PORT}/healthz",
]  # fmt: skip
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"


@dataclass(frozen=True, kw_only=True)
class ContainerTierArgs:
    placement: DockerPlacement
    tier: TierArgs
    network: pulumi.Input[str]
    """Docker network of the replicas."""
    client_networks: Sequence[pulumi.Input[str]] = ()
    """Networks of the tiers that send traffic here: the load balancer joins them."""


def _secret_uploads(t: TierArgs) -> list[docker.ContainerUploadArgs]:
    if not t.secret_env:
        return []
    return [docker.ContainerUploadArgs(file=SECRETS_FILE, content=secret_env_file(t))]


def _seconds(n: int) -> str:
    return f"{n}s"


class ContainerTier(pulumi.ComponentResource):
    """N replicas sharing a network alias that HAProxy resolves through Docker's DNS.

    A replica count change never touches the load balancer: it finds the replicas itself.
    """

    endpoint: pulumi.Output[str]
    """``host:port`` of the load balancer, as the tiers in front of this one reach it."""
    url: pulumi.Output[str]
    """``http://address:port/`` where the tier is published, or "" when it is not."""
    replica_names: list[str]
    """Container names of the replicas."""

    def __init__(
        self, name: str, args: ContainerTierArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "virtstack:docker:ContainerTier",
            name,
            None,
            renamed_from("virtstack:service:ServiceTier", opts),
        )
        p, t = args.placement, args.tier
        self.replica_names = [names.replica_name(name, i) for i in range(t.replicas)]
        labels = [
            docker.ContainerLabelArgs(label=names.NAMESPACE_LABEL, value=p.namespace),
            docker.ContainerLabelArgs(label="virtstack.tier", value=name),
        ]
        for i, engine_name in enumerate(self.replica_names):
            self._replica(name, i, engine_name, args, labels)
        ports = (
            [
                docker.ContainerPortArgs(
                    internal=names.LB_PORT, external=t.publish.port, ip=t.publish.address
                )
            ]
            if t.publish
            else []
        )
        lb = names.lb_name(name)
        docker.Container(
            lb,
            name=lb,
            image=p.lb_image,
            command=["haproxy", "-W", "-db", "-f", HAPROXY_CFG],
            uploads=[docker.ContainerUploadArgs(file=HAPROXY_CFG, content=haproxy_config(name, t))],
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
        self.endpoint = pulumi.Output.from_input(f"{name}:{names.LB_PORT}")
        self.url = published_url(t.publish)
        self.register_outputs(
            {"endpoint": self.endpoint, "url": self.url, "replica_names": self.replica_names}
        )

    def _replica(
        self,
        name: str,
        i: int,
        engine_name: str,
        args: ContainerTierArgs,
        labels: list[docker.ContainerLabelArgs],
    ) -> None:
        p, t = args.placement, args.tier
        volumes = []
        if t.volume is not None:
            volume = docker.Volume(
                f"{name}-data-{i}",
                name=names.replica_data_name(p.namespace, t.volume.name, i),
                labels=p.data_labels(t.volume.name),
                # Data is kept when the replica is replaced or the stack destroyed.
                opts=p.opts(self, retain_on_delete=True),
            )
            volumes.append(
                docker.ContainerVolumeArgs(volume_name=volume.name, container_path=t.volume.path)
            )
        docker.Container(
            f"{name}-replica-{i}",
            name=engine_name,
            hostname=engine_name,
            image=t.image,
            command=secret_command(t),
            uploads=_secret_uploads(t),
            envs=[
                # Plain values stay plain: an Output per variable costs the program tasks.
                f"{k}={v}" if isinstance(v, str) else pulumi.Output.concat(k, "=", v)
                for k, v in {**t.env, "VIRTSTACK_TIER": name, "VIRTSTACK_REPLICA": str(i)}.items()
            ],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=args.network, aliases=[names.replica_alias(name)]
                )
            ],
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=health_test(t.health.path, t.port, t.health.timeout),
                interval=_seconds(t.health.interval),
                timeout=_seconds(t.health.timeout),
                retries=t.health.retries,
            ),
            volumes=volumes,
            restart="always",
            wait=True,
            wait_timeout=120,
            labels=[*labels, docker.ContainerLabelArgs(label="virtstack.role", value="replica")],
            opts=p.opts(self, delete_before_replace=True),
        )
