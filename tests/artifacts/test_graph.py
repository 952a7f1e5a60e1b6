"""Environment pictures checked by their consumers: Graphviz draws the DOT, Mermaid's own
parser (under Node) accepts the Mermaid text, also inside a preview's markdown."""

from __future__ import annotations

import html
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import unavailable
from tests.unit.fixtures.cli_support import events
from virtstack import graph
from virtstack.environment import StackRef, load
from virtstack.plan.markdown import markdown
from virtstack.plan.model import plan
from virtstack.spec import parse_spec

PROJECT = Path(__file__).resolve().parents[2]
MERMAID_CHECK = PROJECT / "tools" / "mermaid-check" / "run.sh"
ENVS = ("dev", "lab", "staging")


def _graph(env: str) -> graph.Graph:
    return graph.of_environment(load(StackRef(project=PROJECT, env=env, target=None)), env)


def mermaid_parse(files: list[Path]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", str(MERMAID_CHECK), *map(str, files)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode == 3:
        unavailable(done.stderr.strip())
    return done


@pytest.mark.parametrize("env", ENVS)
def test_graphviz_draws_the_dot(env: str, require: Callable[[str], str]) -> None:
    require("dot")
    text = graph.svg(graph.dot(_graph(env)))
    assert text.lstrip().startswith("<?xml")
    assert "<svg" in text
    # Every box is drawn: its label is in the picture (Graphviz escapes dashes).
    drawn = html.unescape(text)
    for node in _graph(env).nodes.values():
        assert f">{node.label}</text>" in drawn, node.label


def test_mermaid_parser_accepts_every_environment_and_refuses_a_broken_one(
    tmp_path: Path, require: Callable[[str], str]
) -> None:
    require("node")
    files = []
    for env in ENVS:
        files.append(tmp_path / f"{env}.mmd")
        files[-1].write_text(graph.mermaid(_graph(env), {f"{env}-web-lb": "replaced"}))
    done = mermaid_parse(files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": ok (flowchart") == len(ENVS)
    # Negative control: the same text with one subgraph left open is refused.
    broken = tmp_path / "broken.mmd"
    broken.write_text(files[0].read_text().replace("\n  end\n", "\n", 1).replace('"]', '"', 1))
    refused = mermaid_parse([broken])
    assert refused.returncode == 1
    assert f"{broken}: " in refused.stdout
    assert ": ok" not in refused.stdout


def test_preview_markdown_embeds_the_marked_diagram(
    tmp_path: Path, require: Callable[[str], str]
) -> None:
    require("node")
    spec = parse_spec(
        {"target": "container", "tiers": [{"name": "web", "image": "i", "replicas": 2}]}
    )
    recorded = plan(events("recorded-preview-changes.json"), "vst-rec", "container")
    g = graph.build(spec, "vst-rec", vms=False)
    text = markdown(recorded, graph.mermaid(g, graph.marks(g, recorded.changes)))
    block = re.search(r"```mermaid\n(.*?)```", text, re.S)
    assert block is not None
    diagram = block.group(1)
    for line in (
        "class n_vst_rec_web_lb replaced",
        "class n_vst_rec_web_0 replaced",
        "class n_vst_rec_web_1 created",
        "class n_vst_rec_app_lb deleted",
    ):
        assert f"  {line}\n" in diagram
    source = tmp_path / "preview.mmd"
    source.write_text(diagram)
    done = mermaid_parse([source])
    assert done.returncode == 0, done.stdout
