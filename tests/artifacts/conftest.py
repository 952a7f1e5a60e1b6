"""Artifacts tier: every rendered file checked by the program that consumes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from virtstack_components.tier import haproxy_config

from tests.support import require_tool
from virtstack import targets
from virtstack.spec import EnvironmentSpec, parse_spec
from virtstack.stackfiles import environments, read_config
from virtstack.targets.convert import tier_args

PROJECT = Path(__file__).resolve().parents[2]


def _require(tool: str) -> str:
    return require_tool(tool, ".ci/run installs it from Debian")


@pytest.fixture
def require() -> Callable[[str], str]:
    return _require


def shipped_specs() -> dict[str, EnvironmentSpec]:
    """Every environment in stacks/, validated against its target."""
    specs = {env: parse_spec(read_config(PROJECT, env)) for env in environments(PROJECT)}
    for spec in specs.values():
        targets.check(spec)
    return specs


def shipped_haproxy_configs() -> dict[str, str]:
    """The HAProxy config of every tier of every shipped environment, in its discovery style."""
    configs = {}
    for env, spec in shipped_specs().items():
        for tier in spec.tiers:
            name = f"{env}-{tier.name}"
            args = tier_args(tier, tier.image, {})
            if targets.get(spec.target).adapter.kind == "docker":
                configs[name] = haproxy_config(name, args)
            else:
                servers = [(f"{name}-{i}", f"192.0.2.{10 + i}") for i in range(tier.replicas)]
                configs[name] = haproxy_config(name, args, servers)
    return configs
