"""The benches' own inputs stay valid specs (a bench that dies on its input measures nothing)."""

from __future__ import annotations

from pathlib import Path

import yaml
from virtstack_components.probes import health_test

from bench import program_scale
from bench.up_vs_compose import compose_file, dev_config
from virtstack import targets
from virtstack.spec import parse_spec


def test_the_program_scale_bench_declares_a_valid_200_tier_environment() -> None:
    parsed = parse_spec(program_scale.config(200))
    targets.check(parsed)
    assert len(parsed.tiers) == 200


def test_the_speed_bench_writes_compose_the_dev_topology_with_virtstacks_health_checks(
    tmp_path: Path,
) -> None:
    config = dev_config(18080, 15000)
    document = yaml.safe_load(compose_file("bench", config, tmp_path).read_text())
    spec = parse_spec(config)
    services = document["services"]
    assert len(services) == 1 + sum(t.replicas + 1 for t in spec.tiers)
    web = spec.tiers[0]
    assert services["web-0"]["healthcheck"]["test"] == health_test(
        web.health.path, web.port, web.health.timeout
    )
    assert services["web-lb"]["ports"] == ["127.0.0.1:18080:80"]
