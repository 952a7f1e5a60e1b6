"""The hostos target: VMs under QEMU on this machine's own libvirt (type 2, desktop style)."""

from __future__ import annotations

from collections.abc import Iterator

from virtstack.spec import EnvironmentSpec
from virtstack.targets.base import Capability, DeployContext, Outputs, Target
from virtstack.targets.libvirt import check_vm_networks, deploy_vms


def deploy(spec: EnvironmentSpec, ctx: DeployContext) -> Outputs:
    """The spec's VMs on the local libvirt."""
    return deploy_vms(TARGET, spec, ctx)


def _checks(spec: EnvironmentSpec) -> Iterator[str]:
    yield from check_vm_networks(spec)


TARGET = Target(
    name="hostos",
    summary="VMs under QEMU through this machine's libvirt (type 2, like VirtualBox)",
    engine="libvirt",
    default_uri="qemu:///system",
    # Local URIs only: a remote libvirt host is the hypervisor target's job.
    uri_schemes=("qemu", "qemu+unix"),
    capabilities=frozenset(
        {
            Capability.SERVICE_TIERS,
            Capability.REGISTRY,
            Capability.PERSISTENT_DATA,
            Capability.VMS,
            Capability.CONTAINER_HOSTS,
        }
    ),
    # QEMU's own emulation, as a desktop hypervisor without KVM access would run.
    domain_type="qemu",
    deploy=deploy,
    extra_checks=_checks,
)
