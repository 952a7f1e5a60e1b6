"""VmTier: replica VMs running the tier's command under systemd, behind an HAProxy VM."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pulumi

from virtstack_components import names
from virtstack_components.cloudinit import user_data
from virtstack_components.compat import renamed_from
from virtstack_components.errors import ComponentError
from virtstack_components.libvirt.placement import LibvirtPlacement
from virtstack_components.libvirt.vm import (
    PUBLISH_ADDRESS,
    PUBLISH_MAC,
    DataDisk,
    VirtualMachine,
    VirtualMachineArgs,
)
from virtstack_components.tier import TierArgs, haproxy_config, published_url, resolved


@dataclass(frozen=True, kw_only=True)
class VmTierArgs:
    placement: LibvirtPlacement
    tier: TierArgs


class VmTier(pulumi.ComponentResource):
    """N replica VMs listed by address in the HAProxy config of a load-balancer VM."""

    endpoint: pulumi.Output[str]
    """``address:port`` of the load-balancer VM."""
    url: pulumi.Output[str]
    """``http://address:port/`` where the tier is published, or "" when it is not."""
    replica_names: list[str]
    """Domain (host) names of the replicas."""
    machines: pulumi.Output[dict[str, str]]
    """Every VM of the tier (replicas and load balancer): domain name -> address."""

    def __init__(
        self, name: str, args: VmTierArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "virtstack:libvirt:VmTier",
            name,
            None,
            renamed_from("virtstack:service:ServiceTier", opts),
        )
        p, t = args.placement, args.tier
        if t.command is None:
            raise ComponentError(f"tier {name}: VM replicas need a command to run")
        self.replica_names = [names.replica_name(name, i) for i in range(t.replicas)]
        command = list(t.command)
        values = pulumi.Output.all(resolved(t.env), resolved(t.secret_env))
        keys = p.keys(t.ssh_authorized_keys)

        def replica_data(both: list[dict[str, str]], replica: str) -> str:
            env, secret_env = both
            return user_data(
                "service",
                hostname=replica,
                user="virtstack",
                ssh_authorized_keys=keys,
                service=name,
                command=command,
                env={**env, "VIRTSTACK_TIER": name},
                secret_env=secret_env,
                data_path=t.volume.path if t.volume else None,
            )

        addresses = []
        for i, replica in enumerate(self.replica_names):
            disks = (
                [
                    DataDisk(
                        name=names.replica_data_name(p.namespace, t.volume.name, i),
                        size_gib=t.volume.size_gib,
                    )
                ]
                if t.volume
                else []
            )
            vm = VirtualMachine(
                f"{name}-replica-{i}",
                VirtualMachineArgs(
                    placement=p,
                    hostname=replica,
                    user_data=values.apply(functools.partial(replica_data, replica=replica)),
                    cpus=t.cpus,
                    memory_mib=t.memory_mib,
                    data_disks=disks,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            addresses.append(vm.address)
        config = pulumi.Output.all(*addresses).apply(
            lambda found: haproxy_config(
                name, t, servers=list(zip(self.replica_names, found, strict=True))
            )
        )
        lb = names.lb_name(name)
        lb_vm = VirtualMachine(
            lb,
            VirtualMachineArgs(
                placement=p,
                user_data=config.apply(
                    lambda cfg: user_data(
                        "lb",
                        hostname=lb,
                        user="virtstack",
                        ssh_authorized_keys=keys,
                        haproxy_cfg=cfg,
                        publish_mac=PUBLISH_MAC if t.publish else None,
                        publish_address=PUBLISH_ADDRESS,
                    )
                ),
                memory_mib=names.LB_VM_MEMORY_MIB,
                publish=t.publish,
                guest_port=names.LB_PORT,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.endpoint = lb_vm.address.apply(lambda a: f"{a}:{names.LB_PORT}")
        self.url = published_url(t.publish)
        self.machines = pulumi.Output.all(*addresses, lb_vm.address).apply(
            lambda found: dict(zip([*self.replica_names, lb], found, strict=True))
        )
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "url": self.url,
                "replica_names": self.replica_names,
                "machines": self.machines,
            }
        )
