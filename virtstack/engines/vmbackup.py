"""Live copies of VM disks, and putting them back, on a libvirt host.

A running VM keeps running: its guest agent freezes the guest's filesystems, libvirt's
backup job (push mode) starts a point-in-time copy of one disk into a scratch image beside
it, and the filesystems are thawed at once (the copy goes on in QEMU while the guest
writes). The scratch image is then streamed out with ``vol-download`` (through libvirt, so
a remote host needs no shell) and removed. A disk no running VM uses is streamed as it is.

The steps that must run in order, or whatever happened, are commands of this module
(``python -m virtstack.engines.vmbackup begin|release|fresh ...``), so that
:mod:`virtstack.guard` can run the release even if virtstack is killed.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed
from virtstack_components import names

from virtstack import naming
from virtstack.engines import guestagent, hostcmd
from virtstack.engines.base import DataCopy, DataWrite
from virtstack.errors import EngineCommandError, EngineUnreachableError

if TYPE_CHECKING:
    from virtstack.spec import EnvironmentSpec

DISK_SUFFIX = ".qcow2"
"""Every disk is a qcow2 image, the format its name ends in."""
SCRATCH_SUFFIX = ".backup"
"""A backup's scratch image: never a data disk (those end in ``.qcow2``)."""
JOB_SUFFIX = ".job"
"""Appended to the scratch image's name: the backup job's own target, cloned into it."""
JOB_TIMEOUT = 3600
"""Seconds one disk's backup job may take (a large disk under software emulation)."""
MODULE = [sys.executable, "-m", "virtstack.engines.vmbackup"]


class JobRunningError(EngineCommandError):
    """The backup job has not finished yet."""


@dataclass(frozen=True, kw_only=True)
class Attached:
    """A disk of a running domain: the domain and the disk's target device (``vdb``)."""

    domain: str
    target: str


def _virsh(uri: str, *args: str, timeout: float = hostcmd.DEFAULT_TIMEOUT) -> str:
    return hostcmd.run(hostcmd.virsh_argv(uri, *args), uri=uri, timeout=timeout)


def attached(uri: str, env: str) -> dict[tuple[str, str], Attached]:
    """The disks of the environment's running domains, by (pool, volume); a disk given by
    its file instead of its volume, by ("", path)."""
    found = {}
    for domain in _virsh(uri, "list", "--name").split():
        if not domain.startswith(f"{env}-"):
            continue
        xml = ET.fromstring(_virsh(uri, "dumpxml", domain))
        for disk in xml.iterfind("devices/disk[@device='disk']"):
            source, target = disk.find("source"), disk.find("target")
            if source is None or target is None:
                continue
            where = (source.get("pool", ""), source.get("volume") or source.get("file") or "")
            found[where] = Attached(domain=domain, target=target.get("dev", ""))
    return found


def _user(
    users: dict[tuple[str, str], Attached], uri: str, pool: str, volume: str
) -> Attached | None:
    return users.get((pool, volume)) or users.get(("", volume_path(uri, pool, volume)))


def volume_path(uri: str, pool: str, volume: str) -> str:
    return _virsh(uri, "vol-path", "--pool", pool, volume).strip()


def pool_dir(uri: str, pool: str) -> str:
    """The directory of a ``dir`` pool."""
    path = ET.fromstring(_virsh(uri, "pool-dumpxml", pool)).findtext("target/path")
    if not path:
        raise EngineCommandError(f"{uri}: pool {pool} has no directory")
    return path


def backup_xml(target: str, scratch: str) -> str:
    """A push-mode backup of disk ``target`` only, into the qcow2 image ``scratch``."""
    backup = ET.Element("domainbackup", mode="push")
    disks = ET.SubElement(backup, "disks")
    disk = ET.SubElement(disks, "disk", name=target, backup="yes", type="file")
    ET.SubElement(disk, "target", file=scratch)
    ET.SubElement(disk, "driver", type="qcow2")
    return ET.tostring(backup, encoding="unicode")


@contextlib.contextmanager
def frozen(uri: str, domain: str) -> Iterator[None]:
    """The guest's filesystems frozen for the block's length, thawed however it ends."""
    guestagent.agent(uri, domain, "guest-fsfreeze-freeze")
    try:
        yield
    finally:
        thaw(uri, domain)


def thaw(uri: str, domain: str) -> None:
    """Thaw the guest's filesystems unless they are thawed already."""
    if guestagent.agent(uri, domain, "guest-fsfreeze-status") != "thawed":
        guestagent.agent(uri, domain, "guest-fsfreeze-thaw")


@retry(
    stop=stop_after_delay(JOB_TIMEOUT),
    wait=wait_fixed(1),
    retry=retry_if_exception_type(JobRunningError),
    reraise=True,
)
def _job_done(uri: str, domain: str) -> None:
    info = _virsh(uri, "domjobinfo", domain)
    if _job_type(info) not in ("None", ""):
        raise JobRunningError(f"{domain}: backup job still running")


def _job_type(info: str) -> str:
    for line in info.splitlines():
        label, _, value = line.partition(":")
        if label.strip() == "Job type":
            return value.strip()
    return ""


def begin(uri: str, domain: str, target: str, pool: str, scratch: str) -> None:
    """Copy disk ``target`` of running ``domain`` into ``scratch`` in ``pool``, with the
    guest's filesystems frozen while the job starts; return when the copy is complete."""
    job = scratch + JOB_SUFFIX
    path = str(PurePosixPath(pool_dir(uri, pool)) / job)
    for leftover in (job, scratch):  # a killed backup's
        _remove(uri, pool, leftover)
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as xml:
        xml.write(backup_xml(target, path))
        xml.flush()
        with frozen(uri, domain):
            _virsh(uri, "backup-begin", domain, "--backupxml", xml.name)
    _job_done(uri, domain)
    completed = _job_type(_virsh(uri, "domjobinfo", "--completed", domain))
    if completed != "Completed":
        raise EngineCommandError(f"{domain}: the backup job of {target} ended {completed}")
    _virsh(uri, "pool-refresh", pool)
    # QEMU's backup job copies with parallel workers, so a qcow2 target's clusters lie in
    # the order the copies ended: the same data gets another layout each time and restic
    # finds little to deduplicate (68% of 1 GiB new after a 1% change). libvirt clones a
    # qcow2 volume with qemu-img convert, which lays clusters out in the disk's order.
    _virsh(uri, "vol-clone", "--pool", pool, job, scratch, timeout=JOB_TIMEOUT)
    _remove(uri, pool, job)


def _remove(uri: str, pool: str, volume: str) -> None:
    _virsh(uri, "pool-refresh", pool)
    if volume in _virsh(uri, "vol-list", pool).split():
        _virsh(uri, "vol-delete", "--pool", pool, volume)


def release(uri: str, domain: str, pool: str, scratch: str) -> None:
    """Undo whatever :func:`begin` got to: thaw the guest, stop its backup job, remove the
    scratch image. Only a guest left frozen is a failure."""
    with contextlib.suppress(EngineCommandError):
        if _job_type(_virsh(uri, "domjobinfo", domain)) not in ("None", ""):
            _virsh(uri, "domjobabort", domain)
    for image in (scratch + JOB_SUFFIX, scratch):
        with contextlib.suppress(EngineCommandError):
            _remove(uri, pool, image)
    thaw(uri, domain)


def fresh(uri: str, pool: str, volume: str) -> None:
    """An empty ``volume`` in ``pool`` (removed first if it exists) for ``vol-upload``."""
    _remove(uri, pool, volume)
    _virsh(uri, "vol-create-as", pool, volume, "0", "--format", "raw")


def copies(
    spec: EnvironmentSpec, env: str, uri: str, data: list[str], *, include_root: bool
) -> list[DataCopy]:
    """How to copy each of the data disks ``data`` (volume file names in the data pool),
    and with ``include_root`` each running VM's root disk, while its VM runs."""
    users = attached(uri, env)
    pool = naming.data_pool(env)
    found = []
    for volume in data:
        declared = naming.owner(spec, env, volume.removesuffix(DISK_SUFFIX))
        tier = next((t.name for t in spec.tiers if t.volume and declared and
                     t.volume.name == declared.name), "registry")  # fmt: skip
        found.append(_copy(uri, pool, volume, _user(users, uri, pool, volume), tier))
    if include_root:
        roots = naming.pool(env)
        for (pool_name, volume), user in sorted(users.items()):
            if pool_name == roots:
                tier = _tier_of(spec, env, user.domain)
                found.append(_copy(uri, roots, volume, user, tier, kind="root"))
    return found


def _tier_of(spec: EnvironmentSpec, env: str, domain: str) -> str:
    """The tier a domain (replica or load balancer) serves, else the domain's own name."""
    for t in spec.tiers:
        if domain.startswith(names.tier_name(env, t.name) + "-"):
            return t.name
    return domain


def _copy(
    uri: str, pool: str, volume: str, user: Attached | None, owner: str, kind: str = "data"
) -> DataCopy:
    name = volume.removesuffix(DISK_SUFFIX)
    if user is None:  # no running VM writes to it: it is still as it is
        read = hostcmd.virsh_argv(uri, "vol-download", "--pool", pool, volume, "/dev/stdout")
        return DataCopy(name=name, owner=owner, read=read, hold=[], release=[],
                        stream="qcow2", kind=kind)  # fmt: skip
    scratch = volume + SCRATCH_SUFFIX
    return DataCopy(
        name=name,
        owner=owner,
        read=hostcmd.virsh_argv(uri, "vol-download", "--pool", pool, scratch, "/dev/stdout"),
        hold=[[*MODULE, "begin", str(uri), user.domain, user.target, pool, scratch]],
        release=[[*MODULE, "release", str(uri), user.domain, pool, scratch]],
        holding=f"filesystem freeze or backup job in {user.domain}",
        stream="qcow2",
        kind=kind,
    )


def write(uri: str, env: str, spec_path: str, volume: str) -> DataWrite:
    """Put ``volume`` of the data pool back from a qcow2 stream: the pool is made if it is
    gone (the next ``up`` adopts it), a VM using the disk is off while it is written."""
    pool = naming.data_pool(env)
    if pool not in _virsh(uri, "pool-list", "--all", "--name").split():
        _virsh(uri, "pool-define-as", pool, "dir", "--target", spec_path)
        _virsh(uri, "pool-build", pool)
    if pool_state(uri, pool) != "running":
        _virsh(uri, "pool-start", pool)
    users = []
    if volume in _virsh(uri, "vol-list", pool).split():
        user = _user(attached(uri, env), uri, pool, volume)
        users = [user.domain] if user else []
    return DataWrite(
        write=hostcmd.virsh_argv(uri, "vol-upload", "--pool", pool, volume, "/dev/stdin"),
        before=[
            *(hostcmd.virsh_argv(uri, "destroy", d) for d in users),
            [*MODULE, "fresh", str(uri), pool, volume],
        ],
        after=[
            hostcmd.virsh_argv(uri, "pool-refresh", pool),
            *(hostcmd.virsh_argv(uri, "start", d) for d in users),
        ],
    )


def pool_state(uri: str, pool: str) -> str:
    """``running``, ``inactive`` ...: the State line of ``virsh pool-info``."""
    for line in _virsh(uri, "pool-info", pool).splitlines():
        label, _, value = line.partition(":")
        if label.strip() == "State":
            return value.strip()
    return ""


COMMANDS: dict[str, Callable[..., None]] = {"begin": begin, "release": release, "fresh": fresh}


def main(argv: list[str]) -> None:
    """``python -m virtstack.engines.vmbackup begin|release|fresh ARGS``; a failure exits 1
    with one line on stderr."""
    command, *args = argv
    try:
        COMMANDS[command](*args)
    except (EngineCommandError, EngineUnreachableError) as exc:
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main(sys.argv[1:])
