"""The Swarm engine adapter: a Swarm manager's Docker engine, reached with the docker client.

Swarm sees every node through its manager, but volumes and containers only through each
node's own engine: the adapter reads what the manager knows (services, tasks, node labels)
and runs `docker exec` only on services pinned to managers (the load balancers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tenacity import retry, stop_after_delay, wait_fixed
from virtstack_components import names

from virtstack.configkeys import key
from virtstack.engines import hostcmd
from virtstack.engines.base import DataItem, Reachability, ReplicaPlacement, Tunnel
from virtstack.engines.docker import DockerAdapter
from virtstack.engines.hostcmd import retry_transient
from virtstack.errors import EngineCommandError, EngineUnreachableError

if TYPE_CHECKING:
    from virtstack.spec import EnvironmentSpec


@dataclass(frozen=True)
class SwarmAdapter(DockerAdapter):
    """What virtstack does to a Swarm directly, through a manager's engine."""

    kind: str = "swarm"
    trusting: ClassVar[str] = "every node's engine"

    def _docker(self, uri: str, *args: str) -> str:
        return hostcmd.run(hostcmd.docker_argv(uri, *args), uri=uri)

    def probe(self, uri: str) -> Reachability:
        try:
            info = self._docker(
                uri, "info", "--format",
                "{{.ServerVersion}} {{.Swarm.ControlAvailable}} {{.Swarm.Nodes}}",
            ).split()  # fmt: skip
        except (EngineUnreachableError, EngineCommandError) as exc:
            return hostcmd.unreachable(self.kind, uri, exc)
        if len(info) < 3 or info[1] != "true":
            detail = "not a Swarm manager (docker swarm init, or tools/swarm-lab.sh up)"
            return Reachability(engine=self.kind, uri=uri, reachable=False, detail=detail)
        detail = f"Docker {info[0]}, Swarm manager of {info[2]} nodes"
        return Reachability(engine=self.kind, uri=uri, reachable=True, detail=detail)

    def manager_address(self, uri: str) -> str:
        """The manager's node address: published ports and the registry answer there."""
        return self._docker(uri, "info", "--format", "{{.Swarm.NodeAddr}}").strip()

    def preflight(self, spec: EnvironmentSpec, env: str, uri: str) -> list[str]:
        return list(self._swarm_problems(spec, uri))

    def registry_tunnel(self, spec: EnvironmentSpec, uri: str) -> Tunnel:
        return Tunnel()  # the registry is published at the manager's address: it answers here

    def _swarm_problems(self, spec: EnvironmentSpec, uri: str) -> Iterator[str]:
        wanted = {t.image: key("tiers", i, "image") for i, t in enumerate(spec.tiers)}
        if spec.tiers:
            wanted[spec.images.lb] = key("images", "lb")
        if spec.registry.enabled:
            wanted[spec.images.registry] = key("images", "registry")
        missing = self.missing_images(uri, list(wanted))
        for image, where in wanted.items():
            if image in missing:
                yield (
                    f"{where}: image {image!r} is not on the Swarm manager {uri} "
                    "(tools/swarm-lab.sh load IMAGE)"
                )

    def pin_data(self, spec: EnvironmentSpec, env: str, uri: str) -> dict[str, str]:
        """Give every replica volume of the spec a node (a node label), once: a label that
        exists stays, even on a node that is down or drained, so a replica only ever returns
        to its data. New volumes go to the schedulable node holding the fewest, workers
        before managers (those run the load balancers and the registry). Returns data
        name -> node, all of them."""
        nodes = self._nodes(uri)
        owner = pins(nodes)
        wanted = [
            names.replica_data_name(env, t.volume.name, i)
            for t in spec.tiers
            if t.volume is not None
            for i in range(t.replicas)
        ]
        ready = [n for n, node in nodes.items() if node.schedulable]
        for data in wanted:
            if data in owner:
                continue
            if not ready:
                raise EngineCommandError(f"{uri}: no ready, active Swarm node to hold {data}")
            node = min(
                ready,
                key=lambda n: (sum(o == n for o in owner.values()), nodes[n].manager, n),
            )
            self._docker(
                uri, "node", "update", "--label-add", f"{names.data_node_label(data)}=true", node
            )
            owner[data] = node
        return owner

    def _nodes(self, uri: str) -> dict[str, SwarmNode]:
        """Every node of the Swarm by host name."""
        ids = self._docker(uri, "node", "ls", "-q").split()
        return {
            node["Description"]["Hostname"]: SwarmNode(
                labels=list(node["Spec"].get("Labels") or {}),
                manager=node["Spec"].get("Role") == "manager",
                schedulable=node["Status"]["State"] == "ready"
                and node["Spec"]["Availability"] == "active",
            )
            for node in json.loads(self._docker(uri, "node", "inspect", *ids))
        }

    def data_items(self, env: str, uri: str) -> list[DataItem]:
        """The data volumes the manager knows: its own (the registry's), and every replica
        volume pinned to a node (it lives on that node, which may be down)."""
        items = {i.name: i for i in super().data_items(env, uri)}
        for data in pins(self._nodes(uri)):
            if data.startswith(env + names.DATA_SEPARATOR):
                items.setdefault(data, DataItem(name=data, owned=True))
        return sorted(items.values(), key=lambda i: i.name)

    def delete_data(self, spec: EnvironmentSpec, env: str, uri: str) -> list[str]:
        """Remove the manager's volumes and every pin. A volume on another node is out of
        the manager's reach: unpinned, it is named in the error, with the node to remove
        it on (its replica service is gone; that node's Docker removes the service's
        stopped containers shortly after, and then nothing uses the volume)."""
        found = self.find_data(spec, env, uri)
        local = {i.name for i in super().data_items(env, uri) if i.owned}
        owner = pins(self._nodes(uri))
        removed = [d for d in found if d in local]
        if removed:
            self._docker(uri, "volume", "rm", *removed)
        for data in found:
            if data in owner:
                label = names.data_node_label(data)
                self._docker(uri, "node", "update", "--label-rm", label, owner[data])
        elsewhere = [f"{d} on {owner[d]}" for d in found if d not in local and d in owner]
        if elsewhere:
            done = f"deleted {', '.join(removed)}; " if removed else ""
            raise EngineCommandError(
                f"{done}volumes on other nodes than the manager {uri} are left, unpinned: "
                f"{', '.join(elsewhere)} (docker volume rm NAME on that node, once the "
                f"service's stopped containers there are gone)"
            )
        return removed

    def replicas(self, spec: EnvironmentSpec, env: str, uri: str) -> list[ReplicaPlacement]:
        """Every replica task Swarm wants running, with its node, state, address on its
        tier's network, restarts (from the task history) and since when it runs."""
        services = self._docker(
            uri, "service", "ls", "--format", "{{.Name}}",
            "--filter", f"label={names.NAMESPACE_LABEL}={env}",
            "--filter", f"label={names.ROLE_LABEL}=replica",
        ).split()  # fmt: skip
        if not services:
            return []
        listed = self._docker(
            uri, "service", "ps", "--no-trunc", "--format", "{{.ID}}\t{{.Name}}\t{{.Node}}",
            *services,
        )  # fmt: skip
        where = {
            task: (name, node)
            for task, name, node in (([*ln.split("\t"), "", ""])[:3] for ln in listed.splitlines())
        }
        tasks = json.loads(self._docker(uri, "inspect", "--type", "task", *where))
        return task_replicas(env, tasks, where)

    def before_destroy(self, env: str, uri: str) -> None:
        """Stop every task of the environment's services first. Once a service is gone the
        Docker provider waits at most the task's stop grace period for each of its
        containers on the manager to be removed, and a task still stopping takes longer:
        `destroy` would fail with the services already removed."""
        services = self._docker(
            uri, "service", "ls", "-q", "--filter", f"label={names.NAMESPACE_LABEL}={env}"
        ).split()
        if services:
            self._docker(uri, "service", "scale", "--detach", *(f"{s}=0" for s in services))
            self._stopped(uri, services)

    @retry(stop=stop_after_delay(90), wait=wait_fixed(0.5), reraise=True)
    def _stopped(self, uri: str, services: list[str]) -> None:
        """Until no task of ``services`` has a container that runs or starts."""
        states = self._docker(uri, "service", "ps", "--format", "{{.CurrentState}}", *services)
        running = [s for s in states.splitlines() if s.startswith(("Running", "Starting"))]
        if running:
            raise EngineCommandError(f"{uri}: {len(running)} tasks still stopping")

    @retry_transient
    def lb_stats(
        self, spec: EnvironmentSpec, env: str, uri: str, outputs: Mapping[str, Any], tier: str
    ) -> str:
        """Read inside the load balancer's task: it runs on a manager, like ``uri``."""
        lb = names.lb_name(names.tier_name(env, tier))
        found = self._docker(
            uri, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={lb}"
        ).split()
        if not found:
            raise EngineCommandError(f"no running task of {lb} on the manager {uri}")
        url = f"http://127.0.0.1:{names.STATS_PORT}{names.STATS_CSV_PATH}"
        return self._docker(uri, "exec", found[0], "busybox", "wget", "-q", "-O-", url)


@dataclass(frozen=True, kw_only=True)
class SwarmNode:
    """What the adapter needs of one node: its label keys, role and whether it takes tasks."""

    labels: list[str]
    manager: bool
    schedulable: bool


def pins(nodes: Mapping[str, SwarmNode]) -> dict[str, str]:
    """Data name -> the node its label pins it to, on every node, whatever its state."""
    prefix = names.data_node_label("")
    return {
        label.removeprefix(prefix): name
        for name, node in nodes.items()
        for label in node.labels
        if label.startswith(prefix)
    }


ENDED_BY_ITSELF = frozenset({"failed", "complete", "rejected", "orphaned"})
"""Task states of a replica that stopped without being asked (a crash, a lost node): each
such task before the running one is a restart. Tasks replaced by an update end in
``shutdown`` and are not counted."""


def task_replicas(
    env: str, tasks: list[dict[str, Any]], where: Mapping[str, tuple[str, str]]
) -> list[ReplicaPlacement]:
    """Swarm tasks (``docker inspect`` of every task, history included) as replicas: those
    desired running; ``where`` gives each task's name (``<service>.<slot>``) and node.

    Restarts count only the task history Swarm keeps (its task history limit, 5 by default).
    """
    by_slot: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for task in tasks:
        by_slot.setdefault((task["ServiceID"], task.get("Slot", 0)), []).append(task)
    found = []
    for slot in by_slot.values():
        for task in slot:
            if task.get("DesiredState") != "running":
                continue
            status = task.get("Status") or {}
            restarts = sum(
                (t.get("Status") or {}).get("State") in ENDED_BY_ITSELF
                for t in slot
                if t["CreatedAt"] < task["CreatedAt"]
            )
            addresses = [a for n in task.get("NetworksAttachments") or [] for a in n["Addresses"]]
            labels = task["Spec"]["ContainerSpec"].get("Labels") or {}
            name, node = where.get(task["ID"], (task["ID"], ""))
            found.append(
                ReplicaPlacement(
                    replica=name,
                    node=node,
                    state=status.get("State", "?")
                    + (f" ({status['Err']})" if status.get("Err") else ""),
                    tier=labels.get(names.TIER_LABEL, "").removeprefix(f"{env}-"),
                    restarts=restarts,
                    started=status.get("Timestamp", "") if status.get("State") == "running" else "",
                    address=addresses[0].partition("/")[0] if addresses else "",
                )
            )
    return sorted(found, key=lambda r: r.replica)


ADAPTER = SwarmAdapter()
