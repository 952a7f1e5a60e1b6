"""Guest images: built on this machine, uploaded once into an environment's pool."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_libvirt as libvirt

from virtstack_components.compat import renamed_from
from virtstack_components.libvirt.placement import GuestImageIds, LibvirtHost


@dataclass(frozen=True, kw_only=True)
class GuestImage:
    """A bootable guest on this machine: root disk, and kernel + initrd for direct boot."""

    disk: str
    kernel: str
    initrd: str
    cmdline: str = "root=/dev/vda console=ttyS0"

    @classmethod
    def from_dir(cls, path: Path) -> GuestImage:
        """The image built by images/guest/build.sh into ``path``."""
        manifest = json.loads((path / "manifest.json").read_text())
        return cls(
            disk=str(path / "disk.qcow2"),
            kernel=str(path / "vmlinuz"),
            initrd=str(path / "initrd.img"),
            cmdline=str(manifest["kernel_cmdline"]),
        )


@dataclass(frozen=True, kw_only=True)
class BaseImageArgs:
    host: LibvirtHost
    pool: pulumi.Input[str]
    image: GuestImage
    boot: GuestImageIds | None = None
    """Kernel and initrd already in the pool (another image's) to boot this disk with;
    None: the image's own are uploaded."""


class BaseImage(pulumi.ComponentResource):
    """A guest image uploaded once into a pool; every VM's root disk is a copy-on-write layer."""

    ids: GuestImageIds

    def __init__(
        self, name: str, args: BaseImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "virtstack:libvirt:BaseImage", name, None, renamed_from("virtstack:vm:BaseImage", opts)
        )
        host = args.host

        def upload(role: str, source: str, fmt: str, *after: libvirt.Volume) -> libvirt.Volume:
            return libvirt.Volume(
                f"{name}-{role}",
                name=f"{name}-{Path(source).name}",
                pool=args.pool,
                # A disk booted with another image's kernel uploads after that image's last.
                source=source
                if args.boot is None
                else pulumi.Output.all(source, args.boot.initrd).apply(lambda found: found[0]),
                format=fmt,
                opts=host.opts(self, depends_on=list(after)),
            )

        # One upload at a time: an upload ends with a pool refresh, which libvirt refuses
        # while another upload runs in the pool, and that refused stream leaves a reply on
        # the provider's connection that blocks every later call on it (see seed_provider).
        disk = upload("disk", args.image.disk, "qcow2")
        if args.boot is not None:
            boot = args.boot
        else:
            kernel = upload("kernel", args.image.kernel, "raw", disk)
            initrd = upload("initrd", args.image.initrd, "raw", kernel)
            boot = GuestImageIds(
                disk=disk.id, kernel=kernel.id, initrd=initrd.id, cmdline=args.image.cmdline
            )
        self.ids = GuestImageIds(
            disk=disk.id, kernel=boot.kernel, initrd=boot.initrd, cmdline=boot.cmdline
        )
        self.register_outputs(
            {"disk_id": disk.id, "kernel_id": boot.kernel, "initrd_id": boot.initrd}
        )
