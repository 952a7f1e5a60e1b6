"""ContainerHost: a VM that runs a Docker engine, reachable over ssh://."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from virtstack_components.cloudinit import user_data
from virtstack_components.compat import renamed_from
from virtstack_components.libvirt.placement import LibvirtPlacement
from virtstack_components.libvirt.vm import VirtualMachine, VirtualMachineArgs


@dataclass(frozen=True, kw_only=True)
class ContainerHostArgs:
    placement: LibvirtPlacement
    cpus: int = 2
    memory_mib: int = 2048
    disk_gib: int = 20
    ssh_user: str = "virtstack"
    ssh_authorized_keys: Sequence[str] = ()
    registries: Sequence[pulumi.Input[str]] = ()
    """Registries (``host:port``) the engine pulls from: verified by ``registry_ca``, or
    over plain HTTP without one."""
    registry_ca: str | None = None
    """The CA certificate (PEM) the registries' certificates chain to."""
    identity: str | None = None
    """Path of the private key that logs in as ``ssh_user`` (published with the URI)."""
    address: str | None = None
    """The VM's planned address on its network (None: from DHCP)."""


class ContainerHost(pulumi.ComponentResource):
    """A Docker engine on its own VM."""

    address: pulumi.Output[str]
    docker_host: pulumi.Output[str]
    """``ssh://user@address``: what ``DOCKER_HOST`` would be to use this engine."""
    engine: pulumi.Output[dict[str, object]]
    """What another environment needs to deploy here: ``uri``, ``identity`` and ``ssh_opts``
    (the ``engine`` section of a container environment's spec)."""

    def __init__(
        self, name: str, args: ContainerHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "virtstack:libvirt:ContainerHost",
            name,
            None,
            renamed_from("virtstack:host:ContainerHost", opts),
        )
        vm = VirtualMachine(
            f"{name}-vm",
            VirtualMachineArgs(
                placement=args.placement,
                hostname=name,
                user_data=pulumi.Output.all(*args.registries).apply(
                    lambda registries: user_data(
                        "container-host",
                        hostname=name,
                        user=args.ssh_user,
                        ssh_authorized_keys=args.placement.keys(args.ssh_authorized_keys),
                        insecure_registries=[] if args.registry_ca else list(registries),
                        trusted_registries=list(registries) if args.registry_ca else [],
                        registry_ca=args.registry_ca,
                    )
                ),
                cpus=args.cpus,
                memory_mib=args.memory_mib,
                disk_gib=args.disk_gib,
                address=args.address,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.address = vm.address
        self.docker_host = vm.address.apply(lambda a: f"ssh://{args.ssh_user}@{a}")
        identity = args.identity
        self.engine = self.docker_host.apply(
            lambda uri: {
                "uri": uri,
                "identity": identity,
                "ssh_opts": ["-i", identity, "-o", "IdentitiesOnly=yes"] if identity else [],
            }
        )
        self.register_outputs(
            {"address": self.address, "docker_host": self.docker_host, "engine": self.engine}
        )
