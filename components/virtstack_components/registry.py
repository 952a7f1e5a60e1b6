"""Registry: an image registry with persistent storage and htpasswd auth."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import bcrypt
import pulumi
import pulumi_docker as docker

from virtstack_components.cloudinit import user_data
from virtstack_components.errors import ComponentError
from virtstack_components.placement import DockerPlacement, LibvirtPlacement
from virtstack_components.templating import render
from virtstack_components.vm import DataDisk, VirtualMachine, VirtualMachineArgs

REGISTRY_PORT = 5000
DEBUG_PORT = 5001
STORAGE_DIR = "/var/lib/docker-registry"
CONFIG_PATH = "/etc/docker/registry/config.yml"
HTPASSWD_PATH = "/etc/docker/registry/htpasswd"
BCRYPT_MAX = 72
CHECK_INTERVAL = 2
"""Seconds between Docker's health checks; `up` waits for the first one to pass."""
HEALTH_TEST = [
    "CMD", "busybox", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{DEBUG_PORT}/debug/health"
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class RegistryArgs:
    placement: DockerPlacement | LibvirtPlacement
    image: pulumi.Input[str] = ""
    """Container target: an image with Debian's docker-registry (virtstack/base)."""
    port: int = REGISTRY_PORT
    """Container target: the host port the registry is published on."""
    address: str = "127.0.0.1"
    storage: str = "registry-data"
    size_gib: int = 10
    username: str | None = "virtstack"
    """Who may push and pull; ``None`` runs the registry without auth."""
    password: pulumi.Input[str] | None = None


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
    hashed = bcrypt.hashpw(password.encode(), b"$2b$10$" + salt)
    return f"{username}:{hashed.decode()}\n"


class Registry(pulumi.ComponentResource):
    """A Distribution registry in a container (data on a volume) or on a VM (data disk)."""

    endpoint: pulumi.Output[str]
    """``host:port`` to push to and pull from."""
    username: pulumi.Output[str]
    password: pulumi.Output[str]
    """Secret."""

    def __init__(
        self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("virtstack:registry:Registry", name, None, opts)
        auth = args.username is not None
        username = args.username or ""
        password = pulumi.Output.secret(args.password or "")
        htpasswd: pulumi.Output[str] = password.apply(lambda pw: htpasswd_line(username, pw))
        config = render(
            "registry/config.yml.j2",
            port=REGISTRY_PORT,
            debug_port=DEBUG_PORT,
            storage_dir=STORAGE_DIR,
            auth=auth,
            htpasswd_path=HTPASSWD_PATH,
        )
        p = args.placement
        if isinstance(p, DockerPlacement):
            self.endpoint = pulumi.Output.from_input(f"{args.address}:{args.port}")
            self._in_container(name, args, p, config, htpasswd if auth else None)
        else:
            vm = VirtualMachine(
                f"{name}-vm",
                VirtualMachineArgs(
                    placement=p,
                    hostname=name,
                    user_data=htpasswd.apply(
                        lambda entry: user_data(
                            "registry",
                            hostname=name,
                            user="virtstack",
                            ssh_authorized_keys=[],
                            registry_config=config,
                            htpasswd=entry if auth else "",
                            storage_dir=STORAGE_DIR,
                        )
                    ),
                    data_disks=[DataDisk(name=p.data_name(args.storage), size_gib=args.size_gib)],
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.endpoint = vm.address.apply(lambda a: f"{a}:{REGISTRY_PORT}")
        self.username = pulumi.Output.from_input(username)
        self.password = password
        self.register_outputs(
            {"endpoint": self.endpoint, "username": self.username, "password": self.password}
        )

    def _in_container(
        self,
        name: str,
        args: RegistryArgs,
        p: DockerPlacement,
        config: str,
        htpasswd: pulumi.Output[str] | None,
    ) -> None:
        volume = docker.Volume(
            f"{name}-storage",
            name=p.data_name(args.storage),
            # Pushed images outlive the registry container and `destroy` alike.
            opts=p.opts(self, retain_on_delete=True),
        )
        uploads = [docker.ContainerUploadArgs(file=CONFIG_PATH, content=config)]
        if htpasswd is not None:
            uploads.append(docker.ContainerUploadArgs(file=HTPASSWD_PATH, content=htpasswd))
        docker.Container(
            f"{name}-server",
            name=name,
            image=args.image,
            command=["docker-registry", "serve", CONFIG_PATH],
            uploads=uploads,
            volumes=[
                docker.ContainerVolumeArgs(volume_name=volume.name, container_path=STORAGE_DIR)
            ],
            ports=[
                docker.ContainerPortArgs(
                    internal=REGISTRY_PORT, external=args.port, ip=args.address
                )
            ],
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=HEALTH_TEST,
                interval=f"{CHECK_INTERVAL}s",
                timeout="2s",
                retries=3,
            ),
            restart="always",
            wait=True,
            wait_timeout=120,
            labels=[docker.ContainerLabelArgs(label="virtstack.namespace", value=p.namespace)],
            opts=p.opts(self, delete_before_replace=True),
        )
