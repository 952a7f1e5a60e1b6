"""SwarmTier: a tier's replicas as a Swarm service behind an HAProxy service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_docker as docker

from virtstack_components import names
from virtstack_components.docker.tier import LB_HEALTH_TEST
from virtstack_components.probes import health_test
from virtstack_components.swarm import service as svc
from virtstack_components.swarm.placement import MANAGER
from virtstack_components.tier import (
    SECRETS_FILE,
    TierArgs,
    haproxy_config,
    secret_command,
    secret_env_file,
)

if TYPE_CHECKING:
    from virtstack_components.swarm.placement import SwarmPlacement

HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
LB_CHECK_INTERVAL = "2s"
STOP_GRACE = "5s"
"""A stopping task leaves Swarm's DNS first; HAProxy drops it within ~3 s (its resolver's
hold), so the task's last requests finish before it is killed."""


@dataclass(frozen=True, kw_only=True)
class SwarmTierArgs:
    placement: SwarmPlacement
    tier: TierArgs
    network: pulumi.Input[str]
    """Id of the overlay network of the replicas."""
    client_networks: Sequence[pulumi.Input[str]] = ()
    """Ids of the networks of the tiers that send traffic here: the load balancer joins them."""


def _s(n: int) -> str:
    return f"{n}s"


class SwarmTier(pulumi.ComponentResource):
    """Replicas spread over the nodes, found by HAProxy through Swarm's DNS.

    A stateless tier is one replicated service (``tasks.<service>`` lists its tasks). A tier
    with a volume is one service per replica, each pinned by a node label to the node that
    holds its volume, all answering to the tier's replica alias.
    """

    endpoint: pulumi.Output[str]
    url: pulumi.Output[str]
    replica_names: list[str]
    """Services (a tier with a volume) or task names (``<service>.<slot>``)."""

    def __init__(
        self, name: str, args: SwarmTierArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("virtstack:swarm:SwarmTier", name, None, opts)
        t = args.tier
        service = names.replica_alias(name)
        self._secrets = self._secret_env(name, args)
        if t.volume is None:
            self._replicas(name, service, args)
            dns_name = names.swarm_tasks(service)
            self.replica_names = [f"{service}.{i}" for i in range(1, t.replicas + 1)]
        else:
            self.replica_names = [names.replica_name(service, i) for i in range(t.replicas)]
            for i, engine_name in enumerate(self.replica_names):
                self._stateful(name, i, engine_name, args)
            dns_name = service  # the alias every pinned replica service answers to
        self._lb(name, args, haproxy_config(name, t, dns_name=dns_name))
        self.endpoint = pulumi.Output.from_input(f"{name}:{names.LB_PORT}")
        self.url = pulumi.Output.from_input(
            f"http://{args.placement.public_address}:{t.publish.port}/" if t.publish else ""
        )
        self.register_outputs(
            {"endpoint": self.endpoint, "url": self.url, "replica_names": self.replica_names}
        )

    def _task(
        self,
        name: str,
        args: SwarmTierArgs,
        *,
        replica: str,
        mounts: Sequence[docker.ServiceTaskSpecContainerSpecMountArgs] = (),
        constraints: Sequence[str] = (),
    ) -> docker.ServiceTaskSpecArgs:
        t = args.tier
        env = {**t.env, "VIRTSTACK_TIER": name, "VIRTSTACK_REPLICA": replica}
        return docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image=t.image,
                commands=secret_command(t),
                secrets=self._secrets,
                # The node's name in the host name: a page shows where it was served.
                hostname="{{.Node.Hostname}}-" + name + "-" + replica,
                env=env,
                healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                    tests=health_test(t.health.path, t.port, t.health.timeout),
                    interval=_s(t.health.interval),
                    timeout=_s(t.health.timeout),
                    retries=t.health.retries,
                ),
                mounts=list(mounts) or None,
                stop_grace_period=STOP_GRACE,
                labels=[
                    docker.ServiceTaskSpecContainerSpecLabelArgs(label=k, value=v)
                    for k, v in {names.TIER_LABEL: name, names.ROLE_LABEL: "replica"}.items()
                ],
            ),
            networks_advanceds=[
                docker.ServiceTaskSpecNetworksAdvancedArgs(
                    id=args.network, aliases=[names.replica_alias(name)]
                )
            ],
            placement=docker.ServiceTaskSpecPlacementArgs(
                constraints=list(constraints) or None,
                prefs=["spread=node.id"],
            ),
            resources=docker.ServiceTaskSpecResourcesArgs(
                limits=docker.ServiceTaskSpecResourcesLimitsArgs(
                    nano_cpus=t.cpus * 1_000_000_000, memory_bytes=t.memory_mib * 1024 * 1024
                )
            ),
            restart_policy=svc.restart_policy(),
        )

    def _secret_env(
        self, name: str, args: SwarmTierArgs
    ) -> list[docker.ServiceTaskSpecContainerSpecSecretArgs] | None:
        """Secret env values as one Swarm secret, a file the replica's shell sources: in no
        service spec. Unnamed, so Pulumi names it: a changed value is a new secret (they
        are immutable), made before the services switch to it."""
        p, t = args.placement, args.tier
        if not t.secret_env:
            return None
        secret = docker.Secret(
            f"{name}-env",
            data=svc.b64(secret_env_file(t)),
            labels=[docker.SecretLabelArgs(label=names.NAMESPACE_LABEL, value=p.namespace)],
            opts=p.opts(self),
        )
        return [
            docker.ServiceTaskSpecContainerSpecSecretArgs(
                secret_id=secret.id, secret_name=secret.name, file_name=SECRETS_FILE
            )
        ]

    def _service(
        self, resource: str, engine_name: str, task: docker.ServiceTaskSpecArgs,
        args: SwarmTierArgs, *, replicas: int, role: str, order: str = "start-first",
        ports: Sequence[docker.ServiceEndpointSpecPortArgs] = (),
    ) -> docker.Service:  # fmt: skip
        p = args.placement
        return docker.Service(
            resource,
            name=engine_name,
            task_spec=task,
            mode=docker.ServiceModeArgs(
                replicated=docker.ServiceModeReplicatedArgs(replicas=replicas)
            ),
            endpoint_spec=svc.dnsrr(ports),
            update_config=svc.update_config(order),
            rollback_config=svc.rollback_config(order),
            auth=p.auth,
            converge_config=svc.converge(),
            labels=p.labels(role=role),
            opts=p.opts(self, ignore_changes=svc.read_back_noise(env=role == "replica")),
        )

    def _replicas(self, name: str, service: str, args: SwarmTierArgs) -> None:
        task = self._task(name, args, replica="{{.Task.Slot}}")
        self._service(
            f"{name}-replicas", service, task, args, replicas=args.tier.replicas, role="replica"
        )

    def _stateful(self, name: str, i: int, engine_name: str, args: SwarmTierArgs) -> None:
        p, t = args.placement, args.tier
        assert t.volume is not None
        data = names.replica_data_name(p.namespace, t.volume.name, i)
        mount = svc.data_mount(data, t.volume.path, namespace=p.namespace, data=t.volume.name)
        # Pinned to the node holding its volume: never restarted on an empty one elsewhere.
        task = self._task(
            name, args, replica=str(i), mounts=[mount],
            constraints=[f"node.labels.{names.data_node_label(data)}==true"],
        )  # fmt: skip
        # Stop first: two tasks must never share one volume.
        self._service(
            f"{name}-replica-{i}", engine_name, task, args, replicas=1, role="replica",
            order="stop-first",
        )  # fmt: skip

    def _lb(self, name: str, args: SwarmTierArgs, config: str) -> None:
        p, t = args.placement, args.tier
        lb = names.lb_name(name)
        cfg = docker.ServiceConfig(
            f"{lb}-config",
            name=svc.versioned(f"{lb}-cfg", config),
            data=svc.b64(config),
            opts=p.opts(self),
        )
        task = docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image=p.lb_image,
                commands=["haproxy", "-W", "-db", "-f", HAPROXY_CFG],
                configs=[
                    docker.ServiceTaskSpecContainerSpecConfigArgs(
                        config_id=cfg.id, config_name=cfg.name, file_name=HAPROXY_CFG
                    )
                ],
                healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                    tests=LB_HEALTH_TEST, interval=LB_CHECK_INTERVAL, timeout="2s", retries=2
                ),
                stop_grace_period="2s",
            ),
            networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=args.network)]
            + [
                docker.ServiceTaskSpecNetworksAdvancedArgs(id=client, aliases=[name])
                for client in args.client_networks
            ],
            # On a manager: a published port answers at the manager's address, and the
            # fault-injection tests take workers away, never the quorum.
            placement=docker.ServiceTaskSpecPlacementArgs(constraints=[MANAGER]),
            restart_policy=svc.restart_policy(),
        )
        ports = [svc.host_port(names.LB_PORT, t.publish.port)] if t.publish else []
        # A host port cannot be held twice on one node: a published LB is replaced stop-first.
        self._service(
            lb, lb, task, args, replicas=1, role="lb",
            order="stop-first" if ports else "start-first", ports=ports,
        )  # fmt: skip
