"""SwarmRegistry: the Distribution registry as a Swarm service, its htpasswd a Swarm secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi
import pulumi_docker as docker

from virtstack_components import names
from virtstack_components.docker.registry import HEALTH_TEST
from virtstack_components.registry import (
    CERTIFICATE_PATH,
    CONFIG_PATH,
    HTPASSWD_PATH,
    KEY_PATH,
    STORAGE_DIR,
    Credentials,
    ServerTls,
    htpasswd,
    registry_config,
)
from virtstack_components.swarm import service as svc
from virtstack_components.swarm.placement import MANAGER

if TYPE_CHECKING:
    from virtstack_components.swarm.placement import SwarmPlacement


@dataclass(frozen=True, kw_only=True)
class SwarmRegistryArgs:
    placement: SwarmPlacement
    network: pulumi.Input[str]
    """Id of an overlay network: host-mode ports answer only for tasks attached to one."""
    image: pulumi.Input[str]
    """An image with Debian's docker-registry (virtstack/base)."""
    port: int = names.REGISTRY_PORT
    """The port the registry is published on, at the manager's address."""
    storage: str = "registry-data"
    credentials: Credentials = field(default_factory=Credentials)
    tls: ServerTls | None = None
    """Serve HTTPS only, with this certificate; None serves plain HTTP."""


class SwarmRegistry(pulumi.ComponentResource):
    """One registry task on the manager, its blobs on the manager's volume.

    Nodes pull from ``endpoint`` with the credentials each service carries; the password
    reaches the registry only as a Swarm secret file (htpasswd), never an environment
    variable, and so does the TLS key.
    """

    endpoint: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]

    def __init__(
        self, name: str, args: SwarmRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("virtstack:swarm:SwarmRegistry", name, None, opts)
        p, creds = args.placement, args.credentials
        # role: (config name's prefix, path in the task, content)
        files = {
            "config": ("cfg", CONFIG_PATH, registry_config(creds.auth, tls=args.tls is not None))
        }
        if args.tls is not None:
            files["certificate"] = ("crt", CERTIFICATE_PATH, args.tls.certificate)
        configs = []
        for role, (prefix, path, text) in files.items():
            config = docker.ServiceConfig(
                f"{name}-{role}",
                name=svc.versioned(f"{name}-{prefix}", text),
                data=svc.b64(text),
                opts=p.opts(self),
            )
            configs.append(
                docker.ServiceTaskSpecContainerSpecConfigArgs(
                    config_id=config.id, config_name=config.name, file_name=path
                )
            )
        container = docker.ServiceTaskSpecContainerSpecArgs(
            image=args.image,
            commands=["docker-registry", "serve", CONFIG_PATH],
            configs=configs,
            secrets=self._secrets(name, args),
            # Named like the container target's: the manager keeps it across `destroy`
            # (Swarm never deletes a service's named volume).
            mounts=[
                svc.data_mount(
                    names.data_name(p.namespace, args.storage),
                    STORAGE_DIR,
                    namespace=p.namespace,
                    data=args.storage,
                )
            ],
            healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                tests=HEALTH_TEST, interval="2s", timeout="2s", retries=3
            ),
            stop_grace_period="2s",
        )
        docker.Service(
            f"{name}-server",
            name=name,
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=container,
                networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=args.network)],
                # The manager: its address is the registry's, and its volume the storage.
                placement=docker.ServiceTaskSpecPlacementArgs(constraints=[MANAGER]),
                restart_policy=svc.restart_policy(),
            ),
            endpoint_spec=svc.dnsrr([svc.host_port(names.REGISTRY_PORT, args.port)]),
            update_config=svc.update_config("stop-first"),
            converge_config=svc.converge(),
            labels=p.labels(role="registry"),
            opts=p.opts(self, ignore_changes=svc.read_back_noise(env=False)),
        )
        self.endpoint = pulumi.Output.from_input(f"{p.public_address}:{args.port}")
        self.username = pulumi.Output.from_input(creds.username or "")
        self.password = pulumi.Output.secret(creds.password or "")
        self.register_outputs(
            {"endpoint": self.endpoint, "username": self.username, "password": self.password}
        )

    def _secrets(
        self, name: str, args: SwarmRegistryArgs
    ) -> list[docker.ServiceTaskSpecContainerSpecSecretArgs] | None:
        files: list[tuple[str, str, pulumi.Input[str], str]] = []
        if args.credentials.auth:
            files.append(
                ("htpasswd", f"{name}-htpasswd", htpasswd(args.credentials), HTPASSWD_PATH)
            )
        if args.tls is not None:
            # Named by its certificate: a reissued certificate comes with a new key, and
            # Swarm secrets are immutable.
            key_name = svc.versioned(f"{name}-key", args.tls.certificate)
            files.append(("key", key_name, pulumi.Output.secret(args.tls.key), KEY_PATH))
        found = []
        for role, secret_name, content, path in files:
            secret = docker.Secret(
                f"{name}-{role}",
                name=secret_name,
                data=svc.b64(content),
                labels=[
                    docker.SecretLabelArgs(
                        label=names.NAMESPACE_LABEL, value=args.placement.namespace
                    )
                ],
                opts=args.placement.opts(self),
            )
            found.append(
                docker.ServiceTaskSpecContainerSpecSecretArgs(
                    # Readable by the registry (root in its task) alone.
                    secret_id=secret.id,
                    secret_name=secret.name,
                    file_name=path,
                    file_mode=0o400,
                )
            )
        return found or None
