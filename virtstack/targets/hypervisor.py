"""The hypervisor target: VMs on a dedicated KVM host (type 1), local or qemu+ssh://."""

from __future__ import annotations

from virtstack.targets.libvirt import vm_target

TARGET = vm_target(
    name="hypervisor",
    summary="VMs on a dedicated KVM hypervisor host (type 1), local or over qemu+ssh://",
    uri_schemes=("qemu", "qemu+unix", "qemu+ssh", "qemu+tcp", "qemu+tls"),
    domain_type="kvm",
    remote=True,
)
