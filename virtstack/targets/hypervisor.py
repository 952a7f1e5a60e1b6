"""The hypervisor target: VMs on a dedicated KVM host (type 1), local or qemu+ssh://."""

from __future__ import annotations

from collections.abc import Iterator

from virtstack.spec import EnvironmentSpec
from virtstack.targets.base import Capability, DeployContext, Outputs, Target
from virtstack.targets.libvirt import check_vm_networks, deploy_vms


def deploy(spec: EnvironmentSpec, ctx: DeployContext) -> Outputs:
    """The spec's VMs on the hypervisor host's libvirt."""
    return deploy_vms(TARGET, spec, ctx)


def _checks(spec: EnvironmentSpec) -> Iterator[str]:
    yield from check_vm_networks(spec)


TARGET = Target(
    name="hypervisor",
    summary="VMs on a dedicated KVM hypervisor host (type 1), local or over qemu+ssh://",
    engine="libvirt",
    default_uri="qemu:///system",
    uri_schemes=("qemu", "qemu+unix", "qemu+ssh", "qemu+tcp", "qemu+tls"),
    capabilities=frozenset(
        {
            Capability.SERVICE_TIERS,
            Capability.REGISTRY,
            Capability.PERSISTENT_DATA,
            Capability.VMS,
            Capability.CONTAINER_HOSTS,
            Capability.REMOTE_ENGINE,
        }
    ),
    domain_type="kvm",
    deploy=deploy,
    extra_checks=_checks,
)
