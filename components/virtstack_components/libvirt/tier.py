"""VmTier: replica VMs running the tier's command under systemd, behind an HAProxy VM."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pulumi

from virtstack_components import names
from virtstack_components.cloudinit import user_data
from virtstack_components.compat import renamed_from
from virtstack_components.errors import ComponentError
from virtstack_components.libvirt.firewall import lb_rules, replica_rules
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
    """N replica VMs behind a load-balancer VM, each on its planned address.

    HAProxy lists every replica slot of the tier, made or not: scaling within the slots
    leaves the load-balancer VM as it is (an empty slot fails its health check).
    """

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
        access = p.tier_access.get(name)
        if access is None:
            raise ComponentError(f"tier {name}: no addresses planned for it on its network")
        slots = access.addresses.slots
        if t.replicas > len(slots):
            raise ComponentError(f"tier {name}: {t.replicas} replicas, {len(slots)} slots")
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
                firewall=replica_rules(access, t.port),
            )

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
            VirtualMachine(
                f"{name}-replica-{i}",
                VirtualMachineArgs(
                    placement=p,
                    hostname=replica,
                    user_data=values.apply(functools.partial(replica_data, replica=replica)),
                    cpus=t.cpus,
                    memory_mib=t.memory_mib,
                    data_disks=disks,
                    address=slots[i],
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        servers = [(names.replica_name(name, i), a) for i, a in enumerate(slots)]
        lb = names.lb_name(name)
        VirtualMachine(
            lb,
            VirtualMachineArgs(
                placement=p,
                user_data=user_data(
                    "lb",
                    hostname=lb,
                    user="virtstack",
                    ssh_authorized_keys=keys,
                    haproxy_cfg=haproxy_config(name, t, servers=servers),
                    publish_mac=PUBLISH_MAC if t.publish else None,
                    publish_address=PUBLISH_ADDRESS,
                    firewall=lb_rules(access),
                ),
                memory_mib=names.LB_VM_MEMORY_MIB,
                publish=t.publish,
                guest_port=names.LB_PORT,
                address=access.addresses.lb,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.endpoint = pulumi.Output.from_input(f"{access.addresses.lb}:{names.LB_PORT}")
        self.url = published_url(t.publish)
        self.machines = pulumi.Output.from_input(
            {**dict(zip(self.replica_names, slots, strict=False)), lb: access.addresses.lb}
        )
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "url": self.url,
                "replica_names": self.replica_names,
                "machines": self.machines,
            }
        )
