"""What every Swarm service of virtstack shares: policies, DNS round robin, swarm configs."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import pulumi
import pulumi_docker as docker

from virtstack_components import names

RESTART_DELAY = "1s"
CONVERGE_TIMEOUT = "3m"
"""How long `up` waits for a service's tasks to run (pulls on every node included)."""


def restart_policy() -> docker.ServiceTaskSpecRestartPolicyArgs:
    """Restart any task that ends, at once: Swarm reschedules it on another node if need be."""
    return docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay=RESTART_DELAY)


def update_config(order: str = "start-first") -> docker.ServiceUpdateConfigArgs:
    """One task at a time; ``start-first`` never drops a replica's capacity during an update,
    and a task that fails its health check rolls the update back."""
    return docker.ServiceUpdateConfigArgs(
        parallelism=1, order=order, delay="1s", monitor="5s", failure_action="rollback"
    )


def rollback_config(order: str = "start-first") -> docker.ServiceRollbackConfigArgs:
    return docker.ServiceRollbackConfigArgs(
        parallelism=1, order=order, delay="1s", monitor="5s", failure_action="pause"
    )


def dnsrr(
    ports: Sequence[docker.ServiceEndpointSpecPortArgs] = (),
) -> docker.ServiceEndpointSpecArgs:
    """DNS round robin: this kernel has no IPVS, so no virtual IPs and no routing mesh."""
    return docker.ServiceEndpointSpecArgs(mode="dnsrr", ports=list(ports) or None)


def host_port(target: int, published: int) -> docker.ServiceEndpointSpecPortArgs:
    """A port published on the node that runs the task (no routing mesh here)."""
    return docker.ServiceEndpointSpecPortArgs(
        target_port=target, published_port=published, publish_mode="host"
    )


def data_mount(
    source: str, target: str, *, namespace: str, data: str
) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    """A named volume, labelled as ``namespace``'s data ``data`` when the node creates it
    (so `destroy --delete-data` finds it, as on one engine)."""
    labels = {names.NAMESPACE_LABEL: namespace, names.DATA_LABEL: data}
    return docker.ServiceTaskSpecContainerSpecMountArgs(
        type="volume",
        source=source,
        target=target,
        volume_options=docker.ServiceTaskSpecContainerSpecMountVolumeOptionsArgs(
            labels=[
                docker.ServiceTaskSpecContainerSpecMountVolumeOptionsLabelArgs(label=k, value=v)
                for k, v in labels.items()
            ]
        ),
    )


def converge() -> docker.ServiceConvergeConfigArgs:
    """`up` returns once every task runs."""
    return docker.ServiceConvergeConfigArgs(delay="1s", timeout=CONVERGE_TIMEOUT)


def b64(text: pulumi.Input[str]) -> pulumi.Output[str]:
    """Swarm configs and secrets take their data base64-encoded."""
    return pulumi.Output.from_input(text).apply(lambda t: base64.b64encode(t.encode()).decode())


def versioned(name: str, content: str) -> str:
    """A config's name with its content's hash: Swarm configs are immutable, so a changed
    file is a new config, created before the service switches to it."""
    return f"{name}-{hashlib.sha256(content.encode()).hexdigest()[:10]}"


def read_back_noise(*, env: bool) -> list[str]:
    """Fields the provider reads back from Swarm as empty values we never set (a map of
    sysctls, a restart window "0s", an environment on tasks without one): ignored, so
    a fresh `up` previews no change."""
    found = ["taskSpec.containerSpec.sysctl", "taskSpec.restartPolicy.window"]
    return found if env else [*found, "taskSpec.containerSpec.env"]
