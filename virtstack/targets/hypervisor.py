"""The hypervisor target: VMs on a dedicated KVM host (type 1), local or qemu+ssh://."""

from __future__ import annotations

from virtstack.targets.libvirt import Hosting, vm_target

TARGET = vm_target(
    name="hypervisor",
    summary="VMs on a dedicated KVM hypervisor host (type 1), local or over qemu+ssh://",
    uri_schemes=("qemu", "qemu+unix", "qemu+ssh", "qemu+tcp", "qemu+tls"),
    # KVM with the host's CPU where the host's KVM works (probed on every run), QEMU's
    # emulation with a warning where not; the VMs start with the host, as servers do.
    hosting=Hosting(probe_kvm=True, autostart=True),
    remote=True,
)
