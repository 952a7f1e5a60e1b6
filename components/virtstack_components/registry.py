"""What every registry shares, whatever runs it: its config, credentials and constants."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import bcrypt
import pulumi

from virtstack_components.errors import ComponentError
from virtstack_components.names import REGISTRY_PORT
from virtstack_components.templating import render

DEBUG_PORT = 5001
STORAGE_DIR = "/var/lib/docker-registry"
CONFIG_PATH = "/etc/docker/registry/config.yml"
HTPASSWD_PATH = "/etc/docker/registry/htpasswd"
CERTIFICATE_PATH = "/etc/docker/registry/tls/registry.crt"
KEY_PATH = "/etc/docker/registry/tls/registry.key"
CREDENTIALS_DIR = "/run/credentials/docker-registry.service"
"""Where systemd hands Debian's docker-registry service (not root) its credentials: the
root-only htpasswd file and key as copies only that service can read."""
BCRYPT_MAX = 72
BCRYPT_COST = 5
"""bcrypt's work factor, as `htpasswd -B` uses by default. The registry checks the hash on
every request (no session), and a push or pull makes dozens: at cost 10 (0.1-0.4 s
each) that was most of the time a push took. The password virtstack generates has 192
random bits, out of reach of any work factor's help or harm."""


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """Who may push and pull; ``username`` None runs the registry without auth."""

    username: str | None = "virtstack"
    password: pulumi.Input[str] | None = None

    @property
    def auth(self) -> bool:
        return self.username is not None


@dataclass(frozen=True, kw_only=True)
class ServerTls:
    """The registry's HTTPS certificate (PEM, from the environment's CA) and its key."""

    certificate: str
    key: pulumi.Input[str]
    """Secret."""
    ca: str = ""
    """The CA certificate (PEM) its clients verify it by."""


def htpasswd_line(username: str, password: str) -> str:
    """An htpasswd entry with a bcrypt hash (the only kind the registry accepts).

    The salt is derived from the credentials so the same password renders the same file:
    otherwise every ``up`` would see a changed secret and restart the registry.
    """
    if len(password.encode()) > BCRYPT_MAX:
        raise ComponentError(f"registry password: bcrypt takes at most {BCRYPT_MAX} bytes")
    digest = hashlib.sha256(f"virtstack-registry:{username}:{password}".encode()).digest()
    # bcrypt wants 22 salt characters from its own base64 alphabet.
    alphabet = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    std = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    salt = base64.b64encode(digest[:16]).translate(bytes.maketrans(std, alphabet))[:22]
    hashed = bcrypt.hashpw(password.encode(), b"$2b$%02d$" % BCRYPT_COST + salt)
    return f"{username}:{hashed.decode()}\n"


def registry_config(auth: bool, tls: bool = False, secrets_dir: str | None = None) -> str:
    """The Distribution registry's config.yml; ``tls`` serves HTTPS only. The htpasswd
    file and the key are read from ``secrets_dir`` when given (systemd's credentials of
    the service, see ``CREDENTIALS_DIR``)."""
    return render(
        "registry/config.yml.j2",
        port=REGISTRY_PORT,
        debug_port=DEBUG_PORT,
        storage_dir=STORAGE_DIR,
        auth=auth,
        htpasswd_path=f"{secrets_dir}/htpasswd" if secrets_dir else HTPASSWD_PATH,
        tls=tls,
        certificate_path=CERTIFICATE_PATH,
        key_path=f"{secrets_dir}/registry.key" if secrets_dir else KEY_PATH,
    )


def htpasswd(credentials: Credentials) -> pulumi.Output[str]:
    """The htpasswd file of ``credentials`` (a secret; "" without auth)."""
    username = credentials.username or ""
    password = pulumi.Output.secret(credentials.password or "")
    return password.apply(lambda pw: htpasswd_line(username, pw) if username else "")
