"""What the two VM targets share: a storage pool, networks and a guest image on libvirt."""

from __future__ import annotations

import os
from pathlib import Path

import pulumi
import pulumi_libvirt as libvirt
from virtstack_components import (
    BaseImage,
    BaseImageArgs,
    ContainerHost,
    ContainerHostArgs,
    GuestImage,
    LibvirtHost,
    LibvirtPlacement,
    Network,
    NetworkArgs,
    Registry,
    RegistryArgs,
    ServiceStack,
    ServiceStackArgs,
    VirtualMachine,
    VirtualMachineArgs,
)
from virtstack_components.cloudinit import user_data

from virtstack import hostcmd, naming
from virtstack.errors import EngineCommandError, EngineUnreachableError, SpecError
from virtstack.spec import EnvironmentSpec, key
from virtstack.targets.base import Capability, DeployContext, Outputs, Target
from virtstack.targets.convert import registry_outputs, stack_outputs, stack_tiers

GUEST_VERSION_FILE = Path(__file__).resolve().parents[2] / "images" / "guest" / "VERSION"


def cache_dir() -> Path:
    """Where virtstack keeps built toolchains and images (``$VIRTSTACK_CACHE``)."""
    if root := os.environ.get("VIRTSTACK_CACHE"):
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "virtstack"


def guest_image_dir(spec: EnvironmentSpec) -> Path:
    """The guest image the spec names, or the one images/guest/build.sh built."""
    if spec.images.guest:
        return Path(spec.images.guest)
    return cache_dir() / "guest" / GUEST_VERSION_FILE.read_text().strip()


def check_guest_image(spec: EnvironmentSpec) -> list[str]:
    """A VM environment needs a built guest image before anything is created."""
    path = guest_image_dir(spec)
    if not (path / "manifest.json").is_file():
        return [
            f"{key('images', 'guest')}: no guest image at {path} "
            "(build one with images/guest/build.sh)"
        ]
    return []


def check_vm_networks(spec: EnvironmentSpec) -> list[str]:
    """VM environments need a network, and all of a stack's tiers share one."""
    if not spec.networks:
        return [f"{key('networks')}: VM targets need at least one network (name, cidr)"]
    tier_nets = {t.network or spec.networks[0].name for t in spec.tiers}
    if len(tier_nets) > 1:
        return [
            f"{key('tiers')}: on VM targets all tiers share one network, got {sorted(tier_nets)}"
        ]
    return []


class KeptData:
    """Finds data a previous deployment of the environment left on the libvirt host."""

    def __init__(self, uri: str, pool: str) -> None:
        self.uri = uri
        self.pool = pool

    def _ask(self, *args: str) -> str | None:
        try:
            return hostcmd.run(hostcmd.virsh_argv(self.uri, *args), uri=self.uri).strip() or None
        except (EngineCommandError, EngineUnreachableError):
            # Not there; or no answer, which the provider reports better in a moment.
            return None

    def pool_id(self) -> str | None:
        """The kept data pool's UUID, or None when there is none to adopt."""
        return self._ask("pool-uuid", self.pool)

    def volume_id(self, volume: str) -> str | None:
        """A kept data volume's key (its id for the provider), or None."""
        return self._ask("vol-key", "--pool", self.pool, volume)


def deploy_vms(target: Target, spec: EnvironmentSpec, ctx: DeployContext) -> Outputs:
    """Pool, networks, guest image, then the spec's tiers, registry, VMs and hosts as VMs."""
    problems = check_guest_image(spec)
    if problems:
        raise SpecError(problems)
    uri = target.uri(spec)
    provider = libvirt.Provider(f"{ctx.env}-libvirt", uri=uri)
    domain_type = spec.engine.domain_type or target.domain_type or "kvm"
    host = LibvirtHost(namespace=ctx.env, provider=provider, domain_type=domain_type)
    path = naming.pool_path(ctx.env, spec.engine.pool_path)
    pool = libvirt.Pool(
        naming.pool(ctx.env),
        name=naming.pool(ctx.env),
        type="dir",
        path=path,
        opts=pulumi.ResourceOptions(provider=provider),
    )
    kept = KeptData(uri, naming.data_pool(ctx.env))
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
        n.name: Network(f"{ctx.env}-{n.name}", NetworkArgs(placement=host, cidr=str(n.cidr)))
        for n in spec.networks
    }
    image = BaseImage(
        f"{ctx.env}-guest",
        BaseImageArgs(host=host, pool=pool.name, image=GuestImage.from_dir(guest_image_dir(spec))),
    )

    def on(network: str | None) -> LibvirtPlacement:
        net = networks[network or spec.networks[0].name]
        return LibvirtPlacement(
            namespace=ctx.env,
            provider=provider,
            domain_type=domain_type,
            pool=pool.name,
            data_pool=data_pool.name,
            network_id=net.network_id,
            image=image.ids,
            find_kept=kept.volume_id,
        )

    outputs: dict[str, object] = {"target": target.name, "engine": uri}
    if spec.registry.enabled:
        reg = spec.registry
        registry = Registry(
            f"{ctx.env}-registry",
            RegistryArgs(
                placement=on(None),
                storage=reg.storage,
                size_gib=reg.size_gib,
                username=reg.username if reg.auth else None,
                password=ctx.registry_password,
            ),
        )
        outputs |= registry_outputs(registry)
    if spec.tiers:
        stack = ServiceStack(
            ctx.env,
            ServiceStackArgs(placement=on(spec.tiers[0].network), tiers=stack_tiers(spec, {})),
        )
        outputs |= stack_outputs(stack)
    vms: dict[str, object] = {}
    for vm in spec.vms:
        for i in range(vm.count):
            name = f"{ctx.env}-{vm.name}" + (f"-{i}" if vm.count > 1 else "")
            machine = VirtualMachine(
                name,
                VirtualMachineArgs(
                    placement=on(vm.network),
                    user_data=user_data(
                        "vm",
                        extra=vm.cloud_init,
                        hostname=name,
                        user="virtstack",
                        ssh_authorized_keys=[],
                    ),
                    cpus=vm.cpus,
                    memory_mib=vm.memory,
                    disk_gib=vm.disk,
                ),
            )
            vms[name] = machine.address
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
                    ssh_opts=spec.engine.ssh_opts,
                ),
            )
            hosts[name] = ch.docker_host
    return outputs | {"vms": vms, "container_hosts": hosts}


def vm_target(
    *, name: str, summary: str, uri_schemes: tuple[str, ...], domain_type: str, remote: bool
) -> Target:
    """A target deploying onto libvirt: hostos and hypervisor differ only in these."""
    capabilities = {
        Capability.SERVICE_TIERS,
        Capability.REGISTRY,
        Capability.PERSISTENT_DATA,
        Capability.VMS,
        Capability.CONTAINER_HOSTS,
    }
    if remote:
        capabilities.add(Capability.REMOTE_ENGINE)

    def deploy(spec: EnvironmentSpec, ctx: DeployContext) -> Outputs:
        return deploy_vms(target, spec, ctx)

    target = Target(
        name=name,
        summary=summary,
        engine="libvirt",
        default_uri="qemu:///system",
        uri_schemes=uri_schemes,
        capabilities=frozenset(capabilities),
        domain_type=domain_type,
        deploy=deploy,
        extra_checks=check_vm_networks,
    )
    return target
