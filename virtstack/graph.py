"""A picture of an environment: networks, load balancers, tiers and their replicas, data,
the registry, VMs and container hosts, and where traffic enters.

Built from the spec alone (:func:`build`), named with :mod:`virtstack_components.names` so
every box carries the name the engine shows; drawn as Mermaid (GitHub renders it in a pull
request) or Graphviz DOT (:func:`svg` runs ``dot -Tsvg``). A plan's changes mark the boxes
they touch (:func:`marks`): each box knows the Pulumi resource names it stands for.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from virtstack_components import names

from virtstack.errors import ToolMissingError, VirtstackError
from virtstack.plan.events import RANK, Op

if TYPE_CHECKING:
    from virtstack.environment import Environment
    from virtstack.plan.model import Change
    from virtstack.spec import EnvironmentSpec

FORMATS = ("mermaid", "dot", "svg")
MARKED = {Op.CREATE: "created", Op.UPDATE: "updated", Op.REPLACE: "replaced", Op.DELETE: "deleted"}
# Fill and stroke per mark: the same in both renderers.
_COLOURS = {
    "created": ("#d4f7d4", "#1a7f37"),
    "updated": ("#fff3c4", "#9a6700"),
    "replaced": ("#f3d9fa", "#8250df"),
    "deleted": ("#ffd7d5", "#cf222e"),
}
_MERMAID_SHAPE = {
    "lb": ("{{", "}}"),
    "data": ("[(", ")]"),
    "entry": ("((", "))"),
    "registry": ("[/", "/]"),
}
_DOT_SHAPE = {"lb": "hexagon", "data": "cylinder", "entry": "circle", "registry": "folder"}


@dataclass(frozen=True)
class Node:
    """A box: ``name`` is the engine-side name, ``resources`` the Pulumi names it covers
    (a resource belongs to the box whose name is the longest prefix of its own)."""

    name: str
    label: str
    kind: str
    group: str | None = None
    resources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""


@dataclass
class Graph:
    """Boxes, arrows, and the nested groups (networks, tiers) that hold boxes."""

    env: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    groups: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """Group name -> (label, enclosing group)."""

    def add(self, node: Node) -> Node:
        self.nodes[node.name] = node
        return node

    def group(self, name: str, label: str, parent: str | None = None) -> str:
        self.groups.setdefault(name, (label, parent))
        return name


def build(spec: EnvironmentSpec, env: str, *, vms: bool) -> Graph:
    """The environment ``env`` as ``spec`` declares it.

    ``vms``: replicas are VMs sharing the spec's networks (hostos, hypervisor); otherwise
    containers, each tier on a network of its own.
    """
    g = Graph(env)
    first = spec.networks[0].name if spec.networks else None

    def network(name: str | None) -> str | None:
        name = name or first
        if name is None:
            return None
        cidr = spec.network_cidr(name)
        return g.group(f"net:{env}-{name}", f"network {env}-{name}" + (f" {cidr}" if cidr else ""))

    if spec.registry.enabled:
        reg = spec.registry
        registry = g.add(
            Node(f"{env}-registry", f"registry {env}-registry", "registry", network(None) if vms
                 else None, (f"{env}-registry",))
        )  # fmt: skip
        storage = names.data_name(env, reg.storage)
        kind = "data disk" if vms else "volume"
        g.add(Node(storage, f"{kind} {storage}", "data", registry.group,
                   (f"{env}-registry-storage", f"{env}-registry-vm-data")))  # fmt: skip
        g.edges.append(Edge(registry.name, storage))
        if not vms:
            entry = g.add(Node(f"entry:{env}-registry", "push / pull", "entry"))
            g.edges.append(Edge(entry.name, registry.name, f"{reg.address}:{reg.port}"))
    fed = {t.upstream for t in spec.tiers if t.upstream}
    for t in spec.tiers:
        tier = names.tier_name(env, t.name)
        net = (
            g.group(f"net:{tier}-net", f"network {tier}-net" + (" (internal)" if t.name in fed
                    else ""))
            if not vms
            else network(t.network)
        )  # fmt: skip
        most = f", max {t.scaling.max}" if t.scaling else ""
        count = f"{t.replicas} replica" + ("" if t.replicas == 1 else "s")
        box = g.group(f"tier:{tier}", f"tier {t.name}: {count}{most}", net)
        lb = g.add(Node(names.lb_name(tier), f"lb {names.lb_name(tier)}", "lb", box,
                        (names.lb_name(tier),)))  # fmt: skip
        for i in range(t.replicas):
            replica = g.add(
                Node(names.replica_name(tier, i), names.replica_name(tier, i),
                     "vm" if vms else "container", box, (f"{tier}-replica-{i}",))
            )  # fmt: skip
            g.edges.append(Edge(lb.name, replica.name, f":{t.port}"))
            if t.volume is not None:
                data = names.replica_data_name(env, t.volume.name, i)
                kind = "data disk" if vms else "volume"
                g.add(Node(data, f"{kind} {data}", "data", box,
                           (f"{tier}-data-{i}", f"{tier}-replica-{i}-data")))  # fmt: skip
                g.edges.append(Edge(replica.name, data, t.volume.path))
        if t.publish is not None:
            entry = g.add(Node(f"entry:{tier}", "clients", "entry"))
            g.edges.append(Edge(entry.name, lb.name, f"{t.publish_address}:{t.publish}"))
    for t in spec.tiers:
        if t.upstream:
            tier, up = names.tier_name(env, t.name), names.tier_name(env, t.upstream)
            for i in range(t.replicas):
                g.edges.append(Edge(names.replica_name(tier, i), names.lb_name(up), "upstream"))
    for section, label in ((spec.vms, "vm"), (spec.container_hosts, "container host")):
        for item in section:
            for i in range(item.count):
                name = f"{env}-{item.name}" + (f"-{i}" if item.count > 1 else "")
                g.add(Node(name, f"{label} {name}", "vm", network(item.network), (name,)))
    return g


def _resource_owner(graph: Graph, resource: str) -> Node | None:
    best: tuple[int, Node] | None = None
    for node in graph.nodes.values():
        for prefix in node.resources:
            if (resource == prefix or resource.startswith(prefix + "-")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), node)
    return best[1] if best else None


def marks(graph: Graph, changes: Iterable[Change]) -> dict[str, str]:
    """Which boxes a plan's changes touch, and how (the most drastic change wins).

    A deleted resource no box covers (a tier taken out of the spec) gets a box of its own,
    so the picture shows what goes away.
    """
    found: dict[str, Op] = {}
    for c in changes:
        if c.op not in MARKED:
            continue
        node = _resource_owner(graph, c.name)
        if node is None:
            if c.op is not Op.DELETE:
                continue  # created plumbing (pools, images, providers) has no box
            node = graph.add(Node(c.name, f"{c.name} (removed)", "gone", None, (c.name,)))
        old = found.get(node.name)
        if old is None or RANK.index(c.op) > RANK.index(old):
            found[node.name] = c.op
    return {name: MARKED[op] for name, op in found.items()}


def _id(name: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9]", "_", name)


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def _children(graph: Graph) -> tuple[dict[str | None, list[str]], dict[str | None, list[Node]]]:
    groups: dict[str | None, list[str]] = {}
    for name, (_, parent) in graph.groups.items():
        groups.setdefault(parent, []).append(name)
    nodes: dict[str | None, list[Node]] = {}
    for node in graph.nodes.values():
        nodes.setdefault(node.group, []).append(node)
    return groups, nodes


def mermaid(graph: Graph, marked: Mapping[str, str] | None = None) -> str:
    """A Mermaid flowchart; ``marked`` boxes get the class of their change."""
    groups, nodes = _children(graph)
    lines = ["flowchart LR"]
    for cls, (fill, stroke) in _COLOURS.items():
        lines.append(f"  classDef {cls} fill:{fill},stroke:{stroke},stroke-width:2px")

    def emit(group: str | None, depth: int) -> None:
        pad = "  " * depth
        for node in nodes.get(group, []):
            start, end = _MERMAID_SHAPE.get(node.kind, ("[", "]"))
            lines.append(f'{pad}{_id(node.name)}{start}"{_mermaid_text(node.label)}"{end}')
        for child in groups.get(group, []):
            lines.append(f'{pad}subgraph {_id(child)}["{_mermaid_text(graph.groups[child][0])}"]')
            emit(child, depth + 1)
            lines.append(f"{pad}end")

    emit(None, 1)
    for e in graph.edges:
        label = f'|"{_mermaid_text(e.label)}"|' if e.label else ""
        lines.append(f"  {_id(e.source)} -->{label} {_id(e.target)}")
    for name, cls in sorted((marked or {}).items()):
        lines.append(f"  class {_id(name)} {cls}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(graph: Graph, marked: Mapping[str, str] | None = None) -> str:
    """A Graphviz digraph; networks and tiers are clusters."""
    groups, nodes = _children(graph)
    marked = marked or {}
    lines = [
        f"digraph {_dot_text(graph.env)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="sans-serif"];',
        '  edge [fontname="sans-serif", fontsize=10];',
    ]

    def emit(group: str | None, depth: int) -> None:
        pad = "  " * depth
        for node in nodes.get(group, []):
            attrs = [f"label={_dot_text(node.label)}"]
            if node.kind in _DOT_SHAPE:
                attrs.append(f"shape={_DOT_SHAPE[node.kind]}")
            if node.name in marked:
                fill, stroke = _COLOURS[marked[node.name]]
                attrs += [f'fillcolor="{fill}"', f'color="{stroke}"', "penwidth=2"]
            lines.append(f"{pad}{_id(node.name)} [{', '.join(attrs)}];")
        for child in groups.get(group, []):
            lines.append(f"{pad}subgraph cluster_{_id(child)} {{")
            lines.append(f"{pad}  label={_dot_text(graph.groups[child][0])};")
            emit(child, depth + 1)
            lines.append(f"{pad}}}")

    emit(None, 1)
    for e in graph.edges:
        label = f" [label={_dot_text(e.label)}]" if e.label else ""
        lines.append(f"  {_id(e.source)} -> {_id(e.target)}{label};")
    return "\n".join(lines) + "\n}\n"


def svg(dot_text: str) -> str:
    """``dot_text`` drawn by Graphviz (``dot -Tsvg``, Debian's ``graphviz``)."""
    if shutil.which("dot") is None:
        raise ToolMissingError("graph --format svg: Graphviz's dot is not installed (graphviz)")
    done = subprocess.run(
        ["dot", "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise VirtstackError(f"dot -Tsvg failed: {done.stderr.strip()}")
    return done.stdout


def of_environment(environment: Environment, env: str) -> Graph:
    """The graph of environment ``env`` (its target says whether replicas are VMs)."""
    from virtstack.targets import Capability  # imports Pulumi

    return build(environment.spec, env, vms=Capability.VMS in environment.target.capabilities)


def plan_diagram(environment: Environment, env: str, changes: Iterable[Change]) -> str:
    """Mermaid text of the environment with the boxes ``changes`` touch marked."""
    g = of_environment(environment, env)
    return mermaid(g, marks(g, changes))


def render(graph: Graph, fmt: str, marked: Mapping[str, str] | None = None) -> str:
    """``graph`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "mermaid":
        return mermaid(graph, marked)
    text = dot(graph, marked)
    return svg(text) if fmt == "svg" else text
