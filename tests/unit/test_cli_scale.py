"""`virtstack scale` and `autoscale`: one line of the stack file changes, then up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.fixtures.cli_support import (
    FakeAdapter,
    FakeRunner,
    config_of,
    errors,
    invoke,
    make_services,
    outputs,
    set_key,
)
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack.cli import EXIT_BAD_INPUT
from virtstack.spec import parse_spec

# -- scale --------------------------------------------------------------------------------


def test_scale_writes_only_the_replica_count_then_runs_up(project: Path) -> None:
    path = project / "stacks" / "Pulumi.dev.yaml"
    before = path.read_text().splitlines()
    runner = FakeRunner(stack_outputs=outputs())
    result = invoke(project, make_services(runner), "scale", "dev", "app", "5")
    assert result.exit_code == 0, result.output
    after = path.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=False) if a != b]
    assert changed == [("      replicas: 2", "      replicas: 5")]
    assert len(after) == len(before) + 2  # the generated password secret, appended
    assert parse_spec(config_of(project, "dev")).tier("app").replicas == 5
    assert "virtstack:tiers[1].replicas: 2 → 5" in result.stdout
    assert runner.ops() == ["set_secret", "up", "outputs"]


def test_scale_down_drains_the_removed_replicas_around_the_deploy(project: Path) -> None:
    adapter = FakeAdapter()
    services = make_services(FakeRunner(stack_outputs=outputs()), adapter=adapter)
    assert invoke(project, services, "scale", "dev", "app", "5").exit_code == 0
    assert [c for c in adapter.calls if c[0] == "rotate"] == []  # scaling up: nothing to drain
    assert invoke(project, services, "scale", "dev", "app", "3").exit_code == 0
    removed = ["dev-app-3", "dev-app-4"]
    assert [c[3:] for c in adapter.calls if c[0] == "rotate"] == [
        ("app", removed, False),
        ("app", removed, True),
    ]


@pytest.mark.parametrize("replicas", ["1", "7"])
def test_scale_outside_min_max_names_the_key(project: Path, replicas: str) -> None:
    before = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    runner = FakeRunner()
    result = invoke(project, make_services(runner), "scale", "dev", "web", replicas)
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        f"error: virtstack:tiers[0].replicas: {replicas} is outside scaling min..max (2..6)"
    ]
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == before
    assert runner.calls == []


def test_scale_unknown_tier(project: Path) -> None:
    result = invoke(project, make_services(), "scale", "dev", "cache", "2")
    assert result.exit_code == EXIT_BAD_INPUT
    assert errors(result) == [
        "error: virtstack:tiers: no tier named 'cache' (tiers: ['web', 'app', 'db'])"
    ]


def test_scale_negative_is_rejected_by_the_cli(project: Path) -> None:
    result = invoke(project, make_services(), "scale", "dev", "web", "-1")
    assert result.exit_code == EXIT_BAD_INPUT


def test_scale_on_an_unreachable_engine_leaves_the_file(project: Path) -> None:
    set_key(project, "dev", "engine.uri", "unix:///nonexistent.sock")
    before = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    runner = FakeRunner()
    services = make_services(runner, adapter=FakeAdapter(reachable=False))
    result = invoke(project, services, "scale", "dev", "web", "3")
    assert result.exit_code == EXIT_BAD_INPUT
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == before
    assert runner.calls == []


def test_engine_errors_outside_virtstack_are_not_swallowed(project: Path) -> None:
    # Only VirtstackError is a message; a bug stays a traceback (exit code != 1/2 contract).
    runner = FakeRunner(fail=RuntimeError("bug"))
    result = invoke(project, make_services(runner), "up", "lab")
    assert isinstance(result.exception, RuntimeError)


# -- autoscale ----------------------------------------------------------------------------


def _haproxy_counter(backend: str, requests: int) -> str:
    return f"# pxname,svname,req_tot,type\n{backend},BACKEND,{requests},1\n"


def test_autoscale_adds_a_replica_above_the_threshold(project: Path) -> None:
    # dev: web and app have 2 replicas and a rule of 500 requests/replica/minute.
    totals = {"web": iter([0, 25]), "app": iter([0, 4])}  # over 1 s
    runner = FakeRunner(stack_outputs=outputs())
    adapter = FakeAdapter(stats=lambda tier: _haproxy_counter(f"be_dev-{tier}", next(totals[tier])))
    services = make_services(runner, adapter=adapter)
    result = invoke(project, services, "autoscale", "dev", "--window", "1")
    assert result.exit_code == 0, result.output
    assert "web: 750 requests/replica/min (threshold 500), 2 replicas → 3" in result.stdout
    assert "app: 120 requests/replica/min (threshold 500), 2 replicas stays" in result.stdout
    spec = parse_spec(config_of(project, "dev"))
    assert spec.tier("web").replicas == 3
    assert spec.tier("app").replicas == 2
    assert "up" in runner.ops()


def test_autoscale_is_refused_on_a_vm_target(project: Path) -> None:
    runner = FakeRunner()
    result = invoke(project, make_services(runner), "autoscale", "lab", "--window", "1")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "the hostos target has no threshold scaling" in result.stderr
    assert runner.ops() == []
