"""The environment graph: built from the spec with the engine's names, marked by a plan."""

from __future__ import annotations

from pathlib import Path

from virtstack_components import names

from tests.unit.fixtures.cli_support import REPO, events, invoke, make_services
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack import graph
from virtstack.plan.model import plan
from virtstack.spec import parse_spec

WEB_ONLY = {
    "target": "container",
    "tiers": [{"name": "web", "image": "virtstack/demo:1", "replicas": 2, "publish": 8080}],
}


def test_dev_has_every_part_under_its_engine_name() -> None:
    from virtstack.environment import StackRef, load

    environment = load(StackRef(project=REPO, env="dev", target=None))
    g = graph.of_environment(environment, "dev")
    tier = names.tier_name("dev", "db")
    for name in (
        names.lb_name(names.tier_name("dev", "web")),
        names.replica_name(names.tier_name("dev", "web"), 1),
        names.replica_name(tier, 0),
        names.replica_data_name("dev", "db-data", 0),
        names.data_name("dev", "registry-data"),
        "dev-registry",
    ):
        assert name in g.nodes, name
    assert g.groups["tier:dev-web"][1] == "net:dev-web-net"
    assert "internal" in g.groups["net:dev-app-net"][0]
    entries = [e for e in g.edges if e.source == "entry:dev-web"]
    assert [(e.target, e.label) for e in entries] == [("dev-web-lb", "127.0.0.1:8080")]
    upstream = {(e.source, e.target) for e in g.edges if e.label == "upstream"}
    assert upstream == {("dev-web-0", "dev-app-lb"), ("dev-web-1", "dev-app-lb"),
                        ("dev-app-0", "dev-db-lb"), ("dev-app-1", "dev-db-lb")}  # fmt: skip


def test_vm_environment_shares_its_network() -> None:
    from virtstack.environment import StackRef, load

    g = graph.of_environment(load(StackRef(project=REPO, env="staging", target=None)), "staging")
    net = "net:staging-staging"
    assert "192.168.152.0/24" in g.groups[net][0]
    assert g.nodes["staging-tools"].group == net
    assert g.nodes["staging-docker"].group == net
    assert g.groups["tier:staging-web"][1] == net


def test_recorded_change_marks_the_boxes_it_touches() -> None:
    """The recorded preview: web's lb and replica 0 replaced, replica 1 new, app removed."""
    changes = plan(events("recorded-preview-changes.json"), "vst-rec", "container").changes
    g = graph.build(parse_spec(WEB_ONLY), "vst-rec", vms=False)
    marked = graph.marks(g, changes)
    assert marked["vst-rec-web-lb"] == "replaced"
    assert marked["vst-rec-web-0"] == "replaced"
    assert marked["vst-rec-web-1"] == "created"
    gone = {name for name, how in marked.items() if how == "deleted"}
    assert gone == {"vst-rec-app-lb", "vst-rec-app-replica-0", "vst-rec-app-net-docker"}
    text = graph.mermaid(g, marked)
    assert "  class n_vst_rec_web_1 created" in text
    assert "  class n_vst_rec_app_lb deleted" in text
    assert 'n_vst_rec_app_lb["vst-rec-app-lb (removed)"]' in text
    dot = graph.dot(g, marked)
    assert 'n_vst_rec_web_lb [label="lb vst-rec-web-lb", shape=hexagon, fillcolor="#f3d9fa"' in dot


def test_labels_are_escaped() -> None:
    g = graph.Graph("e")
    g.add(graph.Node("a", 'say "hi" \\ there', "container"))
    assert 'n_a["say #quot;hi#quot; \\ there"]' in graph.mermaid(g)
    assert 'label="say \\"hi\\" \\\\ there"' in graph.dot(g)


def test_graph_command(project: Path) -> None:
    result = invoke(project, make_services(), "graph", "dev")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("flowchart LR\n")
    result = invoke(project, make_services(), "graph", "lab", "--format", "dot")
    assert result.output.startswith('digraph "lab" {')
    bad = invoke(project, make_services(), "graph", "dev", "--format", "png")
    assert bad.exit_code == 2
    assert "'png' is not one of mermaid, dot, svg" in bad.output
