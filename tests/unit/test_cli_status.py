"""`virtstack status`: outputs and load-balancer health, even when the engine is down."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from tests.unit.fixtures.cli_support import (
    FIXTURES,
    FakeAdapter,
    FakeRunner,
    invoke,
    make_services,
    outputs,
    set_key,
)
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack.cli import EXIT_BAD_INPUT
from virtstack.engines.base import Reachability, ReplicaPlacement
from virtstack.spec import EnvironmentSpec


def test_status_shows_outputs_and_backend_health(project: Path) -> None:
    recorded = {
        tier: (FIXTURES / f"haproxy-stats-{'static' if tier == 'web' else 'dns'}.csv").read_text()
        for tier in ("web", "app", "db")
    }
    adapter = FakeAdapter(stats=recorded.__getitem__)
    runner = FakeRunner(stack_outputs=outputs())
    result = invoke(project, make_services(runner, adapter=adapter), "status", "dev")
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8080/" in result.stdout
    assert "hunter2-secret" not in result.stdout
    for text in ("dev-web-lb", "dev-web-1", "UP", "DOWN", "L4CON", "(10 empty slots)"):
        assert text in result.stdout
    asked = [c for c in adapter.calls if c[0] == "lb_stats"]
    assert [c[-1] for c in asked] == ["web", "app", "db"]
    [(_, env, uri, values, _)] = asked[:1]
    assert (env, uri, values["registry_password"]) == (
        "dev",
        "unix:///var/run/docker.sock",
        "[secret]",
    )


def test_status_json(project: Path) -> None:
    runner = FakeRunner(stack_outputs=outputs())
    result = invoke(project, make_services(runner), "status", "dev", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["outputs"]["urls"] == {"web": "http://127.0.0.1:8080/"}
    assert shown["outputs"]["registry_password"] == "[secret]"


def test_status_on_an_unreachable_engine_still_shows_outputs(project: Path) -> None:
    set_key(project, "dev", "engine.uri", "unix:///nonexistent.sock")
    runner = FakeRunner(stack_outputs=outputs())
    down = FakeAdapter(reachable=False, stats=lambda tier: "")
    result = invoke(project, make_services(runner, adapter=down), "status", "dev")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "http://127.0.0.1:8080/" in result.stdout
    assert "unix:///nonexistent.sock: docker engine not reachable" in result.stderr
    # A local engine is read while it is probed, but nothing read is shown as live.
    assert "probe" in down.names()
    assert "load-balancer backends" not in result.stdout
    assert "replicas" not in result.stdout


def test_status_asks_an_unreachable_remote_engine_nothing_but_the_probe(project: Path) -> None:
    # Each read of a remote engine that does not answer waits out its own timeout.
    set_key(project, "dev", "engine.uri", "ssh://nobody@engine.invalid")
    runner = FakeRunner(stack_outputs=outputs())
    down = FakeAdapter(reachable=False)
    result = invoke(project, make_services(runner, adapter=down), "status", "dev")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "http://127.0.0.1:8080/" in result.stdout
    assert down.names() == ["probe"]


def test_status_reads_a_local_engine_while_it_probes_it(project: Path) -> None:
    # The probe, the three load balancers' stats and the replica list each answer only
    # once all five are under way (the barrier breaks after 5 s when asked in turn).
    everyone = threading.Barrier(5, timeout=5)

    class Gathered(FakeAdapter):
        def probe(self, uri: str) -> Reachability:
            everyone.wait()
            return super().probe(uri)

        def lb_stats(self, *args: Any) -> str:
            everyone.wait()
            return str(super().lb_stats(*args))

        def replicas(self, spec: EnvironmentSpec, env: str, uri: str) -> list[ReplicaPlacement]:
            everyone.wait()
            return super().replicas(spec, env, uri)

    adapter = Gathered(stats=lambda tier: "")
    result = invoke(
        project,
        make_services(FakeRunner(stack_outputs=outputs()), adapter=adapter),
        "status",
        "dev",
    )
    assert result.exit_code == 0, result.output
    assert sorted(adapter.names()) == ["lb_stats"] * 3 + ["probe", "replicas"]
