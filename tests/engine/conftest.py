"""Engine tier: the real Pulumi engine against the real Docker engine and libvirtd.

Nothing is mocked. Every test here is marked ``engine``; when the Docker engine,
libvirtd or the built toolchain is missing the tests skip, or fail when ``CI`` is set.

Fixtures (see the README of this tier in tools/TOOLCHAIN.md):
    docker_engine  session  -> str        Docker server version
    libvirt_uri    session  -> str        "qemu:///system", checked with virsh
    toolchain      session  -> dict       env of virtstack.toolchain.pulumi_environment
    images         session  -> Images     built by images/build.sh (base, busybox)
    registry       session  -> Registry   a registry container on 127.0.0.1, busybox pushed
    unique_prefix  function -> str        "vst-<8 hex>-": name every object a test makes
                                          with it; leftovers are removed (and reported)
    qemu_dir       function -> Path       scratch dir under /var/tmp that QEMU can reach
    pulumi_stack   function -> factory    make_stack(program, project=...) -> auto.Stack;
                                          every stack made is destroyed and removed
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.engine import harness
from tests.engine.harness import LABEL, PROJECT, run
from tests.support import unavailable, wait_until_serving
from virtstack import toolchain as engine
from virtstack.errors import ToolchainMissingError

if TYPE_CHECKING:
    from pulumi import automation as auto

HERE = Path(__file__).resolve().parent

#: Seconds one engine test may take, its fixtures' setup included (a VM environment's
#: first test waits for four guests to boot under emulation).
ENGINE_TEST_TIMEOUT = 1500

#: Passphrase of the throwaway stacks' secrets (their state lives in a tmp dir).
TEST_PASSPHRASE = "virtstack-engine-tests"

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :5000
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything in this folder needs the engines, whether or not a module says so.
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.engine)
            # A hung engine fails its test in bounded time instead of eating the CI run.
            item.add_marker(pytest.mark.timeout(ENGINE_TEST_TIMEOUT))


@pytest.fixture(scope="session")
def docker_engine() -> str:
    if shutil.which("docker") is None:
        unavailable("no docker CLI (apt-get install docker.io)")
    done = run("docker", "info", "--format", "{{.ServerVersion}}", check=False, timeout=30)
    if done.returncode != 0 or not done.stdout.strip():
        unavailable(
            f"the Docker engine does not answer ({done.stderr.strip()[:200]}); "
            "start it: setsid dockerd >/var/log/dockerd.log 2>&1 &"
        )
    return done.stdout.strip()


@pytest.fixture(scope="session")
def libvirt_uri() -> str:
    if shutil.which("virsh") is None:
        unavailable("no virsh (apt-get install libvirt-clients)")
    done = harness.virsh("version", check=False)
    if done.returncode != 0:
        unavailable(
            f"libvirtd does not answer at {harness.LIBVIRT_URI} ({done.stderr.strip()[:200]}); "
            "start it: setsid virtlogd -d; setsid libvirtd -d"
        )
    return harness.LIBVIRT_URI


@pytest.fixture(scope="session")
def toolchain() -> dict[str, str]:
    try:
        return engine.pulumi_environment(PROJECT)
    except ToolchainMissingError as exc:
        unavailable(str(exc))


@dataclass(frozen=True)
class Images:
    base: str
    busybox: str


@pytest.fixture(scope="session")
def images(docker_engine: str) -> Images:
    """The project's images, built (or found) by images/build.sh."""
    run(str(PROJECT / "images" / "build.sh"), timeout=1800)
    tags = harness.read_env_file(PROJECT / "images" / "versions.env")
    return Images(base=tags["BASE_IMAGE"], busybox=tags["BUSYBOX_IMAGE"])


@dataclass(frozen=True)
class Registry:
    address: str
    """``127.0.0.1:<port>``: the registry, published on loopback only."""
    busybox: str
    """The busybox image pushed there (``<address>/virtstack/busybox:1``), not tagged locally."""


@pytest.fixture(scope="session")
def registry(images: Images, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A Debian docker-registry from the base image, with the busybox image pushed."""
    config = tmp_path_factory.mktemp("registry")
    (config / "config.yml").write_text(REGISTRY_CONFIG)
    name = f"{harness.PREFIX}registry-{uuid.uuid4().hex[:8]}"
    pushed = ""
    try:
        run(
            "docker", "run", "-d", "--name", name, "--label", LABEL,
            # Loopback only, on a port the kernel picks: no race with other tests.
            "-p", "127.0.0.1::5000",
            "-v", f"{config}:/etc/virtstack-registry:ro",
            images.base, "docker-registry", "serve", "/etc/virtstack-registry/config.yml",
        )  # fmt: skip
        address = run("docker", "port", name, "5000/tcp").stdout.split()[0]
        wait_until_serving(f"http://{address}/v2/")
        pushed = f"{address}/{images.busybox}"
        run("docker", "tag", images.busybox, pushed)
        run("docker", "push", pushed, timeout=300)
        # Untag: whoever uses the reference must really pull it from the registry.
        run("docker", "image", "rm", pushed)
        yield Registry(address=address, busybox=pushed)
    finally:
        run("docker", "rm", "-f", "-v", name, check=False)
        if pushed:
            run("docker", "image", "rm", pushed, check=False)


@pytest.fixture
def unique_prefix() -> Iterator[str]:
    """A name prefix for one test's docker and libvirt objects; checked on teardown.

    Whatever still carries the prefix after the test (and its stacks' destroy) is
    removed, then reported as a teardown error: something escaped Pulumi.
    """
    prefix = f"{harness.PREFIX}{uuid.uuid4().hex[:8]}-"
    yield prefix
    leftovers = harness.remove_leftovers(prefix)
    assert not leftovers, f"left behind after destroy (now removed): {leftovers}"


@pytest.fixture
def qemu_dir(unique_prefix: str) -> Iterator[Path]:
    """A scratch directory QEMU can use (libvirt pools, disks), removed afterwards.

    Not under pytest's tmp_path: that is private to root (0700), and QEMU runs as
    the libvirt-qemu user, which must be able to reach the disk files.
    """
    path = Path(tempfile.mkdtemp(prefix=unique_prefix, dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


MakeStack = Callable[..., "auto.Stack"]


@pytest.fixture
def pulumi_stack(
    toolchain: dict[str, str], tmp_path: Path, unique_prefix: str, qemu_dir: Path
) -> Iterator[MakeStack]:
    """Factory of throwaway stacks running an inline program on the real engine.

    ``make_stack(program, project="virtstack-engine-test") -> auto.Stack``: a new stack
    with a unique name, in a local file backend and a PULUMI_HOME under this test's
    tmp dir, secrets under a passphrase. On teardown every stack made is destroyed
    and removed, even when the test failed; this happens before ``qemu_dir`` and
    ``unique_prefix`` are cleaned up (hence the dependency on them).
    """
    from pulumi import automation as auto  # slow import: engine tests only

    backend = tmp_path / "pulumi-state"
    backend.mkdir()
    # A PULUMI_HOME of the test's own (logs, workspace settings), sharing the plugins.
    home = tmp_path / "pulumi-home"
    home.mkdir()
    (home / "plugins").symlink_to((Path(toolchain["PULUMI_HOME"]) / "plugins").resolve())
    env = {
        **toolchain,
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": backend.as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": TEST_PASSPHRASE,
    }
    made: list[auto.Stack] = []

    def make_stack(
        program: Callable[[], None], project: str = "virtstack-engine-test"
    ) -> auto.Stack:
        # Each stack's workspace (Pulumi.yaml of the inline program) under tmp_path too,
        # not in a tmp dir of Pulumi's own that nobody removes.
        work_dir = tmp_path / f"pulumi-workspace-{len(made)}"
        work_dir.mkdir()
        stack = auto.create_stack(
            stack_name=f"{unique_prefix}{len(made)}",
            project_name=project,
            program=program,
            opts=auto.LocalWorkspaceOptions(
                work_dir=str(work_dir),
                env_vars=env,
                pulumi_home=env["PULUMI_HOME"],
                pulumi_command=auto.PulumiCommand(root=str(engine.toolchain_dir(PROJECT))),
                secrets_provider="passphrase",
                project_settings=auto.ProjectSettings(
                    name=project,
                    runtime="python",
                    backend=auto.ProjectBackend(url=backend.as_uri()),
                ),
            ),
        )
        made.append(stack)
        return stack

    yield make_stack

    problems = []
    for stack in reversed(made):
        try:
            stack.destroy(color="never")
        except auto.CommandError as exc:
            problems.append(f"destroy {stack.name}: {exc}")
        try:
            # --force: after a failed destroy the leftovers fixture takes over.
            stack.workspace.remove_stack(stack.name, force=True)
        except auto.CommandError as exc:
            problems.append(f"remove {stack.name}: {exc}")
    assert not problems, "\n".join(problems)
