"""ContainerHost: a VM that runs a Docker engine, managed over ssh://."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from virtstack_components.cloudinit import user_data
from virtstack_components.placement import LibvirtPlacement
from virtstack_components.vm import VirtualMachine, VirtualMachineArgs


@dataclass(frozen=True, kw_only=True)
class ContainerHostArgs:
    placement: LibvirtPlacement
    cpus: int = 2
    memory_mib: int = 2048
    disk_gib: int = 20
    ssh_user: str = "virtstack"
    ssh_authorized_keys: Sequence[str] = ()
    ssh_opts: Sequence[str] = ()
    insecure_registries: Sequence[str] = ()
    """Registries (``host:port``) the engine may pull from over plain HTTP."""


class ContainerHost(pulumi.ComponentResource):
    """A Docker engine on its own VM, and a docker provider that reaches it."""

    address: pulumi.Output[str]
    docker_host: pulumi.Output[str]
    """``ssh://user@address``: what ``DOCKER_HOST`` would be to use this engine."""
    provider: docker.Provider

    def __init__(
        self, name: str, args: ContainerHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("virtstack:host:ContainerHost", name, None, opts)
        vm = VirtualMachine(
            f"{name}-vm",
            VirtualMachineArgs(
                placement=args.placement,
                hostname=name,
                user_data=user_data(
                    "container-host",
                    hostname=name,
                    user=args.ssh_user,
                    ssh_authorized_keys=list(args.ssh_authorized_keys),
                    insecure_registries=list(args.insecure_registries),
                ),
                cpus=args.cpus,
                memory_mib=args.memory_mib,
                disk_gib=args.disk_gib,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.address = vm.address
        self.docker_host = vm.address.apply(lambda a: f"ssh://{args.ssh_user}@{a}")
        self.provider = docker.Provider(
            f"{name}-docker",
            host=self.docker_host,
            ssh_opts=list(args.ssh_opts),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"address": self.address, "docker_host": self.docker_host})
