"""`virtstack status`: outputs and load-balancer health, even when the engine is down."""

from __future__ import annotations

import json
from pathlib import Path

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
    down = FakeAdapter(reachable=False)
    result = invoke(project, make_services(runner, adapter=down), "status", "dev")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "http://127.0.0.1:8080/" in result.stdout
    assert "unix:///nonexistent.sock: docker engine not reachable" in result.stderr
    assert down.names() == ["probe"]
