"""The swarm target: tiers as Docker Swarm services spread over a Swarm's nodes.

Declared through a manager's engine. Swarm's virtual IPs and routing mesh need IPVS, so
every service uses DNS round robin and each tier's HAProxy finds the tasks by DNS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtstack.engines.swarm import ADAPTER
from virtstack.targets.base import Capability, DeployContext, Outputs, Target
from virtstack.targets.convert import secret_env_needs_command

if TYPE_CHECKING:
    import pulumi

    from virtstack.spec import EnvironmentSpec


def deploy(spec: EnvironmentSpec, ctx: DeployContext) -> Outputs:
    """A registry service, overlay networks, tier services and their load balancers."""
    # Imported here: every command discovers every target, only a swarm program deploys.
    import pulumi
    import pulumi_docker as docker
    from virtstack_components.stack import ServiceStack, ServiceStackArgs
    from virtstack_components.swarm.network import SwarmNetwork, SwarmNetworkArgs
    from virtstack_components.swarm.placement import SwarmPlacement
    from virtstack_components.swarm.registry import SwarmRegistry, SwarmRegistryArgs

    from virtstack.targets.convert import (
        credentials,
        push_image,
        registry_outputs,
        server_tls,
        stack_outputs,
        stack_tiers,
        trust_registry,
    )

    uri = TARGET.uri(spec)
    reg = spec.registry
    manager = ADAPTER.manager_address(uri)
    registry_address = f"{manager}:{reg.port}"
    with_auth = reg.enabled and reg.auth
    provider = docker.Provider(
        f"{ctx.env}-swarm",
        host=uri,
        ssh_opts=spec.engine.ssh_opts or None,
        registry_auth=[
            docker.ProviderRegistryAuthArgs(
                # Digests are read over HTTPS, trusting the environment's CA alone (the
                # Pulumi run's SSL_CERT_FILE, see virtstack.automation).
                address=f"https://{registry_address}",
                username=reg.username,
                password=ctx.registry_password,
            )
        ]
        if with_auth
        else None,
    )
    placement = SwarmPlacement(
        namespace=ctx.env,
        provider=provider,
        lb_image=spec.images.lb,
        public_address=manager,
        # Every service carries the credentials: each node pulls with them.
        auth=docker.ServiceAuthArgs(
            server_address=registry_address,
            username=reg.username,
            password=pulumi.Output.secret(ctx.registry_password or ""),
        )
        if with_auth
        else None,
    )
    outputs: dict[str, object] = {"target": TARGET.name, "engine": uri}
    images: dict[str, pulumi.Input[str]] = {}
    if reg.enabled:
        registry = SwarmRegistry(
            f"{ctx.env}-registry",
            SwarmRegistryArgs(
                placement=placement,
                network=SwarmNetwork(
                    f"{ctx.env}-registry-net", SwarmNetworkArgs(placement=placement)
                ).network_id,
                image=spec.images.registry,
                port=reg.port,
                storage=reg.storage,
                credentials=credentials(spec, ctx),
                tls=server_tls(spec, ctx, manager),
            ),
        )
        outputs |= registry_outputs(registry)
        # Before the pushes: the manager's engine pushes, every node's pulls, verifying.
        outputs |= trust_registry(ADAPTER, uri, ctx, manager, reg.port)
        pushed = {t.image for t in spec.tiers} | ({spec.images.lb} if spec.tiers else set())
        for image in sorted(pushed):
            images[image] = push_image(
                image, registry.endpoint, provider, depends_on=registry,
                parent_name=f"{ctx.env}-image",
            ).reference  # fmt: skip
        placement = SwarmPlacement(
            namespace=ctx.env,
            provider=provider,
            lb_image=images.get(spec.images.lb, spec.images.lb),
            public_address=manager,
            auth=placement.auth,
        )
    tier_networks = {t.network for t in spec.tiers}
    for net in spec.networks:
        if net.name not in tier_networks:
            SwarmNetwork(
                f"{ctx.env}-{net.name}",
                SwarmNetworkArgs(placement=placement, cidr=str(net.cidr)),
            )
    if any(t.volume is not None for t in spec.tiers) and not pulumi.runtime.is_dry_run():
        # Node labels are the pins, outside Pulumi's state; the constraints naming them are
        # the same whichever node holds a volume, so a preview never differs.
        ADAPTER.pin_data(spec, ctx.env, uri)
    if spec.tiers:
        stack = ServiceStack(
            ctx.env,
            ServiceStackArgs(placement=placement, tiers=stack_tiers(spec, ctx, images)),
        )
        outputs |= stack_outputs(stack) | {"images": images}
    return outputs


TARGET = Target(
    name="swarm",
    summary="services spread over the nodes of a Docker Swarm (through a manager's engine)",
    adapter=ADAPTER,
    default_uri="unix:///var/lib/virtstack-swarm/vsn/vsn1/docker.sock",
    uri_schemes=("unix", "ssh", "tcp"),
    capabilities=frozenset(
        {
            Capability.SERVICE_TIERS,
            Capability.REGISTRY,
            Capability.PERSISTENT_DATA,
            Capability.REMOTE_ENGINE,
        }
    ),
    deploy=deploy,
    extra_checks=secret_env_needs_command,
)
