"""Components on a libvirt placement (the hostos and hypervisor targets), under mocks."""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from virtstack_components.cloudinit import content_hash, user_data
from virtstack_components.libvirt.addresses import plan_network
from virtstack_components.libvirt.container_host import ContainerHost, ContainerHostArgs
from virtstack_components.libvirt.firewall import TierAccess
from virtstack_components.libvirt.image import BaseImage, BaseImageArgs, GuestImage
from virtstack_components.libvirt.network import LibvirtNetwork, LibvirtNetworkArgs
from virtstack_components.libvirt.placement import GuestImageIds, LibvirtHost, LibvirtPlacement
from virtstack_components.libvirt.registry import VmRegistry, VmRegistryArgs
from virtstack_components.libvirt.vm import (
    DataDisk,
    VirtualMachine,
    VirtualMachineArgs,
    kernel_args,
)
from virtstack_components.registry import Credentials, ServerTls
from virtstack_components.stack import ServiceStack, ServiceStackArgs, StackTier
from virtstack_components.tier import DataVolume, Publish, TierArgs

from tests.unit.conftest import seed_file
from virtstack.errors import ComponentError

HOST = LibvirtHost(namespace="lab", domain_type="qemu")
IMAGE = GuestImageIds(
    disk="disk-id", kernel="kernel-id", initrd="initrd-id", cmdline="root=/dev/vda ro"
)
PLACEMENT = LibvirtPlacement(
    namespace="lab",
    domain_type="qemu",
    pool="lab-pool",
    data_pool="lab-data",
    network_id="net-id",
    image=IMAGE,
)
DOMAIN = "libvirt:index/domain:Domain"
VOLUME = "libvirt:index/volume:Volume"


def cloud_config(seed) -> dict:
    text = seed_file(seed, "user-data")
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def test_libvirt_network_is_nat_with_dhcp(run):
    def program():
        LibvirtNetwork("lab-net", LibvirtNetworkArgs(host=HOST, cidr="192.168.151.0/24"))

    d = run(program)
    (net,) = d.children(d.named("lab-net"))
    assert net.type == "libvirt:index/network:Network"
    assert net.inputs["name"] == "lab-net"
    assert net.inputs["mode"] == "nat"
    assert net.inputs["addresses"] == ["192.168.151.0/24"]
    assert net.inputs["dhcp"] == {"enabled": True}


def test_base_image_uploads_disk_kernel_and_initrd(run, guest_dir: Path):
    image = GuestImage.from_dir(guest_dir)
    assert image.cmdline == "root=/dev/vda console=ttyS0 ro"

    def program():
        BaseImage("lab-guest", BaseImageArgs(host=HOST, pool="lab-pool", image=image))

    d = run(program)
    vols = {v.name: v.inputs for v in d.of_type(VOLUME)}
    assert vols["lab-guest-disk"]["source"] == str(guest_dir / "disk.qcow2")
    assert vols["lab-guest-disk"]["format"] == "qcow2"
    assert vols["lab-guest-kernel"]["source"] == str(guest_dir / "vmlinuz")
    assert vols["lab-guest-initrd"]["format"] == "raw"
    assert all(v.parent == d.named("lab-guest").urn for v in d.of_type(VOLUME))


def test_kernel_command_line_takes_the_shape_the_provider_reads_back():
    # As read back from a running domain (a different shape would be drift).
    assert kernel_args("root=/dev/vda rw console=ttyS0,115200n8 quiet net.ifnames=0") == [
        {"console": "ttyS0,115200n8", "net.ifnames": "0", "root": "/dev/vda"},
        {"_": "quiet rw"},
    ]
    assert kernel_args("root=/dev/vda") == [{"root": "/dev/vda"}]


def test_virtual_machine_boots_its_cow_disk_with_a_seed_named_by_content(run):
    data = user_data("vm", hostname="lab-tools", user="virtstack", ssh_authorized_keys=[])

    def program():
        VirtualMachine(
            "lab-tools",
            VirtualMachineArgs(
                placement=PLACEMENT,
                user_data=data,
                cpus=2,
                memory_mib=768,
                disk_gib=4,
                data_disks=[DataDisk(name="lab-tools-data", size_gib=2)],
            ),
        )

    d = run(program)
    vm = d.named("lab-tools")
    assert vm.type == "virtstack:libvirt:VirtualMachine"
    digest = content_hash(data)
    root = d.named("lab-tools-root")
    assert root.inputs["name"] == f"lab-tools-root-{digest}.qcow2"
    assert root.inputs["baseVolumeId"] == "disk-id"
    assert root.inputs["size"] == 4 * 1024**3
    seed = d.named("lab-tools-seed")
    assert seed.type == VOLUME
    assert seed.ignore_changes == ["format"]
    assert seed.inputs["name"] == f"lab-tools-seed-{digest}.iso"
    assert seed_file(seed, "user-data") == data
    assert (
        seed_file(seed, "meta-data")
        == f"instance-id: lab-tools-{digest}\nlocal-hostname: lab-tools\n"
    )
    assert Path(seed.inputs["source"]).stat().st_mode & 0o777 == 0o600
    data_disk = d.named("lab-tools-data-lab-tools-data")
    assert data_disk.inputs["name"] == "lab-tools-data.qcow2"
    assert data_disk.retain_on_delete
    assert not root.retain_on_delete
    domain = d.named("lab-tools-domain")
    assert domain.delete_before_replace
    assert domain.inputs["type"] == "qemu"
    assert domain.inputs["vcpu"] == 2
    assert domain.inputs["memory"] == 768
    assert domain.inputs["kernel"] == "kernel-id"
    assert domain.inputs["initrd"] == "initrd-id"
    assert domain.inputs["cmdlines"] == [{"root": "/dev/vda"}, {"_": "ro"}]
    assert "cloudinit" not in domain.inputs
    assert [disk["volumeId"] for disk in domain.inputs["disks"]] == [
        "lab-tools-root-id",
        "lab-tools-data-lab-tools-data-id",
        "lab-tools-seed-id",
    ]
    assert domain.inputs["networkInterfaces"][0]["networkId"] == "net-id"
    assert domain.inputs["networkInterfaces"][0]["waitForLease"] is True
    assert domain.inputs["qemuAgent"] is True
    for child in (root, seed, data_disk, domain):
        assert child.parent == vm.urn


def test_new_cloud_config_means_a_new_root_disk_and_seed(run):
    def vm(message: str):
        def program():
            VirtualMachine(
                "lab-tools",
                VirtualMachineArgs(
                    placement=PLACEMENT,
                    user_data=user_data(
                        "vm",
                        extra={"runcmd": [["echo", message]]},
                        hostname="lab-tools",
                        user="virtstack",
                        ssh_authorized_keys=[],
                    ),
                    data_disks=[DataDisk(name="lab-tools-data", size_gib=1)],
                ),
            )

        return program

    a, b = run(vm("one")), run(vm("two"))
    for role in ("lab-tools-root", "lab-tools-seed"):
        assert a.named(role).inputs["name"] != b.named(role).inputs["name"]
    # The data disk keeps its name, so the replacement VM gets the same data back.
    disk = "lab-tools-data-lab-tools-data"
    assert a.named(disk).inputs["name"] == b.named(disk).inputs["name"]


def test_container_host_runs_docker_reachable_over_ssh(run):
    def program():
        ContainerHost(
            "lab-docker",
            ContainerHostArgs(
                placement=PLACEMENT,
                ssh_authorized_keys=["ssh-ed25519 AAAAC3Nza lab@example"],
                registries=["192.0.2.1:5000"],
            ),
        )

    d = run(program)
    host = d.named("lab-docker")
    assert host.type == "virtstack:libvirt:ContainerHost"
    assert d.named("lab-docker-vm").parent == host.urn
    config = cloud_config(d.named("lab-docker-vm-seed"))
    assert "docker.io" in config["packages"]
    assert ["systemctl", "enable", "--now", "docker"] in config["runcmd"]
    assert config["users"][0]["ssh_authorized_keys"] == ["ssh-ed25519 AAAAC3Nza lab@example"]
    daemon = next(f for f in config["write_files"] if f["path"] == "/etc/docker/daemon.json")
    assert '"insecure-registries": ["192.0.2.1:5000"]' in daemon["content"]  # no CA: HTTP


def test_a_container_host_verifies_the_registry_by_the_environments_ca(run):
    ca = "-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n"

    def program():
        ContainerHost(
            "lab-docker",
            ContainerHostArgs(placement=PLACEMENT, registries=["192.0.2.1:5000"], registry_ca=ca),
        )

    files = {
        f["path"]: f["content"]
        for f in cloud_config(run(program).named("lab-docker-vm-seed"))["write_files"]
    }
    assert files["/etc/docker/certs.d/192.0.2.1:5000/ca.crt"] == ca
    assert '"insecure-registries": []' in files["/etc/docker/daemon.json"]


def test_registry_on_a_vm_keeps_blobs_on_a_data_disk(run):
    def program():
        VmRegistry(
            "lab-registry",
            VmRegistryArgs(placement=PLACEMENT, credentials=Credentials(password="pw"), size_gib=5),
        )

    d = run(program)
    disk = d.named("lab-registry-vm-data-lab_registry-data")
    assert disk.retain_on_delete
    assert disk.inputs["size"] == 5 * 1024**3
    seed = d.named("lab-registry-vm-seed")
    assert "source" in seed.secrets  # it carries the htpasswd entry
    config = cloud_config(seed)
    files = {f["path"]: f["content"] for f in config["write_files"]}
    assert files["/etc/docker/registry/htpasswd"].startswith("virtstack:$2b$")
    assert ["/dev/vdb", "/var/lib/docker-registry", "ext4", "defaults,nofail", "0", "2"] in config[
        "mounts"
    ]


def test_a_registry_vm_serves_https_its_secrets_root_only_files_read_by_systemd(run):
    tls = ServerTls(certificate="CERT", key="KEY", ca="CA")

    def program():
        VmRegistry(
            "lab-registry",
            VmRegistryArgs(
                placement=PLACEMENT,
                credentials=Credentials(password="pw"),
                address="192.168.151.254",
                tls=tls,
            ),
        )

    d = run(program)
    nic = d.named("lab-registry-vm-domain").inputs["networkInterfaces"][0]
    assert nic["addresses"] == ["192.168.151.254"]  # a DHCP reservation: known before boot
    seed = d.named("lab-registry-vm-seed")
    files = {f["path"]: f for f in cloud_config(seed)["write_files"]}
    key = files["/etc/docker/registry/tls/registry.key"]
    assert (key["content"], key["permissions"]) == ("KEY", "0600")
    assert files["/etc/docker/registry/htpasswd"]["permissions"] == "0600"
    assert files["/etc/docker/registry/tls/registry.crt"]["content"] == "CERT"
    config = yaml.safe_load(files["/etc/docker/registry/config.yml"]["content"])
    credentials = "/run/credentials/docker-registry.service"
    assert config["http"]["tls"]["key"] == f"{credentials}/registry.key"
    assert config["auth"]["htpasswd"]["path"] == f"{credentials}/htpasswd"
    dropin = files["/etc/systemd/system/docker-registry.service.d/virtstack-credentials.conf"]
    assert dropin["content"].splitlines()[-2:] == [
        "LoadCredential=htpasswd:/etc/docker/registry/htpasswd",
        "LoadCredential=registry.key:/etc/docker/registry/tls/registry.key",
    ]
    # The seed in the pool is readable by its owner only (the provider asks for 0644).
    xslt = seed.inputs["xml"]["xslt"]
    volume = "<volume><target><format type='raw'/><permissions><mode>644</mode>"
    assert "<mode>0600</mode>" in xsltproc(xslt, volume + "</permissions></target></volume>")


def xsltproc(xslt: str, xml: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "t.xsl").write_text(xslt)
        (Path(tmp) / "in.xml").write_text(xml)
        argv = ["xsltproc", f"{tmp}/t.xsl", f"{tmp}/in.xml"]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def planned(*tiers: str, slots: int = 10) -> LibvirtPlacement:
    """PLACEMENT with addresses planned on 192.168.151.0/24 for ``tiers`` (front first,
    each feeding the next)."""
    plan = plan_network("192.168.151.0/24", [slots] * len(tiers), 0)
    access = {
        f"lab-{t}": TierAccess(
            addresses=plan.tiers[i],
            gateway=plan.gateway,
            clients=list(plan.tiers[i - 1].slots) if i else [plan.gateway, "10.0.2.0/24"],
        )
        for i, t in enumerate(tiers)
    }
    return dataclasses.replace(PLACEMENT, tier_access=access)


def test_service_stack_on_vms_puts_haproxy_on_its_own_vm(run):
    tiers = [
        StackTier(
            name="web",
            args=TierArgs(
                command=["busybox", "httpd", "-f", "-p", "8080"],
                replicas=2,
                max_replicas=2,
                publish=Publish(port=8080),
            ),
            upstream="db",
        ),
        StackTier(
            name="db",
            args=TierArgs(command=["db-server"], volume=DataVolume(name="db-data", path="/data")),
        ),
    ]

    def program():
        ServiceStack("lab", ServiceStackArgs(placement=planned("web", "db"), tiers=tiers))

    d = run(program)
    domains = sorted(r.inputs["name"] for r in d.of_type(DOMAIN))
    assert domains == ["lab-db-0", "lab-db-lb", "lab-web-0", "lab-web-1", "lab-web-lb"]
    # Each VM's address is planned and reserved for its MAC before it boots.
    nics = {r.inputs["name"]: r.inputs["networkInterfaces"][0] for r in d.of_type(DOMAIN)}
    assert {name: nic["addresses"] for name, nic in nics.items()} == {
        "lab-web-lb": ["192.168.151.16"],
        "lab-web-0": ["192.168.151.17"],
        "lab-web-1": ["192.168.151.18"],
        "lab-db-lb": ["192.168.151.32"],
        "lab-db-0": ["192.168.151.33"],
    }
    lb = cloud_config(d.named("lab-web-lb-seed"))
    cfg = next(f for f in lb["write_files"] if f["path"] == "/etc/haproxy/haproxy.cfg")["content"]
    # Every slot is listed, made or not: scaling within them leaves the LB VM alone.
    listed = [ln.split()[1:3] for ln in cfg.splitlines() if ln.strip().startswith("server ")]
    assert listed == [[f"lab-web-{i}", f"192.168.151.{17 + i}:8080"] for i in range(10)]
    web = cloud_config(d.named("lab-web-replica-0-seed"))
    unit = next(f for f in web["write_files"] if f["path"].endswith("virtstack-lab-web.service"))
    assert "ExecStart=busybox httpd -f -p 8080" in unit["content"]
    assert 'Environment="VIRTSTACK_UPSTREAM=http://192.168.151.32:80"' in unit["content"]
    db = cloud_config(d.named("lab-db-replica-0-seed"))
    assert db["fs_setup"][0]["device"] == "/dev/vdb"
    assert d.named("lab-db-replica-0-data-lab_db-data_0").retain_on_delete


def firewall_of(config: dict) -> list[str]:
    """The service-port rules of a VM's IPv4 firewall (SSH and ping aside)."""
    rules = next(f for f in config["write_files"] if f["path"] == "/etc/virtstack/firewall.v4")
    lines = rules["content"].splitlines()
    return [
        ln
        for ln in lines
        if ln.startswith("-A INPUT -s") and "-p tcp --dport 22 " not in ln and "icmp" not in ln
    ]


def test_each_tier_vm_accepts_its_port_only_from_the_tier_in_front(run):
    tiers = [
        StackTier(
            name="web", args=TierArgs(command=["w"], publish=Publish(port=8080)), upstream="db"
        ),
        StackTier(name="db", args=TierArgs(command=["d"], port=5432)),
    ]
    d = run(
        lambda: ServiceStack(
            "lab", ServiceStackArgs(placement=planned("web", "db", slots=2), tiers=tiers)
        )
    )
    seeds = {name: cloud_config(d.named(f"{name}-seed")) for name in (
        "lab-web-lb", "lab-web-replica-0", "lab-db-lb", "lab-db-replica-0")}  # fmt: skip
    assert firewall_of(seeds["lab-web-lb"]) == [
        "-A INPUT -s 192.168.151.1/32 -p tcp --dport 80 -j ACCEPT",
        "-A INPUT -s 10.0.2.0/24 -p tcp --dport 80 -j ACCEPT",
    ]
    assert firewall_of(seeds["lab-web-replica-0"]) == [
        "-A INPUT -s 192.168.151.16/32 -p tcp --dport 8080 -j ACCEPT"
    ]
    assert firewall_of(seeds["lab-db-lb"]) == [
        "-A INPUT -s 192.168.151.17/32 -p tcp --dport 80 -j ACCEPT",
        "-A INPUT -s 192.168.151.18/32 -p tcp --dport 80 -j ACCEPT",
    ]
    assert firewall_of(seeds["lab-db-replica-0"]) == [
        "-A INPUT -s 192.168.151.32/32 -p tcp --dport 5432 -j ACCEPT"
    ]
    for seed in seeds.values():
        assert ["systemctl", "enable", "--now", "virtstack-firewall.service"] in seed["runcmd"]


def test_a_vm_tier_without_planned_addresses_is_refused(run):
    tiers = [StackTier(name="web", args=TierArgs(command=["w"]))]
    with pytest.raises(ComponentError, match="tier lab-web: no addresses planned"):
        run(lambda: ServiceStack("lab", ServiceStackArgs(placement=PLACEMENT, tiers=tiers)))


def test_vm_replicas_need_a_command(run):
    tiers = [StackTier(name="web", args=TierArgs(image="only-a-container-image"))]
    with pytest.raises(ComponentError, match="tier lab-web: VM replicas need a command"):
        run(lambda: ServiceStack("lab", ServiceStackArgs(placement=PLACEMENT, tiers=tiers)))


def test_a_vm_keeps_its_mac_and_so_its_address_when_replaced(run):
    from virtstack_components.libvirt.vm import stable_mac

    def program():
        VirtualMachine(
            "lab-a", VirtualMachineArgs(placement=PLACEMENT, user_data="#cloud-config\n")
        )

    d = run(program)
    [nic] = d.named("lab-a-domain").inputs["networkInterfaces"]
    assert nic["mac"] == stable_mac("lab-a")
    assert stable_mac("lab-a") == stable_mac("lab-a") != stable_mac("lab-b")
    assert stable_mac("lab-a").startswith("52:54:00:")
