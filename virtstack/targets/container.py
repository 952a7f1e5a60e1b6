"""The container target: tiers as containers on a Docker engine (local or ssh://)."""

from __future__ import annotations

import re

import pulumi
import pulumi_docker as docker
from virtstack_components.docker.network import DockerNetwork, DockerNetworkArgs
from virtstack_components.docker.placement import DockerPlacement
from virtstack_components.docker.registry import ContainerRegistry, ContainerRegistryArgs
from virtstack_components.stack import ServiceStack, ServiceStackArgs

from virtstack.engines.docker import ADAPTER
from virtstack.spec import EnvironmentSpec
from virtstack.targets.base import Capability, DeployContext, Outputs, Target, set_keys
from virtstack.targets.convert import credentials, registry_outputs, stack_outputs, stack_tiers


def _slug(image: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", image.lower()).strip("-")


def _push(
    image: str, registry: ContainerRegistry, provider: docker.Provider, parent_name: str
) -> pulumi.Output[str]:
    """Push a local image into the stack's registry; reference it by digest.

    A rebuilt image has a new digest and so shows as a diff; an unchanged one does not.
    """
    slug = _slug(image)
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    target = pulumi.Output.concat(registry.endpoint, "/", image)
    # The engine's current id of the local image: read on every run, so a rebuilt image
    # re-tags and re-pushes even though its name did not change.
    local_id = docker.get_remote_image_output(
        name=image, opts=pulumi.InvokeOptions(provider=provider)
    ).id
    tag = docker.Tag(
        f"{parent_name}-{slug}-tag",
        source_image=image,
        target_image=target,
        tag_triggers=[local_id],
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[registry]),
    )
    pushed = docker.RegistryImage(
        f"{parent_name}-{slug}-push",
        name=tag.target_image,
        keep_remotely=True,
        triggers={"source": local_id},
        opts=pulumi.ResourceOptions(provider=provider),
    )
    pulled = docker.RemoteImage(
        f"{parent_name}-{slug}",
        name=pulumi.Output.concat(registry.endpoint, "/", repository, "@", pushed.sha256_digest),
        # Other environments on the engine may share the image: never delete it on destroy.
        keep_locally=True,
        opts=pulumi.ResourceOptions(provider=provider),
    )
    return pulled.repo_digest


def deploy(spec: EnvironmentSpec, ctx: DeployContext) -> Outputs:
    """Registry, tier networks, replicas and load balancers on one Docker engine."""
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
            images[image] = _push(image, registry, provider, f"{ctx.env}-image")
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
            ServiceStackArgs(placement=placement, tiers=stack_tiers(spec, images)),
        )
        outputs |= stack_outputs(stack) | {"images": images}
    return outputs


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
    # VM sizes and libvirt settings mean nothing to a Docker engine.
    ignores=lambda spec: set_keys(
        spec,
        [
            ("engine", "domain_type"),
            ("engine", "pool_path"),
            ("images", "guest"),
            ("tiers", "*", "cpus"),
            ("tiers", "*", "memory"),
        ],
    ),
)
