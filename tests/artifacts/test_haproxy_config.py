"""Every rendered haproxy.cfg passes `haproxy -c`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.artifacts.conftest import shipped_haproxy_configs

CONFIGS = shipped_haproxy_configs()


def haproxy_check(haproxy: str, config: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    return subprocess.run(
        [haproxy, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30, check=False
    )


def test_both_discovery_styles_are_shipped():
    assert any("server-template" in c for c in CONFIGS.values())
    assert any("\n    server " in c for c in CONFIGS.values())


@pytest.mark.parametrize("tier", sorted(CONFIGS))
def test_rendered_config_is_valid(tier: str, require, tmp_path: Path):
    result = haproxy_check(require("haproxy"), CONFIGS[tier], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout + result.stderr


def test_the_check_rejects_a_broken_config(require, tmp_path: Path):
    broken = next(iter(CONFIGS.values())).replace("balance roundrobin", "balance sideways")
    assert haproxy_check(require("haproxy"), broken, tmp_path).returncode != 0
