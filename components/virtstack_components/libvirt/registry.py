"""VmRegistry: the Distribution registry on a VM of its own, its blobs on a data disk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi

from virtstack_components import names
from virtstack_components import registry as shared
from virtstack_components.cloudinit import user_data
from virtstack_components.compat import renamed_from
from virtstack_components.libvirt.placement import LibvirtPlacement
from virtstack_components.libvirt.vm import DataDisk, VirtualMachine, VirtualMachineArgs
from virtstack_components.names import REGISTRY_PORT
from virtstack_components.registry import Credentials, ServerTls, htpasswd
from virtstack_components.templating import render


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
    """Its planned address on the network (what ``tls`` names); DHCP's choice when None."""
    tls: ServerTls | None = None
    """Serve HTTPS only, with this certificate; None serves plain HTTP."""


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
        p, creds, tls = args.placement, args.credentials, args.tls
        key = pulumi.Output.secret(tls.key if tls else "")
        vm = VirtualMachine(
            f"{name}-vm",
            VirtualMachineArgs(
                placement=p,
                hostname=name,
                address=args.address,
                user_data=pulumi.Output.all(htpasswd(creds), key).apply(
                    lambda secrets: registry_user_data(
                        name,
                        p.keys(args.ssh_authorized_keys),
                        auth=creds.auth,
                        htpasswd=secrets[0],
                        certificate=tls.certificate if tls else None,
                        key=secrets[1],
                    )
                ),
                data_disks=[DataDisk(name=p.data_name(args.storage), size_gib=args.size_gib)],
                memory_mib=names.REGISTRY_VM_MEMORY_MIB,
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


def registry_user_data(
    hostname: str,
    ssh_authorized_keys: Sequence[str],
    *,
    auth: bool,
    htpasswd: str,
    certificate: str | None,
    key: str,
) -> str:
    """The registry VM's cloud-config: HTTPS only when given a ``certificate`` (and its
    ``key``). The key and htpasswd file are root-only (0600); the service, which runs as
    its own user, reads systemd's copies of them (LoadCredential)."""
    tls = certificate is not None
    credentials = {"htpasswd": shared.HTPASSWD_PATH}
    if tls:
        credentials["registry.key"] = shared.KEY_PATH
    return user_data(
        "registry",
        hostname=hostname,
        user="virtstack",
        ssh_authorized_keys=ssh_authorized_keys,
        registry_config=shared.registry_config(auth, tls=tls, secrets_dir=shared.CREDENTIALS_DIR),
        htpasswd=htpasswd,
        htpasswd_path=shared.HTPASSWD_PATH,
        tls={
            "certificate": certificate,
            "certificate_path": shared.CERTIFICATE_PATH,
            "key": key,
            "key_path": shared.KEY_PATH,
        }
        if tls
        else None,
        credentials_dropin=render("systemd/registry-credentials.conf.j2", credentials=credentials),
        storage_dir=shared.STORAGE_DIR,
    )
