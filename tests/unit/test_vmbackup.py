"""Live VM disk backups against a fake virsh (and guest agent behind it): what is run, in
which order, and that the guest is thawed whatever happens."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from virtstack.backup import _hold
from virtstack.engines import hostcmd, vmbackup
from virtstack.engines.libvirt import LibvirtAdapter
from virtstack.errors import BackupError, EngineCommandError, UsageError
from virtstack.spec import EnvironmentSpec

URI = "qemu:///system"
DATA_DIR = "/pools/lab-data"
ROOT_DIR = "/pools/lab"


@dataclass
class FakeVirsh:
    """A libvirt host with one running VM, lab-db-0 (root disk vda, data disk vdb)."""

    volumes: dict[str, set[str]] = field(
        default_factory=lambda: {
            "lab-data": {"lab_db-data_0.qcow2", "lab_db-data_1.qcow2"},
            "lab-pool": {"lab-db-0-root-ab.qcow2"},
        }
    )
    dirs: dict[str, str] = field(
        default_factory=lambda: {"lab-data": DATA_DIR, "lab-pool": ROOT_DIR}
    )
    running: list[str] = field(default_factory=lambda: ["lab-db-0", "other-web-0"])
    frozen: bool = False
    job: list[str] = field(default_factory=list)
    """The states the backup job reports, one per ``domjobinfo`` (last one sticks)."""
    fail: set[str] = field(default_factory=set)
    """virsh commands that fail."""
    calls: list[str] = field(default_factory=list)

    def __call__(self, argv: Sequence[str], *, uri: str, timeout: float = 0) -> str:
        assert list(argv[:4]) == ["virsh", "--quiet", "-c", URI]
        command, *args = argv[4:]
        if command == "qemu-agent-command":
            command, args = json.loads(args[1])["execute"], []
        self.calls.append(" ".join([command, *args]) if command != "backup-begin" else command)
        if command in self.fail:
            raise EngineCommandError(f"{uri}: {command} failed")
        return getattr(self, command.replace("-", "_"))(*args)

    def _reply(self, value: object) -> str:
        return json.dumps({"return": value})

    def guest_fsfreeze_freeze(self) -> str:
        self.frozen = True
        return self._reply(2)

    def guest_fsfreeze_thaw(self) -> str:
        self.frozen = False
        return self._reply(2)

    def guest_fsfreeze_status(self) -> str:
        return self._reply("frozen" if self.frozen else "thawed")

    def list(self, *args: str) -> str:
        return "\n".join(self.running) + "\n"

    def dumpxml(self, domain: str) -> str:
        assert domain == "lab-db-0", f"{domain} is not the environment's"
        disk = "<disk type='{}' device='{}'><source {}/><target dev='{}'/></disk>"
        return "<domain><devices>{}</devices></domain>".format(
            disk.format("volume", "disk", "pool='lab-pool' volume='lab-db-0-root-ab.qcow2'", "vda")
            + disk.format("file", "disk", f"file='{DATA_DIR}/lab_db-data_0.qcow2'", "vdb")
            + disk.format("file", "cdrom", f"file='{ROOT_DIR}/lab-db-0-seed.iso'", "hdd")
        )

    def vol_path(self, _pool: str, pool: str, volume: str) -> str:
        return f"{self.dirs[pool]}/{volume}\n"

    def pool_dumpxml(self, pool: str) -> str:
        return f"<pool><target><path>{self.dirs[pool]}</path></target></pool>"

    def pool_refresh(self, pool: str) -> str:
        return ""

    def vol_list(self, pool: str) -> str:
        return "".join(f" {v}  {self.dirs[pool]}/{v}\n" for v in sorted(self.volumes[pool]))

    def vol_delete(self, _pool: str, pool: str, volume: str) -> str:
        self.volumes[pool].remove(volume)
        return ""

    def vol_clone(self, _pool: str, pool: str, volume: str, clone: str) -> str:
        assert volume in self.volumes[pool]
        assert clone not in self.volumes[pool]
        self.volumes[pool].add(clone)
        return ""

    def backup_begin(self, domain: str, _flag: str, xml_file: str) -> str:
        with open(xml_file) as xml:
            self.calls.append(xml.read())
        assert self.frozen, "the backup job started on a guest that was not frozen"
        [target] = re.findall(r'file="([^"]+)"', self.calls[-1])
        pool = next(p for p, d in self.dirs.items() if target.startswith(d + "/"))
        self.volumes[pool].add(target.rpartition("/")[2])  # the job writes its target
        self.job = self.job or ["Unbounded", "None"]
        return ""

    def domjobinfo(self, *args: str) -> str:
        if "--completed" in args:
            return "Job type:         Completed\nOperation:        Backup\n"
        state = self.job.pop(0) if len(self.job) > 1 else (self.job or ["None"])[0]
        return f"Job type:         {state}\n"

    def domjobabort(self, domain: str) -> str:
        self.job = ["None"]
        return ""


@pytest.fixture
def virsh(monkeypatch: pytest.MonkeyPatch) -> FakeVirsh:
    fake = FakeVirsh()
    monkeypatch.setattr(hostcmd, "run", fake)
    monkeypatch.setattr(vmbackup, "_job_done", vmbackup._job_done.retry_with(wait=lambda _: 0))  # type: ignore[attr-defined]
    return fake


def spec() -> EnvironmentSpec:
    db = {"name": "db", "image": "x", "stateful": True, "volume": {"name": "db-data", "path": "/d"}}
    return EnvironmentSpec.model_validate({"target": "hostos", "tiers": [db]})


def test_a_disk_of_a_running_vm_is_copied_through_a_backup_job_the_others_as_they_are(
    virsh: FakeVirsh,
) -> None:
    data = ["lab_db-data_0.qcow2", "lab_db-data_1.qcow2"]
    live, idle, root = vmbackup.copies(spec(), "lab", URI, data, include_root=True)
    assert (live.name, live.owner, live.kind, live.stream) == (
        "lab_db-data_0",
        "db",
        "data",
        "qcow2",
    )
    assert live.hold == [
        [
            *vmbackup.MODULE,
            "begin",
            URI,
            "lab-db-0",
            "vdb",
            "lab-data",
            "lab_db-data_0.qcow2.backup",
        ]
    ]
    assert live.release == [
        [*vmbackup.MODULE, "release", URI, "lab-db-0", "lab-data", "lab_db-data_0.qcow2.backup"]
    ]
    assert live.read[-4:] == ["--pool", "lab-data", "lab_db-data_0.qcow2.backup", "/dev/stdout"]
    # Scaled down: no VM writes to replica 1's disk, so it is read as it lies.
    assert (idle.hold, idle.release) == ([], [])
    assert idle.read[-4:] == ["--pool", "lab-data", "lab_db-data_1.qcow2", "/dev/stdout"]
    assert (root.name, root.owner, root.kind) == ("lab-db-0-root-ab", "db", "root")
    assert root.hold[0][-3:] == ["vda", "lab-pool", "lab-db-0-root-ab.qcow2.backup"]


def test_begin_freezes_starts_the_job_thaws_then_waits_for_the_copy(virsh: FakeVirsh) -> None:
    virsh.job = ["Unbounded", "Unbounded", "None"]
    vmbackup.begin(URI, "lab-db-0", "vdb", "lab-data", "d.qcow2.backup")
    order = [c.split()[0] for c in virsh.calls if not c.startswith("<")]
    start = order.index("guest-fsfreeze-freeze")
    assert order[start:start + 4] == [
        "guest-fsfreeze-freeze", "backup-begin", "guest-fsfreeze-status", "guest-fsfreeze-thaw"
    ]  # fmt: skip
    assert order.count("domjobinfo") == 4  # three polls, then the completed job's verdict
    # The job's target is cloned into the scratch image (clusters in disk order), then goes.
    assert virsh.calls[-4:-1] == [
        "vol-clone --pool lab-data d.qcow2.backup.job d.qcow2.backup",
        "pool-refresh lab-data",
        "vol-list lab-data",
    ]
    assert virsh.calls[-1] == "vol-delete --pool lab-data d.qcow2.backup.job"
    [xml] = [c for c in virsh.calls if c.startswith("<")]
    for part in ('mode="push"', 'name="vdb"', f'file="{DATA_DIR}/d.qcow2.backup.job"'):
        assert part in xml
    assert 'type="qcow2"' in xml
    assert not virsh.frozen


def test_a_failing_backup_job_leaves_the_guest_thawed_and_says_why(virsh: FakeVirsh) -> None:
    virsh.fail = {"backup-begin"}
    argv = ["begin", URI, "lab-db-0", "vdb", "lab-data", "d.qcow2.backup"]
    with pytest.raises(SystemExit) as exited:
        vmbackup.main(argv)
    assert not virsh.frozen
    assert exited.value.code == f"{URI}: backup-begin failed"  # printed on stderr, exit 1


def test_a_guest_that_cannot_freeze_gets_no_backup_job(virsh: FakeVirsh) -> None:
    virsh.fail = {"guest-fsfreeze-freeze"}
    with pytest.raises(EngineCommandError):
        vmbackup.begin(URI, "lab-db-0", "vdb", "lab-data", "d.qcow2.backup")
    assert "backup-begin" not in virsh.calls


def test_release_after_a_killed_backup_stops_the_job_removes_the_scratch_and_thaws(
    virsh: FakeVirsh,
) -> None:
    virsh.frozen, virsh.job = True, ["Unbounded"]
    virsh.volumes["lab-data"] |= {"lab_db-data_0.qcow2.backup", "lab_db-data_0.qcow2.backup.job"}
    vmbackup.release(URI, "lab-db-0", "lab-data", "lab_db-data_0.qcow2.backup")
    assert "domjobabort lab-db-0" in virsh.calls
    assert virsh.volumes["lab-data"] == {"lab_db-data_0.qcow2", "lab_db-data_1.qcow2"}
    assert not virsh.frozen
    # Nothing left to undo: nothing fails either.
    vmbackup.release(URI, "lab-db-0", "lab-data", "lab_db-data_0.qcow2.backup")


def test_a_failed_hold_names_the_tier_and_what_failed() -> None:
    copy = vmbackup._copy(
        URI, "lab-data", "d.qcow2", vmbackup.Attached(domain="lab-db-0", target="vdb"), "db"
    )
    failing = ["sh", "-c", "echo 'lab-db-0: guest agent not responding' >&2; exit 1"]
    with pytest.raises(BackupError) as caught:
        _hold(failing, copy)
    assert str(caught.value) == (
        "tier db: its filesystem freeze or backup job in lab-db-0 failed (lab-db-0: guest "
        "agent not responding); backup abandoned, the tier is left running"
    )


def test_a_restored_disk_goes_into_a_data_pool_made_anew_and_skips_scratch_images(
    virsh: FakeVirsh,
) -> None:
    made: list[str] = []
    virsh.volumes = {}

    def pool_list(*args: str) -> str:
        return ""

    def define(pool: str, kind: str, _flag: str, path: str) -> str:
        made.append(f"{pool} {kind} {path}")
        virsh.volumes[pool] = {"lab_db-data_0.qcow2.backup"}
        virsh.dirs[pool] = path
        return ""

    virsh.pool_list = pool_list  # type: ignore[attr-defined]
    virsh.pool_define_as = define  # type: ignore[attr-defined]
    virsh.pool_build = virsh.pool_start = lambda pool: ""  # type: ignore[attr-defined]
    virsh.pool_info = lambda pool: "State:          inactive\n"  # type: ignore[attr-defined]
    write = LibvirtAdapter().data_write(spec(), "lab", URI, "lab_db-data_0", "unused")
    assert made == ["lab-data dir /var/lib/virtstack/pools/lab-data"]
    assert "pool-start lab-data" in virsh.calls
    assert write.write[-5:] == [
        "vol-upload",
        "--pool",
        "lab-data",
        "lab_db-data_0.qcow2",
        "/dev/stdin",
    ]
    assert write.before == [[*vmbackup.MODULE, "fresh", URI, "lab-data", "lab_db-data_0.qcow2"]]
    assert write.after[0][-2:] == ["pool-refresh", "lab-data"]
    virsh.pool_list = lambda *a: "lab-data\n"  # type: ignore[attr-defined]
    assert LibvirtAdapter().data_items("lab", URI) == []  # the scratch image is no data


def test_a_vm_clone_takes_a_range_the_host_leaves_free_and_a_clash_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real (tiny) restic repository holding a hostos environment's backup."""
    from virtstack import netranges
    from virtstack.backup import repository
    from virtstack.restic import MANIFEST, TAG_ENV, TAG_ID
    from virtstack.restore import restore
    from virtstack.stackfiles import read_config

    (tmp_path / "stacks").mkdir()
    declaration = (
        "config:\n  virtstack:target: hostos\n"
        "  virtstack:networks: [{name: net, cidr: 192.168.210.0/24}]\n"
        "  virtstack:tiers:\n    - {name: db, image: x, command: [sleep, '1']}\n"
    )
    repo = repository(tmp_path, "lab")
    repo.ensure()
    tags = [TAG_ENV + "lab", TAG_ID + "b1"]
    repo.backup_bytes(declaration.encode(), "declaration.yaml", tags, "lab")
    repo.backup_bytes(json.dumps({"data": []}).encode(), MANIFEST, tags, "lab")
    host = [ipaddress.IPv4Network("192.168.150.0/23")]  # another environment's network
    monkeypatch.setattr(netranges, "host_ranges", lambda uri: host)
    monkeypatch.setattr(LibvirtAdapter, "data_items", lambda self, env, uri: [])
    clash = {"net": ipaddress.IPv4Network("192.168.151.0/24")}
    with pytest.raises(UsageError, match=r"^--network net=192.168.151.0/24: overlaps 192.168.150"):
        restore(tmp_path, "lab", wanted="latest", into="lab2", publish={}, networks=clash,
                force=False, say=lambda line: None)  # fmt: skip
    assert list((tmp_path / "stacks").iterdir()) == []
    done = restore(tmp_path, "lab", wanted="latest", into="lab2", publish={}, force=False,
                   say=lambda line: None)  # fmt: skip
    assert done.ref.env == "lab2"
    networks = read_config(tmp_path, "lab2")["virtstack:networks"]
    assert networks == [{"name": "net", "cidr": "192.168.152.0/24"}]
