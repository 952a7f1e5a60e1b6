"""The rendered registry config and htpasswd, served by Debian's real docker-registry:
HTTPS only, with a certificate from the environment's CA, and htpasswd auth."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from virtstack_components.registry import htpasswd_line
from virtstack_components.templating import render

from tests.support import free_port, stop, wait_until_serving
from virtstack import pki


@pytest.fixture
def registry(require, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``host:port`` of a registry serving the rendered config, and the CA it chains to."""
    port, debug = free_port(), free_port()
    made = pki.registry_cert(tmp_path, "shop", ["127.0.0.1", "localhost"])
    (tmp_path / "registry.crt").write_text(made.certificate)
    (tmp_path / "registry.key").write_text(made.key)
    (tmp_path / "htpasswd").write_text(htpasswd_line("virtstack", "s3cret"))
    config = render(
        "registry/config.yml.j2",
        port=port,
        debug_port=debug,
        storage_dir=str(tmp_path / "blobs"),
        auth=True,
        htpasswd_path=str(tmp_path / "htpasswd"),
        tls=True,
        certificate_path=str(tmp_path / "registry.crt"),
        key_path=str(tmp_path / "registry.key"),
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
        yield f"127.0.0.1:{port}", made.ca_file
    finally:
        stop(process)


def test_registry_refuses_anonymous_and_wrong_credentials(registry):
    address, ca = registry
    url, context = f"https://{address}/v2/", ssl.create_default_context(cafile=ca)
    assert httpx.get(url, verify=context, timeout=5).status_code == 401
    wrong = httpx.get(url, auth=("virtstack", "nope"), verify=context, timeout=5)
    assert wrong.status_code == 401


def test_registry_accepts_the_rendered_credentials_over_https(registry):
    address, ca = registry
    context = ssl.create_default_context(cafile=ca)
    response = httpx.get(f"https://{address}/v2/", auth=("virtstack", "s3cret"), verify=context)
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


def test_registry_refuses_plain_http(registry):
    address, _ = registry
    response = httpx.get(f"http://{address}/v2/", auth=("virtstack", "s3cret"), timeout=5)
    assert response.status_code == 400
    assert "Docker-Distribution-Api-Version" not in response.headers


def test_a_client_trusting_another_environments_ca_refuses_the_registry(registry, tmp_path):
    address, _ = registry
    other = pki.registry_cert(tmp_path, "other", ["127.0.0.1"])
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://{address}/v2/", verify=ssl.create_default_context(cafile=other.ca_file))
