"""A VM's own image: a local qcow2 (bare root filesystem or a partitioned disk with its own
bootloader) or a volume in a libvirt pool; under mocks, with real images made by qemu-img."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.unit.test_program import DOMAIN, VOLUME, config_of
from virtstack.engines.libvirt import LibvirtAdapter
from virtstack.errors import SpecError
from virtstack.images import MBR_SIGNATURE, first_sector, vm_boot
from virtstack.program import main
from virtstack.spec import PoolVolume, parse_spec

SECTOR = 512


def qcow2(tmp_path: Path, name: str, *, partitions: str | None = None, ext4: bool = False) -> Path:
    """A small qcow2 made from a raw disk: a partition table by sfdisk, or a bare ext4."""
    raw, image = tmp_path / f"{name}.raw", tmp_path / f"{name}.qcow2"
    subprocess.run(["truncate", "-s", "16M", str(raw)], check=True)
    if partitions is not None:
        subprocess.run(["sfdisk", "-q", str(raw)], input=partitions, text=True, check=True)
    if ext4:
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(raw)], check=True)
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(image)], check=True)
    return image


@pytest.mark.parametrize(
    ("partitions", "ext4", "boot"),
    [
        ("label: dos\nstart=2048, type=83, bootable\n", False, "disk"),
        ("label: gpt\nstart=2048, type=linux\n", False, "disk"),
        (None, True, "kernel"),
        (None, False, "kernel"),
    ],
    ids=["mbr", "gpt", "bare-ext4", "blank"],
)
def test_a_file_boots_from_disk_exactly_when_its_first_sector_holds_a_partition_table(
    tmp_path: Path, partitions: str | None, ext4: bool, boot: str
) -> None:
    image = qcow2(tmp_path, "own", partitions=partitions, ext4=ext4)
    assert len(first_sector(image)) == SECTOR
    assert (first_sector(image)[510:] == MBR_SIGNATURE) is (boot == "disk")
    spec = parse_spec({"target": "hostos", "vms": [{"name": "v", "image": str(image)}]})
    assert vm_boot(spec.vms[0]) == boot


def test_boot_said_in_the_spec_wins_and_a_pool_volume_boots_from_disk() -> None:
    volume = {"pool": "images", "volume": "debian-12.qcow2"}
    vms = [
        {"name": "a", "image": volume},
        {"name": "b", "image": volume, "boot": "kernel"},
        {"name": "c", "image": "/nowhere.qcow2", "boot": "disk"},
    ]
    spec = parse_spec({"target": "hostos", "vms": vms})
    assert spec.vms[0].image == PoolVolume(pool="images", volume="debian-12.qcow2")
    assert [vm_boot(vm) for vm in spec.vms] == ["disk", "kernel", "disk"]


@pytest.mark.parametrize(
    ("vm", "problem"),
    [
        (
            {"image": {"pool": "images"}},
            "virtstack:vms[0].image.volume: required",
        ),
        (
            {"image": {"pool": "images", "volume": "../etc/passwd"}},
            "virtstack:vms[0].image.volume: must be a libvirt pool or volume name: letters, "
            "digits and '_.+@:-', starting with a letter, digit or '_', at most 255 "
            "characters (got '../etc/passwd')",
        ),
        (
            {"image": {"pool": "images", "volume": "v", "format": "raw"}},
            "virtstack:vms[0].image.format: unknown key",
        ),
        (
            {"image": "/a.qcow2", "boot": "bios"},
            "virtstack:vms[0].boot: Input should be 'auto', 'disk' or 'kernel' (got 'bios')",
        ),
        (
            {"boot": "disk"},
            "virtstack:vms[0].boot: only a VM with an image of its own chooses how it boots "
            "(got 'disk')",
        ),
    ],
)
def test_a_bad_image_or_boot_is_one_line_naming_the_key(vm: dict, problem: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_spec({"target": "hostos", "vms": [{"name": "v", **vm}]})
    assert raised.value.problems == [problem]


def test_a_bare_filesystem_file_boots_with_the_guest_kernel(run, guest_dir: Path, tmp_path):
    own = qcow2(tmp_path, "variant", ext4=True)
    config = config_of("staging", images={"guest": str(guest_dir)})
    config["virtstack:vms"][0]["image"] = str(own)
    d = run(main, config, stack="staging")
    assert d.named("staging-tools-image-disk").inputs["source"] == str(own)
    # Only the disk is uploaded: the guest's kernel and initrd boot it.
    assert [r.name for r in d.of_type(VOLUME) if "tools-image" in r.name] == [
        "staging-tools-image-disk"
    ]
    assert d.named("staging-tools-root").inputs["baseVolumeId"] == "staging-tools-image-disk-id"
    tools = d.named("staging-tools-domain").inputs
    assert (tools["kernel"], tools["initrd"]) == (
        "staging-guest-kernel-id",
        "staging-guest-initrd-id",
    )
    assert "bootDevices" not in tools
    # Every other VM keeps the built guest's disk.
    roots = [r for r in d.of_type(VOLUME) if r.name.endswith("-root")]
    others = {r.inputs["baseVolumeId"] for r in roots if r.name != "staging-tools-root"}
    assert others == {"staging-guest-disk-id"}


def test_a_partitioned_file_boots_from_its_own_bootloader(run, guest_dir: Path, tmp_path):
    own = qcow2(tmp_path, "cloud", partitions="label: dos\nstart=2048, type=83, bootable\n")
    config = config_of("staging", images={"guest": str(guest_dir)})
    config["virtstack:vms"][0]["image"] = str(own)
    d = run(main, config, stack="staging")
    assert d.named("staging-tools-root").inputs["baseVolumeId"] == "staging-tools-image-disk-id"
    tools = d.named("staging-tools-domain").inputs
    assert not {"kernel", "initrd", "cmdlines"} & tools.keys(), tools
    assert tools["bootDevices"] == [{"devs": ["hd"]}]
    # The other VMs still boot the built guest directly.
    others = [r for r in d.of_type(DOMAIN) if r.name != "staging-tools-domain"]
    assert others
    assert all(r.inputs["kernel"] == "staging-guest-kernel-id" for r in others)


def test_a_pool_volume_is_the_backing_of_the_root_disk_and_nothing_is_uploaded(
    run, guest_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    asked: list[PoolVolume] = []

    def volume_key(self: LibvirtAdapter, uri: str, image: PoolVolume) -> str:
        asked.append(image)
        return f"/pools/{image.pool}/{image.volume}"

    monkeypatch.setattr(LibvirtAdapter, "volume_key", volume_key)
    config = config_of("staging", images={"guest": str(guest_dir)})
    config["virtstack:vms"][0]["image"] = {"pool": "images", "volume": "debian-12.qcow2"}
    d = run(main, config, stack="staging")
    assert asked == [PoolVolume(pool="images", volume="debian-12.qcow2")]
    assert not [r.name for r in d.of_type(VOLUME) if "tools-image" in r.name]
    root = d.named("staging-tools-root").inputs
    assert root["baseVolumeId"] == "/pools/images/debian-12.qcow2"
    assert root["pool"] == "staging-pool"  # the layer is the environment's
    tools = d.named("staging-tools-domain").inputs
    assert "kernel" not in tools
    assert tools["bootDevices"] == [{"devs": ["hd"]}]


def test_a_pool_volume_gone_since_preflight_is_refused_naming_the_key(
    run, guest_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(LibvirtAdapter, "volume_key", lambda self, uri, image: None)
    config = config_of("staging", images={"guest": str(guest_dir)})
    config["virtstack:vms"][0]["image"] = {"pool": "images", "volume": "gone.qcow2"}
    with pytest.raises(SpecError) as raised:
        run(main, config, stack="staging")
    assert raised.value.problems == ["virtstack:vms[0].image: no such volume on qemu:///system"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot be read (No such file or directory)"),
        (b"raw bytes", "is not a qcow2 image"),
        (b"QFI\xfbstand-in", "cannot be read by qemu-img (Unsupported qcow2 version 1937006958)"),
    ],
    ids=["missing", "not-qcow2", "broken-qcow2"],
)
def test_a_vm_image_that_is_missing_or_not_qcow2_is_refused_naming_the_key(
    run, guest_dir: Path, tmp_path, content, problem
):
    own = tmp_path / "variant.qcow2"
    if content is not None:
        own.write_bytes(content)
    config = config_of("staging", images={"guest": str(guest_dir)})
    config["virtstack:vms"][0]["image"] = str(own)
    with pytest.raises(SpecError) as raised:
        run(main, config, stack="staging")
    assert raised.value.problems == [f"virtstack:vms[0].image: {own} {problem}"]
