"""VirtualMachine: a VM with a copy-on-write root disk, data disks and a cloud-init seed."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_libvirt as libvirt

from virtstack_components.cloudinit import content_hash, seed_iso
from virtstack_components.compat import renamed_from
from virtstack_components.libvirt.placement import GuestImageIds, LibvirtPlacement
from virtstack_components.templating import render
from virtstack_components.tier import Publish

GIB = 1024**3
DOMAIN_CREATE_TIMEOUT = "30m"
PUBLISH_MAC = "02:00:76:73:00:01"
"""MAC of the published-port NIC: alone on its VM's private user-mode net, so one for all
(locally administered, never one of :func:`stable_mac`'s)."""
PUBLISH_ADDRESS = "10.0.2.15/24"
"""The guest's address on QEMU's user-mode net, where hostfwd delivers."""
_PUBLISH_SLOT = "0x1e"
# A PCI slot after every device libvirt places, so the environment's NIC stays eth0.


def stable_mac(host: str) -> str:
    """The VM's MAC on its network, derived from its host name.

    A replaced VM keeps its MAC, so the network's DHCP server hands it its old address
    again: the load balancer listing it, and the tiers in front of that one, stay as
    they are instead of being replaced in a cascade.
    """
    digest = hashlib.sha256(host.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


SEED_MODE = "0600"
"""A seed's file mode in the pool: its user data may hold secrets (a registry's key)."""


def volume_mode_xslt(mode: str) -> str:
    """The volume XML transform that makes the volume's file with ``mode``."""
    return render("libvirt/volume-mode.xsl.j2", mode=mode)


def publish_xslt(publish: Publish, guest_port: int) -> str:
    """The domain XML transform that publishes ``guest_port`` at ``publish`` on the host."""
    return render(
        "libvirt/publish.xsl.j2",
        address=publish.address,
        port=publish.port,
        guest_port=guest_port,
        mac=PUBLISH_MAC,
        slot=_PUBLISH_SLOT,
    )


@dataclass(frozen=True, kw_only=True)
class DataDisk:
    """A disk that outlives its VM: kept when the VM is replaced or destroyed."""

    name: str
    """The volume's name in the pool (without ``.qcow2``): see ``data_name``."""

    size_gib: int


@dataclass(frozen=True, kw_only=True)
class VirtualMachineArgs:
    placement: LibvirtPlacement
    user_data: pulumi.Input[str]
    """cloud-config; new content replaces the VM (the seed disk is named by its hash)."""
    cpus: int = 1
    memory_mib: int = 1024
    disk_gib: int = 8
    data_disks: Sequence[DataDisk] = ()
    hostname: str | None = None
    """Domain and host name; the component's name when unset."""
    publish: Publish | None = None
    """Forward this host address and port to ``guest_port`` (QEMU user-mode networking,
    so the libvirt host itself listens, local or remote); the guest must configure the
    NIC with MAC ``PUBLISH_MAC`` as ``PUBLISH_ADDRESS``."""
    guest_port: int = 80
    address: str | None = None
    """The VM's IPv4 address on its network, reserved for its MAC before it boots (see
    addresses.py); None: whatever the network's DHCP hands out."""


def kernel_args(cmdline: str) -> list[dict[str, str]]:
    """A kernel command line in the shape the libvirt provider reads back from a domain.

    One map of the ``key=value`` arguments and one of the bare flags under ``_``, each
    sorted: any other shape shows as a change on every preview and replaces the VM.
    """
    pairs: dict[str, str] = {}
    flags: list[str] = []
    for word in cmdline.split():
        key, sep, value = word.partition("=")
        if sep:
            pairs[key] = value
        else:
            flags.append(word)
    args = [dict(sorted(pairs.items()))] if pairs else []
    return args + ([{"_": " ".join(sorted(flags))}] if flags else [])


class VirtualMachine(pulumi.ComponentResource):
    """A VM: a copy-on-write root disk, data disks, a cloud-init seed and the domain."""

    address: pulumi.Output[str]
    """The VM's IPv4 address on its network, from the DHCP lease."""
    domain_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: VirtualMachineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "virtstack:libvirt:VirtualMachine",
            name,
            None,
            renamed_from("virtstack:vm:VirtualMachine", opts),
        )
        p = args.placement
        host = args.hostname or name
        # The address is part of what the seed is named by: a VM moved to another
        # address is a new VM (the provider reads no reservation back to compare).
        placed = f"\n# address: {args.address}" if args.address else ""
        digest = pulumi.Output.from_input(args.user_data).apply(
            lambda text: content_hash(text + placed)
        )
        root = libvirt.Volume(
            f"{name}-root",
            # Named by the cloud-config's digest: new content means a fresh root disk.
            name=digest.apply(lambda d: f"{host}-root-{d}.qcow2"),
            pool=p.pool,
            base_volume_id=p.image.disk,
            size=args.disk_gib * GIB,
            format="qcow2",
            opts=p.opts(self),
        )
        meta_data = digest.apply(lambda d: f"instance-id: {host}-{d}\nlocal-hostname: {host}\n")
        # Built here and uploaded as a plain volume: the provider's own cloud-init disk
        # reads its ISO back, and that read can deadlock the connection (see
        # LibvirtPlacement.seed_dir).
        iso = pulumi.Output.all(args.user_data, meta_data, digest).apply(
            lambda parts: seed_iso(p.seed_dir, f"{host}-seed-{parts[2]}.iso", parts[0], parts[1])
        )
        seed = libvirt.Volume(
            f"{name}-seed",
            name=digest.apply(lambda d: f"{host}-seed-{d}.iso"),
            pool=p.pool,
            # After the guest image's last upload (initrd), for the same reason the image's
            # uploads run one at a time: no seed upload runs beside one of them.
            source=pulumi.Output.all(iso, p.image.initrd).apply(lambda found: found[0]),
            format="raw",
            xml=libvirt.VolumeXmlArgs(xslt=volume_mode_xslt(SEED_MODE)),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=p.seed_provider or p.provider,
                # libvirt probes the file and reports its format as "iso": no change.
                ignore_changes=["format"],
            ),
        )
        data = [
            libvirt.Volume(
                f"{name}-data-{disk.name}",
                name=f"{disk.name}.qcow2",
                pool=p.data_pool,
                size=disk.size_gib * GIB,
                format="qcow2",
                # Data is kept unless the user deletes it on purpose (destroy --delete-data),
                # and a disk kept from before is taken over rather than made anew.
                opts=p.opts(self, retain_on_delete=True, import_=p.find_kept(f"{disk.name}.qcow2")),
            )
            for disk in args.data_disks
        ]
        domain = libvirt.Domain(
            f"{name}-domain",
            name=host,
            type=p.domain_type,
            vcpu=args.cpus,
            memory=args.memory_mib,
            **_boot(p.image),
            # Data disks right after the root disk (/dev/vdb on), the seed last: cloud-init
            # finds it by its label.
            disks=[libvirt.DomainDiskArgs(volume_id=v.id) for v in (root, *data, seed)],
            network_interfaces=[
                libvirt.DomainNetworkInterfaceArgs(
                    network_id=p.network_id,
                    hostname=host,
                    mac=stable_mac(host),
                    # With an address, the provider reserves it for the MAC in the
                    # network's DHCP hosts before the VM starts.
                    addresses=[args.address] if args.address else None,
                    wait_for_lease=True,
                )
            ],
            consoles=[libvirt.DomainConsoleArgs(type="pty", target_port="0", target_type="serial")],
            qemu_agent=True,
            autostart=p.autostart,
            cpu=libvirt.DomainCpuArgs(mode=p.cpu_mode) if p.cpu_mode else None,
            xml=(
                libvirt.DomainXmlArgs(xslt=publish_xslt(args.publish, args.guest_port))
                if args.publish
                else None
            ),
            # A domain name is unique on the host: the old VM must go before its successor.
            opts=p.opts(
                self,
                delete_before_replace=True,
                # Read back from the guest agent, with IPv6 link-local addresses beside
                # ours: never a change of its own (a new address renames the seed).
                ignore_changes=["networkInterfaces[0].addresses"],
                # Creation ends with the VM's DHCP lease: a boot under software emulation on
                # a busy host outlasts the provider's 5 minutes.
                custom_timeouts=pulumi.CustomTimeouts(create=DOMAIN_CREATE_TIMEOUT),
            ),
        )
        self.domain_name = domain.name
        self.address = (
            pulumi.Output.from_input(args.address)
            if args.address
            else domain.network_interfaces.apply(_first_address)
        )
        self.register_outputs({"address": self.address, "domain_name": self.domain_name})


def _boot(image: GuestImageIds) -> dict[str, Any]:
    """The domain's boot arguments: direct kernel boot, or BIOS from the root disk."""
    if image.bootloader:
        # Said explicitly: libvirt would pick the disk on its own, and reads it back so.
        return {"boot_devices": [libvirt.DomainBootDeviceArgs(devs=["hd"])]}
    return {
        "kernel": image.kernel,
        "initrd": image.initrd,
        "cmdlines": kernel_args(image.cmdline),
    }


def _first_address(nics: Sequence[libvirt.outputs.DomainNetworkInterface] | None) -> str:
    for nic in nics or ():
        for address in nic.addresses or ():
            return address
    return ""
