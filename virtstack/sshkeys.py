"""SSH keys every VM of an environment accepts, and the key ``virtstack ssh`` logs in with.

The default is the user's own public key from ``~/.ssh/``; without one, a key pair is
generated once per environment under the project's ``.virtstack/ssh/<env>/`` (private key
mode 0600), so a fresh machine can still log in. The spec adds keys environment-wide
(``ssh_authorized_keys``) and per item.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from virtstack.errors import EngineCommandError

# ssh's own default identities, in the order ssh tries them.
_USER_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
KEY_TYPE = "ed25519"


def state_dir(project: Path, env: str) -> Path:
    """Where an environment's SSH files live: ``.virtstack/ssh/<env>/`` of the project."""
    return project / ".virtstack" / "ssh" / env


@dataclass(frozen=True)
class LoginKey:
    """The key pair an environment's VMs accept by default."""

    public: str
    """One ``authorized_keys`` line."""
    identity: Path | None
    """Private key to pass to ssh; None when it is one of the user's own (ssh finds it)."""


def user_key(home: Path | None = None) -> LoginKey | None:
    """The user's own public key from ``~/.ssh/``, if there is one."""
    ssh_dir = (home or Path.home()) / ".ssh"
    for name in _USER_KEYS:
        pub = ssh_dir / f"{name}.pub"
        if pub.is_file() and (ssh_dir / name).is_file():
            return LoginKey(public=pub.read_text().strip(), identity=None)
    return None


def environment_key(project: Path, env: str) -> LoginKey:
    """The environment's generated key pair, made on first use (private key mode 0600)."""
    folder = state_dir(project, env)
    private = folder / f"id_{KEY_TYPE}"
    if not private.is_file():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv = ["ssh-keygen", "-q", "-t", KEY_TYPE, "-N", "", "-C", f"virtstack-{env}"]
        done = subprocess.run(
            [*argv, "-f", str(private)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise EngineCommandError(f"ssh-keygen for {env}: {done.stderr.strip()}")
    private.chmod(0o600)
    return LoginKey(public=private.with_suffix(".pub").read_text().strip(), identity=private)


def login_key(project: Path, env: str, home: Path | None = None) -> LoginKey:
    """The user's own key, else the environment's generated one."""
    return user_key(home) or environment_key(project, env)


def known_hosts(project: Path, env: str) -> Path:
    """The environment's own known_hosts file (VMs get new host keys when replaced)."""
    folder = state_dir(project, env)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder / "known_hosts"


def authorized(default: str, environment_wide: list[str], own: list[str]) -> list[str]:
    """The keys one VM accepts: the default key, the environment's, the item's; no repeats."""
    return list(dict.fromkeys([default, *environment_wide, *own]))


def jump_host(uri: str) -> str | None:
    """``user@host:port`` of a remote libvirt URI (``qemu+ssh://``), to jump through."""
    parts = urlsplit(uri)
    if not parts.scheme.endswith("+ssh") or not parts.hostname:
        return None
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{user}{parts.hostname}{port}"


def ssh_argv(
    *,
    address: str,
    user: str,
    key: LoginKey,
    known_hosts_file: Path,
    jump: str | None,
    command: list[str],
) -> list[str]:
    """The ssh command line that logs in to one VM (or runs ``command`` there)."""
    argv = ["ssh", "-o", "StrictHostKeyChecking=accept-new"]
    argv += ["-o", f"UserKnownHostsFile={known_hosts_file}", "-o", "BatchMode=yes"]
    if key.identity is not None:
        argv += ["-i", str(key.identity), "-o", "IdentitiesOnly=yes"]
    if jump is not None:
        argv += ["-J", jump]
    return [*argv, f"{user}@{address}", *command]
