"""The rendered registry config and htpasswd, served by Debian's real docker-registry."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from virtstack_components.registry import htpasswd_line
from virtstack_components.templating import render

from tests.support import free_port, stop, wait_until_serving


@pytest.fixture
def registry(require, tmp_path: Path) -> Iterator[str]:
    port, debug = free_port(), free_port()
    (tmp_path / "htpasswd").write_text(htpasswd_line("virtstack", "s3cret"))
    config = render(
        "registry/config.yml.j2",
        port=port,
        debug_port=debug,
        storage_dir=str(tmp_path / "blobs"),
        auth=True,
        htpasswd_path=str(tmp_path / "htpasswd"),
    )
    # Loopback only: the test talks to nothing else.
    config = config.replace(f"addr: :{port}", f"addr: 127.0.0.1:{port}")
    config = config.replace(f"addr: :{debug}", f"addr: 127.0.0.1:{debug}")
    (tmp_path / "config.yml").write_text(config)
    process = subprocess.Popen(
        [require("docker-registry"), "serve", str(tmp_path / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{debug}/debug/health")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def test_registry_refuses_anonymous_and_wrong_credentials(registry: str):
    assert httpx.get(f"{registry}/v2/", timeout=5).status_code == 401
    assert httpx.get(f"{registry}/v2/", auth=("virtstack", "nope"), timeout=5).status_code == 401


def test_registry_accepts_the_rendered_credentials(registry: str):
    response = httpx.get(f"{registry}/v2/", auth=("virtstack", "s3cret"), timeout=5)
    assert response.status_code == 200
