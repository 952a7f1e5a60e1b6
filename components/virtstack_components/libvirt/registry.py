"""VmRegistry: the Distribution registry on a VM of its own, its blobs on a data disk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi

from virtstack_components import names
from virtstack_components.cloudinit import user_data
from virtstack_components.compat import renamed_from
from virtstack_components.libvirt.placement import LibvirtPlacement
from virtstack_components.libvirt.vm import DataDisk, VirtualMachine, VirtualMachineArgs
from virtstack_components.names import REGISTRY_PORT
from virtstack_components.registry import STORAGE_DIR, Credentials, htpasswd, registry_config


@dataclass(frozen=True, kw_only=True)
class VmRegistryArgs:
    placement: LibvirtPlacement
    storage: str = "registry-data"
    """Name of the data disk holding the blobs; it outlives the VM."""
    size_gib: int = 10
    credentials: Credentials = field(default_factory=Credentials)
    ssh_authorized_keys: Sequence[str] = ()
    """Keys the registry VM accepts besides its placement's."""
    address: str | None = None
    """The VM's planned address on its network (None: from DHCP)."""


class VmRegistry(pulumi.ComponentResource):
    """A registry VM reachable at its address on the environment's network."""

    endpoint: pulumi.Output[str]
    """``host:port`` to push to and pull from."""
    username: pulumi.Output[str]
    password: pulumi.Output[str]
    """Secret."""
    address: pulumi.Output[str]
    """The registry VM's address."""

    def __init__(
        self, name: str, args: VmRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "virtstack:libvirt:VmRegistry",
            name,
            None,
            renamed_from("virtstack:registry:Registry", opts),
        )
        p, creds = args.placement, args.credentials
        config = registry_config(creds.auth)
        vm = VirtualMachine(
            f"{name}-vm",
            VirtualMachineArgs(
                placement=p,
                hostname=name,
                user_data=htpasswd(creds).apply(
                    lambda entry: user_data(
                        "registry",
                        hostname=name,
                        user="virtstack",
                        ssh_authorized_keys=p.keys(args.ssh_authorized_keys),
                        registry_config=config,
                        htpasswd=entry,
                        storage_dir=STORAGE_DIR,
                    )
                ),
                data_disks=[DataDisk(name=p.data_name(args.storage), size_gib=args.size_gib)],
                memory_mib=names.REGISTRY_VM_MEMORY_MIB,
                address=args.address,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.address = vm.address
        self.endpoint = vm.address.apply(lambda a: f"{a}:{REGISTRY_PORT}")
        self.username = pulumi.Output.from_input(creds.username or "")
        self.password = pulumi.Output.secret(creds.password or "")
        self.register_outputs(
            {"endpoint": self.endpoint, "username": self.username, "password": self.password}
        )
