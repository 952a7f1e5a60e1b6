"""Names and ports shared by the components and the tools that find their resources again.

Imports nothing heavy (no Pulumi), so the CLI can read a load balancer's stats or find an
environment's data without loading the Pulumi SDK. Every name an engine sees is derived
here once: a rename cannot split the component that makes a thing from the code that
looks for it.
"""

from __future__ import annotations

LB_PORT = 80
"""Where every tier's load balancer listens, inside its network."""
STATS_PORT = 8404
"""HAProxy's stats page and its own liveness URI (/healthz)."""
STATS_CSV_PATH = "/stats;csv"
ADMIN_SOCKET = "/run/haproxy-admin.sock"
"""HAProxy's runtime API in a load-balancer VM (root only): scaling down drains through it."""
REGISTRY_PORT = 5000
"""Where the registry listens inside its container or VM."""
MIN_SLOTS = 10
"""Server slots a tier's HAProxy keeps at least (DNS-discovered containers, VM addresses):
scaling within them changes nothing on the load balancer."""
LB_VM_MEMORY_MIB = 512
"""Memory of a tier's load-balancer VM."""
REGISTRY_VM_MEMORY_MIB = 1024
"""Memory of the registry VM."""


def is_tier_type(type_: str) -> bool:
    """Whether a Pulumi type is one of virtstack's tier components (on any engine):
    plans group a tier's replicas, load balancer and volumes under it."""
    package, _, rest = type_.partition(":")
    return package == "virtstack" and rest.endswith("Tier")


def tier_name(stack: str, tier: str) -> str:
    """The component (and engine-side prefix) of tier ``tier`` in stack ``stack``."""
    return f"{stack}-{tier}"


def lb_name(tier: str) -> str:
    """The load balancer of a tier (``tier`` as :func:`tier_name` made it)."""
    return f"{tier}-lb"


def backend_name(tier: str) -> str:
    """The HAProxy backend that holds a tier's replicas."""
    return f"be_{tier}"


def replica_name(tier: str, index: int) -> str:
    """Replica ``index`` of a tier: container name or VM host name."""
    return f"{tier}-{index}"


def replica_alias(tier: str) -> str:
    """The network alias every container replica of a tier answers to."""
    return f"{tier}-replica"


DATA_SEPARATOR = "_"
"""Joins the parts of a data name. Environment, volume and disk names are DNS labels, which
never hold it, so ``shop`` + ``db-data`` and ``shop-db`` + ``data`` cannot meet."""
NAMESPACE_LABEL = "virtstack.namespace"
"""Label (Docker) naming the environment an engine object belongs to."""
DATA_LABEL = "virtstack.data"
"""Label (Docker) naming the spec's volume a data volume holds."""


def data_name(namespace: str, name: str) -> str:
    """The engine's name for data called ``name`` in environment ``namespace``.

    Data outlives the stack's resources, so its name carries the environment rather than
    a component's name: the same environment finds it again.
    """
    return f"{namespace}{DATA_SEPARATOR}{name}"


def replica_data_name(namespace: str, volume: str, index: int) -> str:
    """The volume (or data disk) of replica ``index`` of a tier's volume ``volume``."""
    return f"{data_name(namespace, volume)}{DATA_SEPARATOR}{index}"


def legacy_data_name(namespace: str, name: str, index: int | None = None) -> str:
    """The name virtstack 0.1 gave the same data, joined with dashes (ambiguous)."""
    return f"{namespace}-{name}" + ("" if index is None else f"-{index}")


TIER_LABEL = "virtstack.tier"
"""Label (Docker) naming the tier a container or Swarm service belongs to."""
ROLE_LABEL = "virtstack.role"
"""Label (Docker): ``replica``, ``lb`` or ``registry``."""


def swarm_tasks(service: str) -> str:
    """The DNS name under which Swarm's DNS lists every task of a ``dnsrr`` service."""
    return f"tasks.{service}"


def data_node_label(data: str) -> str:
    """The Swarm node label that pins the replica owning volume ``data`` to its node."""
    return f"virtstack.data.{data}"
