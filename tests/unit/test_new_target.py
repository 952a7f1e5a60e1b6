"""Adding a target is one module plus its stack template: a fake fourth target, dropped into
the targets package, is picked up by the spec, `virtstack targets`, `new`, preflight and the
Pulumi program, with nothing else changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.fixtures.cli_support import FakeAdapter, FakeRunner, invoke, make_services
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack import targets
from virtstack.program import main
from virtstack.stackfiles import read_config

# The whole target: its module (a name, an engine adapter, capabilities, a deploy) ...
MODULE = '''
"""A fake target: one docker network per tier, on a test engine."""

import pulumi_docker as docker

from virtstack.engines.docker import DockerAdapter
from virtstack.targets.base import Capability, Target


def deploy(spec, ctx):
    for tier in spec.tiers:
        docker.Network(f"{ctx.env}-{tier.name}", name=f"{ctx.env}-{tier.name}")
    return {"target": TARGET.name}


TARGET = Target(
    name="fake",
    summary="a fourth kind of engine, for the test",
    adapter=DockerAdapter(kind="fake"),
    default_uri="unix:///var/run/fake.sock",
    uri_schemes=("unix",),
    capabilities=frozenset({Capability.SERVICE_TIERS}),
    deploy=deploy,
)
'''
# ... and the template its new environments start from.
TEMPLATE = """config:
  virtstack:target: {{ target.name }}
  virtstack:tiers:
    - name: web
      image: virtstack/demo:1
"""


@pytest.fixture
def fake_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    package = tmp_path / "more_targets"
    package.mkdir()
    (package / "fake.py").write_text(MODULE)
    templates = tmp_path / "templates"
    (templates / "stacks").mkdir(parents=True)
    (templates / "stacks" / "fake.yaml.j2").write_text(TEMPLATE)
    # The module sits in the targets package's path; the template in the templates' path.
    monkeypatch.setattr(targets, "__path__", [*targets.__path__, str(package)])
    monkeypatch.setattr(targets, "TARGETS", targets.discover())
    from virtstack_components.templating import environment

    loader = environment().loader
    monkeypatch.setattr(loader, "searchpath", [*loader.searchpath, str(templates)])  # type: ignore[union-attr]
    return "fake"


def test_the_targets_table_and_the_spec_know_it(project: Path, fake_target: str) -> None:
    result = invoke(project, make_services(), "targets", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["fake"]["capabilities"] == ["service tiers"]
    assert shown["fake"]["default_uri"] == "unix:///var/run/fake.sock"


def test_new_writes_its_template_and_up_runs_its_preflight(project: Path, fake_target: str) -> None:
    made = invoke(project, make_services(), "new", "shop", "--target", "fake")
    assert made.exit_code == 0, made.output
    assert read_config(project, "shop")["virtstack:target"] == "fake"
    adapter = FakeAdapter(
        kind="fake", problems=["virtstack:tiers[0].image: not on the fake engine"]
    )
    refused = invoke(project, make_services(FakeRunner(), adapter=adapter), "up", "shop", "-y")
    assert refused.exit_code == 2
    assert "error: virtstack:tiers[0].image: not on the fake engine" in refused.stderr
    [preflight] = [c for c in adapter.calls if c[0] == "preflight"]
    assert preflight[2] == "shop"


def test_the_program_deploys_with_it(run, fake_target: str) -> None:
    config = {
        "virtstack:target": "fake",
        "virtstack:tiers": [{"name": "web", "image": "virtstack/demo:1"}],
    }
    d = run(main, config, stack="shop")
    [network] = d.of_type("docker:index/network:Network")
    assert network.inputs["name"] == "shop-web"
