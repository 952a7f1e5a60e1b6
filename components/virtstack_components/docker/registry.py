"""ContainerRegistry: the Distribution registry in a container, its blobs on a volume."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi
import pulumi_docker as docker

from virtstack_components import names
from virtstack_components.compat import renamed_from
from virtstack_components.names import REGISTRY_PORT
from virtstack_components.registry import (
    CERTIFICATE_PATH,
    CONFIG_PATH,
    DEBUG_PORT,
    HTPASSWD_PATH,
    KEY_PATH,
    STORAGE_DIR,
    Credentials,
    ServerTls,
    htpasswd,
    registry_config,
)

if TYPE_CHECKING:
    from virtstack_components.docker.placement import DockerPlacement

CHECK_INTERVAL = 1
"""Seconds between Docker's health checks; `up` waits for the first one to pass.

The first check runs one interval after the start (Docker 20.10 has no start interval,
API 1.44), and tagging and pushing every image wait for it: a short interval here is
most of the registry's share of the time to a first answer. The check is one local
HTTP request."""
HEALTH_TEST = [
    "CMD", "busybox", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{DEBUG_PORT}/debug/health"
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ContainerRegistryArgs:
    placement: DockerPlacement
    image: pulumi.Input[str]
    """An image with Debian's docker-registry (virtstack/base)."""
    port: int = REGISTRY_PORT
    """The host port the registry is published on."""
    address: str = "127.0.0.1"
    storage: str = "registry-data"
    credentials: Credentials = field(default_factory=Credentials)
    tls: ServerTls | None = None
    """Serve HTTPS only, with this certificate; None serves plain HTTP."""


class ContainerRegistry(pulumi.ComponentResource):
    """A registry container with htpasswd auth over HTTPS; pushed images outlive it on a
    volume."""

    endpoint: pulumi.Output[str]
    """``host:port`` to push to and pull from."""
    username: pulumi.Output[str]
    password: pulumi.Output[str]
    """Secret."""

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "virtstack:docker:ContainerRegistry",
            name,
            None,
            renamed_from("virtstack:registry:Registry", opts),
        )
        p = args.placement
        creds = args.credentials
        volume = docker.Volume(
            f"{name}-storage",
            name=p.data_name(args.storage),
            labels=p.data_labels(args.storage),
            # Pushed images outlive the registry container and `destroy` alike.
            opts=p.opts(self, retain_on_delete=True),
        )
        tls = args.tls
        uploads = [
            docker.ContainerUploadArgs(
                file=CONFIG_PATH, content=registry_config(creds.auth, tls=tls is not None)
            )
        ]
        if creds.auth:
            uploads.append(docker.ContainerUploadArgs(file=HTPASSWD_PATH, content=htpasswd(creds)))
        if tls is not None:
            uploads += [
                docker.ContainerUploadArgs(file=CERTIFICATE_PATH, content=tls.certificate),
                docker.ContainerUploadArgs(file=KEY_PATH, content=pulumi.Output.secret(tls.key)),
            ]
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
            labels=[docker.ContainerLabelArgs(label=names.NAMESPACE_LABEL, value=p.namespace)],
            opts=p.opts(self, delete_before_replace=True),
        )
        self.endpoint = pulumi.Output.from_input(f"{args.address}:{args.port}")
        self.username = pulumi.Output.from_input(creds.username or "")
        self.password = pulumi.Output.secret(creds.password or "")
        self.register_outputs(
            {"endpoint": self.endpoint, "username": self.username, "password": self.password}
        )
