"""Plain helpers of the engine tier: commands, engine checks, leftovers cleanup.

Fixtures in conftest.py wrap these; tests may call them directly to look at what a
stack made (``docker inspect``, ``virsh dominfo``) from outside Pulumi.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
LIBVIRT_URI = "qemu:///system"
#: Every docker and libvirt object an engine test makes has a name starting with this.
PREFIX = "vst-"
#: Label on the containers the fixtures start themselves (not through Pulumi).
LABEL = "org.virtstack.test=engine"


def run(*cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command, capture text output; raise with its stderr when ``check``."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("virsh", "-c", LIBVIRT_URI, *args, check=check)


def docker_inspect(name: str) -> dict[str, object] | None:
    """``docker inspect`` of a container, network, volume or image; None if absent."""
    done = run("docker", "inspect", name, check=False)
    if done.returncode != 0:
        return None
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found[0] if found else None


def container_running(name: str) -> bool:
    info = docker_inspect(name)
    state = info.get("State") if info else None
    return isinstance(state, dict) and state.get("Running") is True


def domain_state(name: str) -> str | None:
    """The ``State:`` line of ``virsh dominfo`` (e.g. ``running``); None if absent."""
    done = virsh("dominfo", name, check=False)
    if done.returncode != 0:
        return None
    for line in done.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "State":
            return value.strip()
    return None


def pool_exists(name: str) -> bool:
    return virsh("pool-info", name, check=False).returncode == 0


def remove_leftovers(prefix: str) -> list[str]:
    """Remove docker and libvirt objects whose names start with ``prefix``.

    The safety net behind ``pulumi destroy``: returns what it had to remove, so a
    test can tell a clean destroy from a rescued one.
    """
    removed: list[str] = []

    def names(*cmd: str) -> list[str]:
        done = run(*cmd, check=False)
        return [n for n in done.stdout.split() if n.startswith(prefix)]

    for name in names("docker", "ps", "-a", "--format", "{{.Names}}"):
        run("docker", "rm", "-f", "-v", name, check=False)
        removed.append(f"container {name}")
    for name in names("docker", "network", "ls", "--format", "{{.Name}}"):
        run("docker", "network", "rm", name, check=False)
        removed.append(f"network {name}")
    for name in names("docker", "volume", "ls", "--format", "{{.Name}}"):
        run("docker", "volume", "rm", "-f", name, check=False)
        removed.append(f"volume {name}")
    for name in names("virsh", "-c", LIBVIRT_URI, "list", "--all", "--name"):
        virsh("destroy", name, check=False)
        virsh("undefine", name, "--nvram", check=False)
        if domain_state(name) is not None:
            virsh("undefine", name, check=False)
        removed.append(f"domain {name}")
    for pool in names("virsh", "-c", LIBVIRT_URI, "pool-list", "--all", "--name"):
        for vol in virsh("vol-list", pool, check=False).stdout.splitlines()[2:]:
            if vol.split():
                virsh("vol-delete", vol.split()[0], "--pool", pool, check=False)
        virsh("pool-destroy", pool, check=False)
        virsh("pool-delete", pool, check=False)
        virsh("pool-undefine", pool, check=False)
        removed.append(f"pool {pool}")
    for net in names("virsh", "-c", LIBVIRT_URI, "net-list", "--all", "--name"):
        virsh("net-destroy", net, check=False)
        virsh("net-undefine", net, check=False)
        removed.append(f"libvirt network {net}")
    return removed


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a shell env file (images/versions.env), comments skipped."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values
