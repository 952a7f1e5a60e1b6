"""The Swarm adapter with the docker client stood in: replicas from the task history,
node pins for stateful tiers, and data deletion on a manager."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from virtstack import report
from virtstack.engines import hostcmd
from virtstack.engines.base import ServerHealth, TierHealth
from virtstack.engines.swarm import ADAPTER, task_replicas
from virtstack.errors import EngineCommandError
from virtstack.spec import parse_spec

URI = "unix:///m.sock"
WEB, DB = "svc-web-id", "svc-db-id"


def task(
    tid: str, service: str, slot: int, state: str, *, created: str, desired: str = "shutdown",
    address: str = "10.0.1.5/24", tier: str = "shop-web", err: str = "",
) -> dict[str, Any]:  # fmt: skip
    status = {"State": state, "Timestamp": f"2026-11-27T08:{created}:00.5Z"}
    return {
        "ID": tid,
        "ServiceID": service,
        "Slot": slot,
        "CreatedAt": f"2026-11-27T08:{created}:00Z",
        "DesiredState": desired,
        "Status": status | ({"Err": err} if err else {}),
        "Spec": {"ContainerSpec": {"Labels": {"virtstack.tier": tier}}},
        "NetworksAttachments": [{"Network": {"Spec": {"Name": "n"}}, "Addresses": [address]}],
    }


HISTORY = [
    # web slot 1: replaced by an update (shutdown), crashed once (failed), runs now.
    task("w1a", WEB, 1, "shutdown", created="01"),
    task("w1b", WEB, 1, "failed", created="02", err="task: non-zero exit (137)"),
    task("w1c", WEB, 1, "running", created="03", desired="running", address="10.0.1.7/24"),
    # web slot 2: starting (its health check has not passed yet).
    task("w2a", WEB, 2, "starting", created="04", desired="running", address="10.0.1.8/24"),
    # db: its node is drained, so it waits for it.
    task("d1a", DB, 1, "shutdown", created="01", tier="shop-db"),
    task("d1b", DB, 1, "pending", created="05", desired="running", tier="shop-db",
         err="no suitable node (scheduling constraints not satisfied on 3 nodes)"),
]  # fmt: skip
WHERE = {
    "w1a": ("shop-web-replica.1", "n1"),
    "w1b": ("shop-web-replica.1", "n2"),
    "w1c": ("shop-web-replica.1", "n2"),
    "w2a": ("shop-web-replica.2", "n3"),
    "d1a": ("shop-db-replica-0.1", "n2"),
    "d1b": ("shop-db-replica-0.1", ""),
}


def test_replicas_are_the_tasks_wanted_running_with_restarts_from_their_history() -> None:
    found = task_replicas("shop", HISTORY, WHERE)
    assert [(r.replica, r.node, r.tier, r.restarts, r.address) for r in found] == [
        ("shop-db-replica-0.1", "", "db", 0, "10.0.1.5"),
        ("shop-web-replica.1", "n2", "web", 1, "10.0.1.7"),
        ("shop-web-replica.2", "n3", "web", 0, "10.0.1.8"),
    ]
    db, web1, web2 = found
    assert (
        db.state == "pending (no suitable node (scheduling constraints not satisfied on 3 nodes))"
    )
    assert (web1.state, web1.started) == ("running", "2026-11-27T08:03:00.5Z")
    # Not running yet: no "up since".
    assert (web2.state, web2.started) == ("starting", "")


def test_status_shows_how_the_load_balancer_sees_each_swarm_replica() -> None:
    replicas = task_replicas("shop", HISTORY, WHERE)
    lb = TierHealth(
        tier="web",
        lb="shop-web-lb",
        servers=[
            ServerHealth(name="shop-web-slot1", address="10.0.1.7:8080", status="UP", check=""),
            ServerHealth(name="shop-web-slot2", address="10.0.1.8:8080", status="DOWN", check=""),
        ],
    )
    shown = report.status_json({}, True, [lb], replicas)["replicas"]
    assert [(r["replica"], r["load_balancer"], r["restarts"]) for r in shown] == [
        ("shop-db-replica-0.1", "", 0),
        ("shop-web-replica.1", "UP", 1),
        ("shop-web-replica.2", "DOWN", 0),
    ]


Answer = Callable[[list[str]], str]


def docker(monkeypatch: pytest.MonkeyPatch, answer: Answer) -> list[list[str]]:
    """Stand in for the docker client: ``answer(args)`` for each call; the calls made."""
    calls: list[list[str]] = []

    def run(argv: list[str], *, uri: str, timeout: float = 0) -> str:
        assert argv[:3] == ["docker", "--host", URI]
        calls.append(argv[3:])
        return answer(argv[3:])

    monkeypatch.setattr(hostcmd, "run", run)
    return calls


def test_replicas_read_services_tasks_and_their_history_through_the_manager(monkeypatch) -> None:
    def answer(args: list[str]) -> str:
        if args[:2] == ["service", "ls"]:
            return "shop-web-replica\nshop-db-replica-0\n"
        if args[:2] == ["service", "ps"]:
            return "".join(f"{tid}\t{name}\t{node}\n" for tid, (name, node) in WHERE.items())
        return json.dumps(HISTORY)

    calls = docker(monkeypatch, answer)
    found = ADAPTER.replicas(parse_spec({"virtstack:target": "swarm"}), "shop", URI)
    assert [r.replica for r in found] == [
        "shop-db-replica-0.1", "shop-web-replica.1", "shop-web-replica.2",
    ]  # fmt: skip
    assert calls[0][-4:] == [
        "--filter", "label=virtstack.namespace=shop", "--filter", "label=virtstack.role=replica",
    ]  # fmt: skip
    assert calls[1][-2:] == ["shop-web-replica", "shop-db-replica-0"]
    assert calls[2] == ["inspect", "--type", "task", *WHERE]


def node(host: str, *, labels: tuple[str, ...] = (), manager: bool = False,
         state: str = "ready", availability: str = "active") -> dict[str, Any]:  # fmt: skip
    return {
        "Description": {"Hostname": host},
        "Spec": {
            "Role": "manager" if manager else "worker",
            "Availability": availability,
            "Labels": dict.fromkeys(labels, "true"),
        },
        "Status": {"State": state},
    }


SPEC = parse_spec(
    {
        "virtstack:target": "swarm",
        "virtstack:registry": {"enabled": True},
        "virtstack:tiers": [
            {"name": "db", "image": "virtstack/demo:1", "replicas": 3, "port": 8080,
             "stateful": True, "volume": {"name": "data", "path": "/data"}},
        ],
    }
)  # fmt: skip


def nodes_answer(nodes: list[dict[str, Any]], volumes: str = "") -> Answer:
    def answer(args: list[str]) -> str:
        if args[:2] == ["node", "ls"]:
            return "\n".join(n["Description"]["Hostname"] for n in nodes)
        if args[:2] == ["node", "inspect"]:
            return json.dumps(nodes)
        if args[:2] == ["volume", "ls"]:
            return volumes
        return ""

    return answer


def test_a_pin_stays_on_a_node_that_is_down_and_new_data_goes_to_workers_first(
    monkeypatch,
) -> None:
    nodes = [
        node("n1", manager=True),
        # Down, and drained: still the holder of replica 0's volume.
        node("n2", labels=("virtstack.data.shop_data_0",), state="down", availability="drain"),
        node("n3"),
        node("n4"),
    ]
    calls = docker(monkeypatch, nodes_answer(nodes))
    owner = ADAPTER.pin_data(SPEC, "shop", URI)
    assert owner == {"shop_data_0": "n2", "shop_data_1": "n3", "shop_data_2": "n4"}
    added = [c[-3:] for c in calls if c[:2] == ["node", "update"]]
    assert added == [
        ["--label-add", "virtstack.data.shop_data_1=true", "n3"],
        ["--label-add", "virtstack.data.shop_data_2=true", "n4"],
    ]


def test_with_one_worker_a_manager_takes_the_next_volume(monkeypatch) -> None:
    nodes = [node("n1", manager=True), node("n2", labels=("virtstack.data.shop_data_0",))]
    docker(monkeypatch, nodes_answer(nodes))
    assert ADAPTER.pin_data(SPEC, "shop", URI) == {
        "shop_data_0": "n2", "shop_data_1": "n1", "shop_data_2": "n2",
    }  # fmt: skip


def test_deleting_data_unpins_it_and_names_the_volumes_left_on_other_nodes(monkeypatch) -> None:
    nodes = [
        node("n1", manager=True, labels=("virtstack.data.shop_data_0",)),
        node("n2", labels=("virtstack.data.shop_data_1", "virtstack.data.other_data_0")),
    ]
    volumes = "shop_data_0\tshop\nshop_registry-data\tshop\n"
    calls = docker(monkeypatch, nodes_answer(nodes, volumes))
    with pytest.raises(EngineCommandError) as caught:
        ADAPTER.delete_data(SPEC, "shop", URI)
    assert str(caught.value) == (
        "deleted shop_data_0, shop_registry-data; volumes on other nodes than the manager "
        f"{URI} are left, unpinned: shop_data_1 on n2 (docker volume rm NAME on that node, "
        "once the service's stopped containers there are gone)"
    )
    changes = [c for c in calls if c[0] in {"node", "volume"} and c[1] in {"update", "rm"}]
    assert changes == [
        ["volume", "rm", "shop_data_0", "shop_registry-data"],
        ["node", "update", "--label-rm", "virtstack.data.shop_data_0", "n1"],
        ["node", "update", "--label-rm", "virtstack.data.shop_data_1", "n2"],
    ]


def test_deleting_data_all_on_the_manager_succeeds(monkeypatch) -> None:
    nodes = [node("n1", manager=True, labels=("virtstack.data.shop_data_0",))]
    docker(monkeypatch, nodes_answer(nodes, "shop_data_0\tshop\n"))
    assert ADAPTER.delete_data(SPEC, "shop", URI) == ["shop_data_0"]


def test_before_destroy_every_task_is_stopped_so_the_provider_need_not_wait(monkeypatch) -> None:
    states = iter(["Running 5 minutes ago\nShutdown 9 minutes ago\n", "Shutdown 1 second ago\n"])

    def answer(args: list[str]) -> str:
        return "s1\ns2\n" if args[:2] == ["service", "ls"] else next(states) if "ps" in args else ""

    calls = docker(monkeypatch, answer)
    ADAPTER.before_destroy("shop", URI)
    listed = ["service", "ps", "--format", "{{.CurrentState}}", "s1", "s2"]
    assert calls == [
        ["service", "ls", "-q", "--filter", "label=virtstack.namespace=shop"],
        ["service", "scale", "--detach", "s1=0", "s2=0"],
        listed,  # one task still running: asked again
        listed,
    ]
    calls = docker(monkeypatch, lambda args: "")
    ADAPTER.before_destroy("gone", URI)  # nothing deployed: nothing to scale
    assert [c[:2] for c in calls] == [["service", "ls"]]


def test_swarm_data_volumes_carry_the_environments_labels(run) -> None:
    """A node creates them from the mount: its labels make them the environment's data."""
    from virtstack_components.swarm.placement import SwarmPlacement
    from virtstack_components.swarm.registry import SwarmRegistry, SwarmRegistryArgs
    from virtstack_components.swarm.tier import SwarmTier, SwarmTierArgs
    from virtstack_components.tier import DataVolume, TierArgs

    def program() -> None:
        placement = SwarmPlacement(namespace="shop", lb_image="lb")
        args = SwarmRegistryArgs(placement=placement, network="n", image="reg")
        SwarmRegistry("shop-registry", args)
        tier = TierArgs(image="img", volume=DataVolume(name="data", path="/data"))
        SwarmTier("shop-db", SwarmTierArgs(placement=placement, tier=tier, network="n"))

    d = run(program)
    mounts = {
        name: d.named(name).inputs["taskSpec"]["containerSpec"]["mounts"][0]
        for name in ("shop-registry-server", "shop-db-replica-0")
    }
    assert {n: m["source"] for n, m in mounts.items()} == {
        "shop-registry-server": "shop_registry-data", "shop-db-replica-0": "shop_data_0",
    }  # fmt: skip
    labels = {
        name: {x["label"]: x["value"] for x in m["volumeOptions"]["labels"]}
        for name, m in mounts.items()
    }
    assert labels == {
        "shop-registry-server": {"virtstack.namespace": "shop", "virtstack.data": "registry-data"},
        "shop-db-replica-0": {"virtstack.namespace": "shop", "virtstack.data": "data"},
    }
    constraints = d.named("shop-db-replica-0").inputs["taskSpec"]["placement"]["constraints"]
    assert constraints == ["node.labels.virtstack.data.shop_data_0==true"]
