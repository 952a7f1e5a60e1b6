"""The hostos target: VMs under QEMU on this machine's own libvirt (type 2, desktop style)."""

from __future__ import annotations

from virtstack.targets.libvirt import Hosting, vm_target

TARGET = vm_target(
    name="hostos",
    summary="VMs under QEMU through this machine's libvirt (type 2, like VirtualBox)",
    # Local URIs only: a remote libvirt host is the hypervisor target's job.
    uri_schemes=("qemu", "qemu+unix"),
    # QEMU's own emulation, as a desktop hypervisor without KVM access would run; VMs
    # start when their user starts them, not with the machine.
    hosting=Hosting(probe_kvm=False, autostart=False),
    remote=False,
)
