"""``virtstack doctor``: is this machine ready? One check a line, and a fix for each failure.

Each check is a plain function returning a :class:`Check`; :func:`run_all` runs them all.
A warning (KVM missing: VMs run emulated; the development passphrase) is not a failure.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from virtstack import images, toolchain
from virtstack.engines.base import EngineAdapter
from virtstack.engines.docker import ADAPTER as DOCKER
from virtstack.engines.libvirt import ADAPTER as LIBVIRT

DOCKER_URI = "unix:///var/run/docker.sock"
LIBVIRT_URI = "qemu:///system"
PLUGINS = {"docker": "pulumi-docker", "libvirt": "pulumi-libvirt"}
"""Provider plugin -> the Python SDK package whose version it must have."""
MIN_FREE_GIB = 5
POOLS = Path("/var/lib/virtstack/pools")
VERSIONS_ENV = Path(__file__).resolve().parents[1] / "images" / "versions.env"


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, the verdict, and how to fix a failure."""

    name: str
    level: Level
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.level is Level.FAIL


@dataclass(frozen=True)
class Machine:
    """Where the checks look: the project, the engines' URIs, the cache."""

    project: Path
    docker_uri: str = DOCKER_URI
    libvirt_uri: str = LIBVIRT_URI
    cache: Path = field(default_factory=images.cache_dir)


def _engine(name: str, adapter: EngineAdapter, uri: str, fix: str) -> Check:
    """An engine answers at ``uri``, or the check fails with ``fix``."""
    found = adapter.probe(uri)
    level = Level.OK if found.reachable else Level.FAIL
    return Check(name, level, f"{uri}: {found.detail}", "" if found.reachable else fix)


def docker_engine(m: Machine) -> Check:
    return _engine(
        "docker engine",
        DOCKER,
        m.docker_uri,
        "start dockerd (tools/setup.sh), or point --docker-uri / VIRTSTACK_DOCKER_URI at it",
    )


def libvirt_daemon(m: Machine) -> Check:
    return _engine(
        "libvirtd",
        LIBVIRT,
        m.libvirt_uri,
        "start libvirtd (tools/setup.sh), or point --libvirt-uri / VIRTSTACK_LIBVIRT_URI at it",
    )


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def pulumi_cli(m: Machine) -> Check:
    """The toolchain's CLI runs and is not older than the Python SDK."""
    binary = toolchain.toolchain_dir(m.project) / "bin" / "pulumi"
    fix = f"run tools/toolchain.sh in {m.project}"
    if not binary.is_file():
        return Check("pulumi CLI", Level.FAIL, f"not built: no {binary}", fix)
    try:
        done = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("pulumi CLI", Level.FAIL, f"{binary} does not run: {exc}", fix)
    cli, sdk = done.stdout.strip(), importlib.metadata.version("pulumi")
    if _version(cli) < _version(sdk):
        return Check("pulumi CLI", Level.FAIL, f"{cli} is older than the SDK's {sdk}", fix)
    return Check("pulumi CLI", Level.OK, f"{cli} (SDK {sdk})")


def plugins(m: Machine) -> Iterator[Check]:
    """Each provider plugin is installed in exactly its Python SDK's version."""
    found = toolchain.toolchain_dir(m.project) / "home" / "plugins"
    for plugin, package in PLUGINS.items():
        want = importlib.metadata.version(package)
        name = f"plugin {plugin}"
        if (found / f"resource-{plugin}-v{want}").is_dir():
            yield Check(name, Level.OK, f"v{want} (SDK {package} {want})")
            continue
        have = sorted(p.name for p in found.glob(f"resource-{plugin}-v*") if p.is_dir())
        yield Check(
            name,
            Level.FAIL,
            f"resource-{plugin}-v{want} missing in {found}"
            + (f" (found {', '.join(have)})" if have else ""),
            f"run tools/toolchain.sh in {m.project}",
        )


def container_images(m: Machine) -> Iterator[Check]:
    """The images images/build.sh makes are on the Docker engine."""
    tags = re.findall(r"^[A-Z_]+_IMAGE=(\S+)$", VERSIONS_ENV.read_text(), re.M)
    for tag in tags:
        if DOCKER.image_exists(m.docker_uri, tag):
            yield Check(f"image {tag}", Level.OK, f"on {m.docker_uri}")
        else:
            yield Check(f"image {tag}", Level.FAIL, "not built", "run images/build.sh")


def guest_image(m: Machine) -> Check:
    version = images.GUEST_VERSION_FILE.read_text().strip()
    path = m.cache / "guest" / version
    if (path / "manifest.json").is_file():
        return Check("guest image", Level.OK, str(path))
    return Check("guest image", Level.FAIL, f"not built: no {path}", "run images/guest/build.sh")


def kvm(m: Machine) -> Check:
    """Informational: without KVM, VMs run under software emulation (domain type qemu)."""
    device = Path("/dev/kvm")
    if device.exists() and os.access(device, os.R_OK | os.W_OK):
        return Check("kvm", Level.OK, "/dev/kvm usable: domain type kvm available")
    why = "absent" if not device.exists() else "not accessible to this user"
    return Check("kvm", Level.WARN, f"/dev/kvm {why}: VMs run emulated (domain type qemu)")


def free_disk(m: Machine) -> Iterator[Check]:
    """Room for storage pools (VM disks) and the cache (images, backups)."""
    for what, path in (("pools", POOLS), ("cache", m.cache)):
        existing = next(p for p in (path, *path.parents) if p.exists())
        free = shutil.disk_usage(existing).free / 2**30
        line = f"{free:.1f} GiB free at {path}"
        if free < MIN_FREE_GIB:
            yield Check(f"disk {what}", Level.FAIL, line, f"free at least {MIN_FREE_GIB} GiB there")
        else:
            yield Check(f"disk {what}", Level.OK, line)


def passphrase(m: Machine) -> Check:
    """Stack secrets are encrypted with the passphrase Pulumi is given."""
    path = os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if path:
        if Path(path).is_file() and os.access(path, os.R_OK):
            return Check("state passphrase", Level.OK, f"from {path}")
        return Check(
            "state passphrase",
            Level.FAIL,
            f"PULUMI_CONFIG_PASSPHRASE_FILE={path} is not a readable file",
            "create it, or unset the variable",
        )
    if os.environ.get("PULUMI_CONFIG_PASSPHRASE"):
        return Check("state passphrase", Level.OK, "from PULUMI_CONFIG_PASSPHRASE")
    own = m.project / ".virtstack" / "passphrase"
    if not own.exists():
        return Check("state passphrase", Level.OK, f"{own} is made (random, 0600) on first use")
    if own.stat().st_mode & 0o077:
        return Check(
            "state passphrase", Level.FAIL, f"{own} is readable by others", f"chmod 600 {own}"
        )
    if own.read_text().strip() == toolchain.LEGACY_PASSPHRASE:
        return Check(
            "state passphrase",
            Level.WARN,
            f"{own} holds virtstack 0.1's fixed passphrase (anyone can decrypt the secrets)",
            "for each stack: pulumi stack change-secrets-provider passphrase, then a new "
            "random passphrase in that file",
        )
    return Check("state passphrase", Level.OK, f"the project's own, {own} (0600)")


def stale_locks(m: Machine) -> Check:
    """Pulumi's file backend locks a stack during a run; a crashed run leaves its lock."""
    from virtstack.runner import pulumi_locks

    stale = sorted({lock.stack for lock in pulumi_locks(m.project) if not lock.alive()})
    if not stale:
        return Check("stack locks", Level.OK, "no stale locks")
    return Check(
        "stack locks",
        Level.FAIL,
        f"stale lock(s) of {', '.join(stale)} (their runs are gone)",
        "; ".join(f"virtstack unlock {stack}" for stack in stale),
    )


CHECKS: list[Callable[[Machine], Check | Iterator[Check]]] = [
    docker_engine,
    libvirt_daemon,
    pulumi_cli,
    plugins,
    container_images,
    guest_image,
    kvm,
    free_disk,
    passphrase,
    stale_locks,
]


def run_all(m: Machine) -> list[Check]:
    """Every check's lines, in order; a check that finds its engine down is not repeated
    as image failures (they need the engine)."""
    found: list[Check] = []
    for check in CHECKS:
        if check is container_images and found[0].failed:
            found.append(
                Check("container images", Level.WARN, "not checked: the Docker engine is down")
            )
            continue
        result = check(m)
        found.extend([result] if isinstance(result, Check) else result)
    return found
