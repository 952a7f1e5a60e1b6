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


def check_guest_image(spec: EnvironmentSpec) -> list[str]:
    """A VM environment needs a built guest image before anything is created."""
    path = guest_image_dir(spec)
    if not (path / "manifest.json").is_file():
        return [
            f"{key('images', 'guest')}: no guest image at {path} "
            "(build one with images/guest/build.sh)"
        ]
    return []
