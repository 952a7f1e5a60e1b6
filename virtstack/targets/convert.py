"""Spec sections as component arguments, shared by every target.

The components are imported by the functions that use them: discovering the targets
imports this module too, and only a program needs Pulumi.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from virtstack.configkeys import key
from virtstack.targets.base import DeployContext

if TYPE_CHECKING:
    import pulumi
    import pulumi_docker as docker
    from virtstack_components.docker.registry import ContainerRegistry
    from virtstack_components.libvirt.registry import VmRegistry
    from virtstack_components.registry import Credentials, ServerTls
    from virtstack_components.stack import ServiceStack, StackTier
    from virtstack_components.swarm.registry import SwarmRegistry
    from virtstack_components.tier import TierArgs

    from virtstack.engines.docker import DockerAdapter
    from virtstack.spec import EnvironmentSpec, TierSpec


def secret_env_needs_command(spec: EnvironmentSpec) -> Iterator[str]:
    """Container replicas with secret env values need their command: virtstack wraps it."""
    for i, tier in enumerate(spec.tiers):
        if tier.command is None and tier.secret_env:
            yield (
                f"{key('tiers', i, 'command')}: required for secret env values (virtstack runs "
                "it through a shell that reads them from a file, out of `docker inspect`)"
            )


def tier_args(
    tier: TierSpec, image: pulumi.Input[str], secrets: Mapping[str, pulumi.Input[str]]
) -> TierArgs:
    """A spec tier as the components want it (shared by every target)."""
    from virtstack_components.tier import DataVolume, HealthCheck, Publish, TierArgs

    h = tier.health
    return TierArgs(
        image=image,
        command=tier.command,
        replicas=tier.replicas,
        port=tier.port,
        health=HealthCheck(path=h.path, interval=h.interval, timeout=h.timeout, retries=h.retries),
        env=tier.plain_env,
        secret_env={var: secrets[name] for var, name in tier.secret_env.items()},
        volume=(
            DataVolume(name=tier.volume.name, path=tier.volume.path, size_gib=tier.volume.size_gib)
            if tier.volume
            else None
        ),
        publish=(
            Publish(port=tier.publish, address=str(tier.publish_address)) if tier.publish else None
        ),
        max_replicas=max(tier.replicas, tier.scaling.max if tier.scaling else 0),
        cpus=tier.cpus,
        memory_mib=tier.memory,
    )


def stack_tiers(
    spec: EnvironmentSpec, ctx: DeployContext, images: Mapping[str, pulumi.Input[str]]
) -> list[StackTier]:
    """Every spec tier with its upstream and network CIDR."""
    from virtstack_components.stack import StackTier

    return [
        StackTier(
            name=t.name,
            args=tier_args(t, images.get(t.image, t.image), ctx.secrets),
            upstream=t.upstream,
            cidr=str(cidr) if (cidr := spec.network_cidr(t.network)) else None,
        )
        for t in spec.tiers
    ]


def credentials(spec: EnvironmentSpec, ctx: DeployContext) -> Credentials:
    """Who may push to and pull from the environment's registry."""
    from virtstack_components.registry import Credentials

    reg = spec.registry
    return Credentials(username=reg.username if reg.auth else None, password=ctx.registry_password)


def server_tls(spec: EnvironmentSpec, ctx: DeployContext, address: str | None = None) -> ServerTls:
    """The registry's HTTPS certificate from the environment's CA, naming every address
    the registry is reached at: its published address (``address``, else the spec's) and
    loopback (tunnels, the engine's own host). A preview makes none it lacks on disk (it
    changes nothing)."""
    import pulumi
    from virtstack_components.registry import ServerTls

    from virtstack import pki

    addresses = {address or str(spec.registry.address), "127.0.0.1", "localhost"}
    made = pki.registry_cert(
        ctx.project, ctx.env, addresses, persist=not pulumi.runtime.is_dry_run()
    )
    return ServerTls(certificate=made.certificate, key=pulumi.Output.secret(made.key), ca=made.ca)


def registry_outputs(registry: ContainerRegistry | VmRegistry | SwarmRegistry) -> dict[str, object]:
    """Stack outputs of an environment's registry (the password stays a secret)."""
    return {
        "registry": registry.endpoint,
        "registry_username": registry.username,
        "registry_password": registry.password,
    }


def trust_registry(
    adapter: DockerAdapter, uri: str, ctx: DeployContext, address: str, port: int
) -> dict[str, object]:
    """Have the engine at ``uri`` trust the environment's CA for its registry at
    ``address:port`` (during `up`, not a preview; a warning when that is for the user to
    do); the ``registry_ca`` output, where a client finds the one CA to trust for it
    (curl --cacert ...)."""
    import pulumi

    from virtstack import tlsfiles

    if not pulumi.runtime.is_dry_run():
        untrusted = adapter.trust_registry(
            uri, address, port, tlsfiles.ca_file(ctx.project, ctx.env)
        )
        if untrusted:
            pulumi.log.warn(untrusted)
    return registry_ca_output(ctx)


def registry_ca_output(ctx: DeployContext) -> dict[str, object]:
    """The ``registry_ca`` output: where a client finds the one CA to trust for the
    environment's registry (curl --cacert ...)."""
    from virtstack import tlsfiles

    return {"registry_ca": str(tlsfiles.ca_file(ctx.project, ctx.env))}


def stack_outputs(stack: ServiceStack) -> dict[str, object]:
    """Stack outputs of an environment's tiers: published URLs, endpoints, replicas."""
    return {
        "urls": stack.urls,
        "tiers": {
            name: {"endpoint": tier.endpoint, "replicas": tier.replica_names}
            for name, tier in stack.tiers.items()
        },
    }


def slug(image: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", image.lower()).strip("-")


@dataclass(frozen=True)
class PushedImage:
    """A local image pushed into the environment's registry, and both its pins."""

    reference: pulumi.Output[str]
    """``<registry>/<repository>@sha256:<digest>``: what every engine pulls."""
    local_id: pulumi.Output[str]
    """``sha256:<id>`` of the image on the engine that pushed it: what that engine runs
    without waiting for the registry."""


def push_image(
    image: str,
    endpoint: pulumi.Output[str],
    provider: docker.Provider,
    *,
    depends_on: pulumi.Resource,
    parent_name: str,
) -> PushedImage:
    """Push a local image into the stack's registry (at ``endpoint``), pinned by digest.

    A rebuilt image has a new id and digest and so shows as a diff; an unchanged one does not.
    """
    import pulumi
    import pulumi_docker as docker

    name = slug(image)
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    target = pulumi.Output.concat(endpoint, "/", image)
    # The engine's current id of the local image: read on every run, so a rebuilt image
    # re-tags and re-pushes even though its name did not change.
    local_id = docker.get_remote_image_output(
        name=image, opts=pulumi.InvokeOptions(provider=provider)
    ).id
    tag = docker.Tag(
        f"{parent_name}-{name}-tag",
        source_image=image,
        target_image=target,
        tag_triggers=[local_id],
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[depends_on]),
    )
    pushed = docker.RegistryImage(
        f"{parent_name}-{name}-push",
        name=tag.target_image,
        keep_remotely=True,
        triggers={"source": local_id},
        opts=pulumi.ResourceOptions(provider=provider),
    )
    # The engine that pushed holds the image under this name already: no pull back. (A
    # RemoteImage did that, and named whichever registry's copy the engine listed first.)
    return PushedImage(
        reference=pulumi.Output.concat(endpoint, "/", repository, "@", pushed.sha256_digest),
        local_id=local_id,
    )
