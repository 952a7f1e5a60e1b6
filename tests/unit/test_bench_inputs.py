"""The benches' own inputs stay valid specs (a bench that dies on its input measures nothing)."""

from __future__ import annotations

from bench import program_scale
from virtstack import targets
from virtstack.spec import parse_spec


def test_the_program_scale_bench_declares_a_valid_200_tier_environment() -> None:
    parsed = parse_spec(program_scale.config(200))
    targets.check(parsed)
    assert len(parsed.tiers) == 200
