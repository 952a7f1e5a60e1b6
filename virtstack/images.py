"""Images virtstack builds on this machine and where it keeps them (``$VIRTSTACK_CACHE``)."""

from __future__ import annotations

import os
from pathlib import Path

from virtstack.spec import EnvironmentSpec, key

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
        if vm.image is not None and (problem := _qcow2_problem(Path(vm.image))):
            problems.append(f"{key('vms', i, 'image')}: {problem}")
    return problems


def _qcow2_problem(path: Path) -> str | None:
    try:
        with path.open("rb") as image:
            magic = image.read(len(QCOW2_MAGIC))
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror})"
    return None if magic == QCOW2_MAGIC else f"{path} is not a qcow2 image"
