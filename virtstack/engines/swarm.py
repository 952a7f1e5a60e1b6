"""The Swarm engine adapter: a Swarm manager's Docker engine, reached with the docker client.

Swarm sees every node through its manager, but volumes and containers only through each
node's own engine: the adapter reads what the manager knows (services, tasks, node labels)
and runs `docker exec` only on services pinned to managers (the load balancers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from virtstack_components import names

from virtstack.engines import hostcmd
from virtstack.engines.base import DataItem, Reachability, ReplicaPlacement, Tunnel
from virtstack.engines.docker import DockerAdapter
from virtstack.engines.hostcmd import retry_transient
from virtstack.errors import EngineCommandError, EngineUnreachableError
from virtstack.spec import EnvironmentSpec, key


@dataclass(frozen=True)
class SwarmAdapter(DockerAdapter):
    """What virtstack does to a Swarm directly, through a manager's engine."""

    kind: str = "swarm"

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
        for image, where in wanted.items():
            if not self.image_exists(uri, image):
                yield (
                    f"{where}: image {image!r} is not on the Swarm manager {uri} "
                    "(tools/swarm-lab.sh load IMAGE)"
                )
        if spec.registry.enabled:
            address = f"{self.manager_address(uri)}:{spec.registry.port}"
            configs = json.loads(
                self._docker(uri, "info", "--format", "{{json .RegistryConfig.IndexConfigs}}")
            )
            if address not in configs:
                yield (
                    f"{key('registry', 'port')}: the nodes do not take {address} as an insecure "
                    "registry (list it in their daemon.json; the lab: VIRTSTACK_SWARM_INSECURE)"
                )

    def pin_data(self, spec: EnvironmentSpec, env: str, uri: str) -> dict[str, str]:
        """Give every replica volume of the spec a node (a node label), once: a label that
        exists stays, so a replica always returns to its data. Nodes are chosen by how few
        volumes they hold already. Returns data name -> node, all of them."""
        nodes = self._nodes(uri)
        owner: dict[str, str] = {}
        for node, labels in nodes.items():
            for label in labels:
                if label.startswith("virtstack.data."):
                    owner[label.removeprefix("virtstack.data.")] = node
        wanted = [
            names.replica_data_name(env, t.volume.name, i)
            for t in spec.tiers
            if t.volume is not None
            for i in range(t.replicas)
        ]
        for data in wanted:
            if data in owner:
                continue
            ready = [n for n in nodes if nodes[n] is not None]
            node = min(ready, key=lambda n: (sum(o == n for o in owner.values()), n))
            self._docker(
                uri, "node", "update", "--label-add", f"{names.data_node_label(data)}=true", node
            )
            owner[data] = node
        return owner

    def _nodes(self, uri: str) -> dict[str, list[str]]:
        """Ready, active nodes by host name, with their label keys."""
        found: dict[str, list[str]] = {}
        ids = self._docker(uri, "node", "ls", "-q").split()
        for node in json.loads(self._docker(uri, "node", "inspect", *ids)):
            if node["Status"]["State"] != "ready" or node["Spec"]["Availability"] != "active":
                continue
            found[node["Description"]["Hostname"]] = list(node["Spec"].get("Labels") or {})
        return found

    def data_items(self, env: str, uri: str) -> list[DataItem]:
        """The data volumes the manager knows: its own (the registry's), and every replica
        volume pinned to a node (it lives on that node)."""
        items = {i.name: i for i in super().data_items(env, uri)}
        for _node, labels in self._nodes(uri).items():
            for label in labels:
                data = label.removeprefix("virtstack.data.")
                if label != data and data.startswith(env + names.DATA_SEPARATOR):
                    items.setdefault(data, DataItem(name=data, owned=True))
        return sorted(items.values(), key=lambda i: i.name)

    def replicas(self, spec: EnvironmentSpec, env: str, uri: str) -> list[ReplicaPlacement]:
        services = self._docker(
            uri, "service", "ls", "-q", "--filter", f"label={names.NAMESPACE_LABEL}={env}"
        ).split()
        if not services:
            return []
        lines = self._docker(
            uri, "service", "ps", "--filter", "desired-state=running", "--format",
            "{{.Name}}\t{{.Node}}\t{{.CurrentState}}", *services,
        )  # fmt: skip
        found = []
        for line in lines.splitlines():
            task, node, state = ([*line.split("\t"), "", ""])[:3]
            found.append(ReplicaPlacement(replica=task, node=node, state=state))
        return sorted(found, key=lambda r: r.replica)

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


ADAPTER = SwarmAdapter()
