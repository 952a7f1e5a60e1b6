"""Images virtstack builds on this machine and where it keeps them (``$VIRTSTACK_CACHE``)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from virtstack.configkeys import key

if TYPE_CHECKING:
    from virtstack.spec import EnvironmentSpec, VmSpec

GUEST_VERSION_FILE = Path(__file__).resolve().parents[1] / "images" / "guest" / "VERSION"


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


QCOW2_MAGIC = b"QFI\xfb"


def check_guest_image(spec: EnvironmentSpec) -> list[str]:
    """A VM environment needs a built guest image, and each VM's own image, before
    anything is created."""
    problems = []
    path = guest_image_dir(spec)
    if not (path / "manifest.json").is_file():
        problems.append(
            f"{key('images', 'guest')}: no guest image at {path} "
            "(build one with images/guest/build.sh)"
        )
    for i, vm in enumerate(spec.vms):
        if isinstance(vm.image, str) and (problem := _qcow2_problem(Path(vm.image))):
            problems.append(f"{key('vms', i, 'image')}: {problem}")
    return problems


def _qcow2_problem(path: Path) -> str | None:
    try:
        with path.open("rb") as image:
            magic = image.read(len(QCOW2_MAGIC))
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror})"
    if magic != QCOW2_MAGIC:
        return f"{path} is not a qcow2 image"
    try:
        first_sector(path)
    except subprocess.CalledProcessError as exc:
        # qemu-img's last line names the file again before the reason: keep the reason.
        why = (exc.stderr.strip().splitlines() or ["no message"])[-1].rpartition(": ")[2]
        return f"{path} cannot be read by qemu-img ({why})"
    except FileNotFoundError:
        return f"{path} cannot be read: no qemu-img here (apt install qemu-utils)"
    return None


MBR_SIGNATURE = b"\x55\xaa"
"""The last two bytes of a sector holding an MBR partition table (GPT's protective
MBR too): a bare filesystem (ext4, XFS) has none there."""


def first_sector(path: Path) -> bytes:
    """The first 512 bytes a guest reads from the qcow2 disk at ``path`` (by qemu-img,
    which follows backing files and compression)."""
    with tempfile.TemporaryDirectory(prefix="virtstack-sector-") as tmp:
        sector = Path(tmp) / "sector"
        argv = ["qemu-img", "dd", "-f", "qcow2", "-O", "raw", "bs=512", "count=1"]
        subprocess.run(
            [*argv, f"if={path}", f"of={sector}"],
            check=True,
            capture_output=True,
            text=True,
        )
        return sector.read_bytes()


def vm_boot(vm: VmSpec) -> Literal["disk", "kernel"]:
    """How a VM with an image of its own boots (see ``VmSpec.boot``)."""
    if vm.boot != "auto":
        return vm.boot
    if isinstance(vm.image, str):
        return "disk" if first_sector(Path(vm.image))[510:512] == MBR_SIGNATURE else "kernel"
    return "disk"  # a pool volume: not read before it boots
