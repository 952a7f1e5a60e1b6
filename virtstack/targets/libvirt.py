"""What the two VM targets share: a storage pool, networks and a guest image on libvirt."""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from virtstack import naming, sshkeys
from virtstack.configkeys import key
from virtstack.engines.libvirt import ADAPTER, provider_uri, ssh_problems
from virtstack.errors import SpecError
from virtstack.images import check_guest_image, guest_image_dir, vm_boot
from virtstack.targets import addressing
from virtstack.targets.base import Capability, DeployContext, Outputs, Target, set_keys

if TYPE_CHECKING:
    import pulumi
    from virtstack_components.libvirt.placement import LibvirtPlacement

    from virtstack.spec import EnvironmentSpec


def vm_problems(spec: EnvironmentSpec) -> list[str]:
    """What VM environments need beyond the spec's own rules: checked before anything is
    made, not halfway through a deployment."""
    problems = [
        f"{key('tiers', i, 'command')}: required on VM targets (it runs as a systemd service)"
        for i, t in enumerate(spec.tiers)
        if t.command is None
    ]
    if not spec.networks:
        return [*problems, f"{key('networks')}: VM targets need at least one network (name, cidr)"]
    tier_nets = {t.network or spec.networks[0].name for t in spec.tiers}
    if len(tier_nets) > 1:
        problems.append(
            f"{key('tiers')}: on VM targets all tiers share one network, got {sorted(tier_nets)}"
        )
        return problems
    return [*problems, *addressing.plans(spec)[1]]


def vm_checks(spec: EnvironmentSpec, uri: str) -> list[str]:
    """What a VM target refuses besides capabilities: tiers, networks, ssh options."""
    return [*vm_problems(spec), *ssh_problems(uri)]


@dataclass(frozen=True, kw_only=True)
class Hosting:
    """How a VM target runs its VMs: what differs between hostos and hypervisor."""

    probe_kvm: bool
    """Use KVM where the host's KVM works (else QEMU's emulation, said plainly)."""
    autostart: bool
    """VMs start with the host."""


def accelerator(spec: EnvironmentSpec, uri: str, hosting: Hosting) -> tuple[str, str | None]:
    """The domain type and CPU mode of the VMs: KVM with the host's CPU where it works."""
    if spec.engine.domain_type is not None:
        chosen = spec.engine.domain_type
    elif not hosting.probe_kvm:
        chosen = "qemu"
    elif (problem := ADAPTER.kvm_problem(uri)) is None:
        chosen = "kvm"
    else:
        import pulumi

        pulumi.log.warn(
            f"{uri}: KVM does not work on this host ({problem}): the VMs run under QEMU's "
            f"software emulation, many times slower (set {key('engine', 'domain_type')} to "
            "say so and silence this)"
        )
        chosen = "qemu"
    return chosen, ("host-passthrough" if chosen == "kvm" else None)


def deploy_vms(
    target: Target, hosting: Hosting, spec: EnvironmentSpec, ctx: DeployContext
) -> Outputs:
    """Pool, networks, guest image, then the spec's tiers, registry, VMs and hosts as VMs."""
    # Imported here, not with the module: every command discovers every target, and only
    # the program of a VM stack needs Pulumi's libvirt SDK.
    import pulumi
    import pulumi_libvirt as libvirt
    from virtstack_components.cloudinit import user_data
    from virtstack_components.libvirt.container_host import ContainerHost, ContainerHostArgs
    from virtstack_components.libvirt.image import BaseImage, BaseImageArgs, GuestImage
    from virtstack_components.libvirt.network import LibvirtNetwork, LibvirtNetworkArgs
    from virtstack_components.libvirt.placement import (
        GuestImageIds,
        LibvirtHost,
        LibvirtPlacement,
    )
    from virtstack_components.libvirt.registry import VmRegistry, VmRegistryArgs
    from virtstack_components.libvirt.tier import VmTier
    from virtstack_components.libvirt.vm import PUBLISH_ADDRESS, VirtualMachine, VirtualMachineArgs
    from virtstack_components.stack import ServiceStack, ServiceStackArgs

    from virtstack.targets.convert import (
        credentials,
        registry_ca_output,
        registry_outputs,
        server_tls,
        stack_outputs,
        stack_tiers,
    )

    plans, too_small = addressing.plans(spec)
    problems = [*check_guest_image(spec), *too_small]
    if problems:
        raise SpecError(problems)
    uri = target.uri(spec)
    provider = libvirt.Provider(f"{ctx.env}-libvirt", uri=provider_uri(uri))
    # Seed ISOs travel on a connection of their own: see LibvirtPlacement.seed_dir.
    seed_provider = libvirt.Provider(f"{ctx.env}-libvirt-seeds", uri=provider_uri(uri))
    login = sshkeys.login_key(ctx.project, ctx.env)
    domain_type, cpu_mode = accelerator(spec, uri, hosting)
    host = LibvirtHost(
        namespace=ctx.env,
        provider=provider,
        domain_type=domain_type,
        cpu_mode=cpu_mode,
        autostart=hosting.autostart,
    )
    path = naming.pool_path(ctx.env, spec.engine.pool_path)
    pool = libvirt.Pool(
        naming.pool(ctx.env),
        name=naming.pool(ctx.env),
        type="dir",
        path=path,
        opts=pulumi.ResourceOptions(provider=provider),
    )
    kept = ADAPTER.kept_data(uri, naming.data_pool(ctx.env))
    # Data disks live in a pool of their own that destroy leaves in place (with them);
    # the next deployment adopts both instead of failing on names already taken.
    data_pool = libvirt.Pool(
        naming.data_pool(ctx.env),
        name=naming.data_pool(ctx.env),
        type="dir",
        path=f"{path}-data",
        opts=pulumi.ResourceOptions(
            provider=provider,
            retain_on_delete=True,
            import_=kept.pool_id(),
            # The provider reads no path back from an existing pool; adopting one must
            # not look like a change of directory.
            ignore_changes=["path"],
        ),
    )
    networks = {
        n.name: LibvirtNetwork(
            f"{ctx.env}-{n.name}", LibvirtNetworkArgs(host=host, cidr=str(n.cidr))
        )
        for n in spec.networks
    }
    guest = GuestImage.from_dir(guest_image_dir(spec))
    image = BaseImage(f"{ctx.env}-guest", BaseImageArgs(host=host, pool=pool.name, image=guest))
    own_images: dict[str, GuestImageIds] = {}
    for i, vm in enumerate(spec.vms):
        if (volume := vm.pool_image) is not None:
            # Checked before the run (preflight); gone since, it is still the spec's key.
            if (disk := ADAPTER.volume_key(uri, volume)) is None:
                raise SpecError([f"{key('vms', i, 'image')}: no such volume on {uri}"])
            ids = dataclasses.replace(image.ids, disk=disk)
        elif isinstance(vm.image, str):
            # Uploaded once; a bare root filesystem boots with the guest's kernel.
            ids = BaseImage(
                f"{ctx.env}-{vm.name}-image",
                BaseImageArgs(
                    host=host,
                    pool=pool.name,
                    image=dataclasses.replace(guest, disk=vm.image),
                    boot=image.ids,
                ),
            ).ids
        else:
            continue  # the built guest's image
        own_images[vm.name] = dataclasses.replace(ids, bootloader=vm_boot(vm) == "disk")

    tiers_on = (spec.tiers[0].network or spec.networks[0].name) if spec.tiers else None
    access = (
        addressing.tier_access(
            spec, ctx.env, plans[tiers_on], str(ipaddress.IPv4Interface(PUBLISH_ADDRESS).network)
        )
        if tiers_on
        else {}
    )

    def address(network: str | None, other: addressing.Other) -> str:
        name = network or spec.networks[0].name
        return addressing.address_of(spec, plans[name], name, other)

    def on(network: str | None) -> LibvirtPlacement:
        net = networks[network or spec.networks[0].name]
        return LibvirtPlacement(
            namespace=ctx.env,
            provider=provider,
            domain_type=host.domain_type,
            cpu_mode=host.cpu_mode,
            autostart=host.autostart,
            pool=pool.name,
            data_pool=data_pool.name,
            network_id=net.network_id,
            image=image.ids,
            find_kept=kept.volume_id,
            ssh_authorized_keys=sshkeys.authorized(login.public, spec.ssh_authorized_keys, []),
            seed_provider=seed_provider,
            seed_dir=str(ctx.project / ".virtstack" / "seeds" / ctx.env),
            tier_access=access,
        )

    outputs: dict[str, object] = {"target": target.name, "engine": uri}
    trusted: list[pulumi.Input[str]] = []
    registry_ca = None
    machines: list[pulumi.Input[dict[str, str]]] = []
    if spec.registry.enabled:
        reg = spec.registry
        # Planned before it boots: its certificate names it.
        reg_address = address(None, ("registry", "registry", 0))
        tls = server_tls(spec, ctx, reg_address)
        registry = VmRegistry(
            f"{ctx.env}-registry",
            VmRegistryArgs(
                placement=on(None),
                storage=reg.storage,
                size_gib=reg.size_gib,
                credentials=credentials(spec, ctx),
                ssh_authorized_keys=reg.ssh_authorized_keys,
                address=reg_address,
                tls=tls,
            ),
        )
        outputs |= registry_outputs(registry) | registry_ca_output(ctx)
        trusted.append(registry.endpoint)
        registry_ca = tls.ca
        machines.append(_named(f"{ctx.env}-registry", registry.address))
    if spec.tiers:
        stack = ServiceStack(
            ctx.env,
            ServiceStackArgs(placement=on(spec.tiers[0].network), tiers=stack_tiers(spec, ctx, {})),
        )
        outputs |= stack_outputs(stack)
        machines += [t.machines for t in stack.tiers.values() if isinstance(t, VmTier)]
    vms: dict[str, object] = {}
    for vm in spec.vms:
        for i in range(vm.count):
            name = f"{ctx.env}-{vm.name}" + (f"-{i}" if vm.count > 1 else "")
            placement = on(vm.network)
            if vm.name in own_images:
                placement = dataclasses.replace(placement, image=own_images[vm.name])
            machine = VirtualMachine(
                name,
                VirtualMachineArgs(
                    placement=placement,
                    user_data=user_data(
                        "vm",
                        extra=vm.cloud_init,
                        hostname=name,
                        user="virtstack",
                        ssh_authorized_keys=placement.keys(vm.ssh_authorized_keys),
                    ),
                    cpus=vm.cpus,
                    memory_mib=vm.memory,
                    disk_gib=vm.disk,
                    address=address(vm.network, ("vms", vm.name, i)),
                ),
            )
            vms[name] = machine.address
            machines.append(_named(name, machine.address))
    hosts: dict[str, object] = {}
    for spec_host in spec.container_hosts:
        for i in range(spec_host.count):
            name = f"{ctx.env}-{spec_host.name}" + (f"-{i}" if spec_host.count > 1 else "")
            ch = ContainerHost(
                name,
                ContainerHostArgs(
                    placement=on(spec_host.network),
                    cpus=spec_host.cpus,
                    memory_mib=spec_host.memory,
                    disk_gib=spec_host.disk,
                    ssh_user=spec_host.ssh_user,
                    ssh_authorized_keys=spec_host.ssh_authorized_keys,
                    # Its engine verifies the environment's registry by its CA.
                    registries=trusted,
                    registry_ca=registry_ca,
                    identity=str(login.identity) if login.identity else None,
                    address=address(spec_host.network, ("container_hosts", spec_host.name, i)),
                ),
            )
            hosts[name] = ch.engine
            machines.append(_named(name, ch.address))
    every = pulumi.Output.all(*machines).apply(
        lambda parts: {k: v for p in parts for k, v in p.items()}
    )
    return outputs | {"vms": vms, "container_hosts": hosts, "machines": every}


def _named(name: str, address: pulumi.Output[str]) -> pulumi.Output[dict[str, str]]:
    return address.apply(lambda a: {name: a})


def vm_target(
    *, name: str, summary: str, uri_schemes: tuple[str, ...], hosting: Hosting, remote: bool
) -> Target:
    """A target deploying onto libvirt: hostos and hypervisor differ only in these."""
    capabilities = {
        Capability.SERVICE_TIERS,
        Capability.REGISTRY,
        Capability.PERSISTENT_DATA,
        Capability.VMS,
        Capability.CONTAINER_HOSTS,
        Capability.SSH_LOGIN,
    }
    if remote:
        capabilities.add(Capability.REMOTE_ENGINE)
    if hosting.probe_kvm:
        capabilities.add(Capability.KVM)
    if hosting.autostart:
        capabilities.add(Capability.AUTOSTART)

    def deploy(spec: EnvironmentSpec, ctx: DeployContext) -> Outputs:
        return deploy_vms(target, hosting, spec, ctx)

    target = Target(
        name=name,
        summary=summary,
        adapter=ADAPTER,
        default_uri="qemu:///system",
        uri_schemes=uri_schemes,
        capabilities=frozenset(capabilities),
        deploy=deploy,
        extra_checks=lambda spec: vm_checks(spec, target.uri(spec)),
        # Nothing is published on the host but a front tier; VMs run the guest's packages.
        ignores=lambda spec: set_keys(
            spec,
            [
                ("registry", "address"),
                ("registry", "port"),
                ("images", "lb"),
                ("images", "registry"),
            ],
        ),
    )
    return target
