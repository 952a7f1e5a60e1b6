"""Unit tier: components and the program under pulumi.runtime.set_mocks (no engine)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import mocks as pulumi_mocks

# Benchmarking addresses (RFC 2544, 198.18.0.0/15): the mocks hand them out, nothing ever
# contacts them. Every domain gets its own, so a load balancer listing the wrong VM is caught.


def mock_address(domain: str) -> str:
    """The address the mocks give the domain called ``domain`` (stable across runs)."""
    n = int(hashlib.sha256(domain.encode()).hexdigest(), 16)
    return f"198.{18 + n % 2}.{(n >> 8) % 256}.{1 + (n >> 16) % 254}"


MOCK_DIGEST = "sha256:" + "ab" * 32
LOCAL_IMAGE_ID = "sha256:" + "cd" * 32


@dataclass
class Registered:
    """One resource registration as the engine would have seen it."""

    urn: str
    type: str
    name: str
    parent: str
    inputs: dict[str, Any]
    secrets: set[str]
    """Input keys the program marked secret (their values are unwrapped in ``inputs``)."""
    custom: bool
    retain_on_delete: bool
    delete_before_replace: bool
    import_id: str
    provider: str
    ignore_changes: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    """URNs the resource waits for: its ``depends_on`` and the resources of its inputs."""


@dataclass
class Deployment:
    """Everything one mocked program run registered."""

    resources: list[Registered] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Registered]:
        """Resources of type ``typ``, by name (registration order is not deterministic)."""
        return sorted((r for r in self.resources if r.type == typ), key=lambda r: r.name)

    def named(self, name: str) -> Registered:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"{len(found)} resources named {name!r}: {self.names()}"
        return found[0]

    def names(self) -> list[str]:
        return sorted(r.name for r in self.resources)

    def children(self, parent: Registered) -> list[Registered]:
        return sorted((r for r in self.resources if r.parent == parent.urn), key=lambda r: r.name)


class _Mocks(pulumi.runtime.Mocks):
    """Returns inputs as state, plus what real providers compute."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "libvirt:index/domain:Domain":
            nics = state.get("networkInterfaces", [])
            address = mock_address(str(state["name"]))
            state["networkInterfaces"] = [{**nic, "addresses": [address]} for nic in nics]
        elif args.typ == "docker:index/registryImage:RegistryImage":
            state["sha256Digest"] = MOCK_DIGEST
        elif args.typ == "docker:index/remoteImage:RemoteImage":
            state["repoDigest"] = state["name"]
            state["imageId"] = MOCK_DIGEST
        elif args.typ == "docker:index/tag:Tag":
            state["sourceImageId"] = MOCK_DIGEST
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "docker:index/getRemoteImage:getRemoteImage":
            return {"id": LOCAL_IMAGE_ID, "name": args.args["name"], "repoDigest": ""}
        return {}


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The stock mock monitor, remembering the options of every registration."""

    def __init__(self, mocks: _Mocks, deployment: Deployment) -> None:
        super().__init__(mocks)
        self.deployment = deployment

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = pulumi.runtime.rpc.deserialize_properties(request.object)
            secrets = {k for k, v in inputs.items() if pulumi.runtime.rpc.is_rpc_secret(v)}
            self.deployment.resources.append(
                Registered(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    inputs={k: pulumi.runtime.rpc.unwrap_rpc_secret(v) for k, v in inputs.items()},
                    secrets=secrets,
                    custom=request.custom,
                    retain_on_delete=request.retainOnDelete,
                    delete_before_replace=request.deleteBeforeReplace,
                    import_id=request.importId,
                    provider=request.provider,
                    ignore_changes=list(request.ignoreChanges),
                    dependencies=list(request.dependencies),
                )
            )
        return response


Run = Callable[..., Deployment]


@pytest.fixture
def run() -> Iterator[Run]:
    """Run ``fn`` as a Pulumi program under mocks; return what it registered.

    ``config`` is the stack config (values JSON-encoded unless they are strings).
    """

    def go(
        fn: Callable[[], Any],
        config: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None,
        stack: str = "dev",
    ) -> Deployment:
        deployment = Deployment()
        mocks = _Mocks()
        pulumi.runtime.set_mocks(
            mocks,
            project="virtstack",
            stack=stack,
            preview=False,
            monitor=_RecordingMonitor(mocks, deployment),
        )
        values = {
            k: v if isinstance(v, str) else json.dumps(v)
            for k, v in {**(config or {}), **(secrets or {})}.items()
        }
        pulumi.runtime.set_all_config(values, list(secrets or {}))
        pulumi.runtime.test(fn)()
        return deployment

    yield go
    pulumi.runtime.set_all_config({}, [])


@pytest.fixture(autouse=True)
def no_kept_data(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No libvirt to ask in this tier: kept data is whatever a test puts in this mapping."""
    kept: dict[str, str] = {}
    monkeypatch.setattr(
        "virtstack.engines.libvirt.KeptData._ask", lambda self, *args: kept.get(args[-1])
    )
    return kept


@pytest.fixture(autouse=True)
def tls_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Environments' CAs in a folder of the test's own, never in the checkout's .virtstack,
    and the engine's registry CAs (``certs.d``) beside them, never in /etc/docker."""
    path = tmp_path_factory.mktemp("tls")
    monkeypatch.setattr("virtstack.tlsfiles.tls_dir", lambda project, env: path / env)
    monkeypatch.setattr("virtstack.pki.tls_dir", lambda project, env: path / env)
    monkeypatch.setattr("virtstack.engines.docker.CERTS_D", path / "certs.d")
    return path


@pytest.fixture
def guest_dir(tmp_path: Path) -> Path:
    """A guest image directory as images/guest/build.sh leaves it (tiny stand-in files)."""
    for name in ("disk.qcow2", "vmlinuz", "initrd.img"):
        (tmp_path / name).write_bytes(b"stand-in")
    (tmp_path / "manifest.json").write_text(
        json.dumps({"version": "test", "kernel_cmdline": "root=/dev/vda console=ttyS0 ro"})
    )
    return tmp_path


USER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVzZXIta2V5LWZvci10ZXN0cw user@test"


@pytest.fixture(autouse=True)
def home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home of the test's own with a user key in ~/.ssh: no key is generated anywhere."""
    path = tmp_path_factory.mktemp("home")
    (path / ".ssh").mkdir()
    (path / ".ssh" / "id_ed25519").write_text("stand-in private key\n")
    (path / ".ssh" / "id_ed25519.pub").write_text(USER_KEY + "\n")
    monkeypatch.setenv("HOME", str(path))
    return path


def seed_file(seed: Registered, name: str) -> str:
    """A file of a VM's cloud-init seed ISO (as uploaded: the volume's source)."""
    argv = ["isoinfo", "-i", seed.inputs["source"], "-J", "-x", f"/{name}"]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout
