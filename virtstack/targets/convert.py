"""Spec sections as component arguments, shared by every target.

The components are imported by the functions that use them: discovering the targets
imports this module too, and only a program needs Pulumi.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtstack.spec import EnvironmentSpec, TierSpec
from virtstack.targets.base import DeployContext

if TYPE_CHECKING:
    import pulumi
    from virtstack_components.docker.registry import ContainerRegistry
    from virtstack_components.libvirt.registry import VmRegistry
    from virtstack_components.registry import Credentials
    from virtstack_components.stack import ServiceStack, StackTier
    from virtstack_components.tier import TierArgs


def tier_args(tier: TierSpec, image: pulumi.Input[str]) -> TierArgs:
    """A spec tier as the components want it (shared by every target)."""
    from virtstack_components.tier import DataVolume, HealthCheck, Publish, TierArgs

    h = tier.health
    return TierArgs(
        image=image,
        command=tier.command,
        replicas=tier.replicas,
        port=tier.port,
        health=HealthCheck(path=h.path, interval=h.interval, timeout=h.timeout, retries=h.retries),
        env=tier.env,
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


def stack_tiers(spec: EnvironmentSpec, images: dict[str, pulumi.Input[str]]) -> list[StackTier]:
    """Every spec tier with its upstream and network CIDR."""
    from virtstack_components.stack import StackTier

    return [
        StackTier(
            name=t.name,
            args=tier_args(t, images.get(t.image, t.image)),
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


def registry_outputs(registry: ContainerRegistry | VmRegistry) -> dict[str, object]:
    """Stack outputs of an environment's registry (the password stays a secret)."""
    return {
        "registry": registry.endpoint,
        "registry_username": registry.username,
        "registry_password": registry.password,
    }


def stack_outputs(stack: ServiceStack) -> dict[str, object]:
    """Stack outputs of an environment's tiers: published URLs, endpoints, replicas."""
    return {
        "urls": stack.urls,
        "tiers": {
            name: {"endpoint": tier.endpoint, "replicas": tier.replica_names}
            for name, tier in stack.tiers.items()
        },
    }
