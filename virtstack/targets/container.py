"""The container target: tiers as containers on a Docker engine (local or ssh://)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from virtstack.engines.docker import ADAPTER
from virtstack.spec import EnvironmentSpec, SecretRef, key
from virtstack.targets.base import Capability, DeployContext, Outputs, Target

if TYPE_CHECKING:
    import pulumi

# Pulumi, its Docker SDK and the components are imported by `deploy` alone: every
# command discovers every target, and only the program of a container stack deploys.


def deploy(spec: EnvironmentSpec, ctx: DeployContext) -> Outputs:
    """Registry, tier networks, replicas and load balancers on one Docker engine."""
    import pulumi_docker as docker
    from virtstack_components.docker.network import DockerNetwork, DockerNetworkArgs
    from virtstack_components.docker.placement import DockerPlacement
    from virtstack_components.docker.registry import ContainerRegistry, ContainerRegistryArgs
    from virtstack_components.stack import ServiceStack, ServiceStackArgs

    from virtstack.targets.convert import (
        credentials,
        push_image,
        registry_outputs,
        stack_outputs,
        stack_tiers,
    )

    uri = TARGET.uri(spec)
    reg = spec.registry
    auth = (
        [
            docker.ProviderRegistryAuthArgs(
                # http:// tells the provider the registry speaks plain HTTP (it is on
                # loopback or the engine's own host), as Docker allows for 127.0.0.0/8.
                address=f"http://{reg.address}:{reg.port}",
                username=reg.username,
                password=ctx.registry_password,
            )
        ]
        if reg.enabled and reg.auth
        else None
    )
    provider = docker.Provider(
        f"{ctx.env}-docker",
        host=uri,
        ssh_opts=spec.engine.ssh_opts or None,
        registry_auth=auth,
    )
    placement = DockerPlacement(namespace=ctx.env, provider=provider, lb_image=spec.images.lb)
    outputs: dict[str, object] = {"target": TARGET.name, "engine": uri}
    images: dict[str, pulumi.Input[str]] = {}
    if reg.enabled:
        registry = ContainerRegistry(
            f"{ctx.env}-registry",
            ContainerRegistryArgs(
                placement=placement,
                image=spec.images.registry,
                port=reg.port,
                address=str(reg.address),
                storage=reg.storage,
                credentials=credentials(spec, ctx),
            ),
        )
        outputs |= registry_outputs(registry)
        for image in sorted({t.image for t in spec.tiers}):
            images[image] = push_image(
                image,
                registry.endpoint,
                provider,
                depends_on=registry,
                parent_name=f"{ctx.env}-image",
            )
    tier_networks = {t.network for t in spec.tiers}
    for net in spec.networks:
        if net.name not in tier_networks:
            DockerNetwork(
                f"{ctx.env}-{net.name}",
                DockerNetworkArgs(placement=placement, cidr=str(net.cidr)),
            )
    if spec.tiers:
        stack = ServiceStack(
            ctx.env,
            ServiceStackArgs(placement=placement, tiers=stack_tiers(spec, ctx, images)),
        )
        outputs |= stack_outputs(stack) | {"images": images}
    return outputs


def _secrets_need_commands(spec: EnvironmentSpec) -> Iterator[str]:
    for i, tier in enumerate(spec.tiers):
        if tier.command is None and any(isinstance(v, SecretRef) for v in tier.env.values()):
            yield (
                f"{key('tiers', i, 'command')}: required for secret env values (virtstack runs "
                "it through a shell that reads them from a file, out of `docker inspect`)"
            )


TARGET = Target(
    name="container",
    summary="containers on a Docker engine: local, or remote over ssh://",
    adapter=ADAPTER,
    default_uri="unix:///var/run/docker.sock",
    uri_schemes=("unix", "ssh", "tcp"),
    capabilities=frozenset(
        {
            Capability.SERVICE_TIERS,
            Capability.REGISTRY,
            Capability.PERSISTENT_DATA,
            Capability.THRESHOLD_SCALING,
            Capability.REMOTE_ENGINE,
        }
    ),
    deploy=deploy,
    extra_checks=_secrets_need_commands,
)
