"""The dev topology as docker-compose deploys it, for :mod:`bench.speed` to race against.

The same topology as `virtstack up dev` (a registry, web -> app -> db tiers each behind
HAProxy, tier networks, the db volume) from the same images; compose gets the very
HAProxy and registry configs virtstack renders and the same health checks.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path

import yaml
from virtstack_components import names
from virtstack_components.docker import registry
from virtstack_components.docker import tier as tiers
from virtstack_components.probes import health_test
from virtstack_components.registry import (
    CONFIG_PATH,
    HTPASSWD_PATH,
    STORAGE_DIR,
    htpasswd_line,
    registry_config,
)
from virtstack_components.tier import HealthCheck, TierArgs, haproxy_config

from virtstack.spec import parse_spec
from virtstack.stackfiles import read_config

PROJECT = Path(__file__).resolve().parents[1]


def dev_config(web_port: int, registry_port: int) -> dict[str, object]:
    config = read_config(PROJECT, "dev")
    config.pop("virtstack:registry_password", None)
    config["virtstack:registry"]["port"] = registry_port
    config["virtstack:tiers"][0]["publish"] = web_port
    return config


def compose_file(name: str, config: dict[str, object], workdir: Path) -> Path:
    """The dev topology as a docker-compose file, configs written beside it."""
    spec = parse_spec(config)
    services: dict[str, object] = {}
    networks: dict[str, object] = {}
    fed = {t.upstream for t in spec.tiers}
    password = secrets.token_urlsafe(16)
    (workdir / "registry.yml").write_text(registry_config(True))
    (workdir / "htpasswd").write_text(htpasswd_line("virtstack", password))
    services["registry"] = {
        "image": spec.images.registry,
        "command": ["docker-registry", "serve", CONFIG_PATH],
        "volumes": [
            f"{workdir / 'registry.yml'}:{CONFIG_PATH}:ro",
            f"{workdir / 'htpasswd'}:{HTPASSWD_PATH}:ro",
            "registry-data:" + STORAGE_DIR,
        ],
        "ports": [f"127.0.0.1:{spec.registry.port}:5000"],
        "healthcheck": _health(registry.HEALTH_TEST, registry.CHECK_INTERVAL),
    }
    volumes: dict[str, object] = {"registry-data": {}}
    for tier in spec.tiers:
        net = f"{tier.name}-net"
        networks[net] = {"internal": tier.name in fed}
        health = HealthCheck(
            path=tier.health.path,
            interval=tier.health.interval,
            timeout=tier.health.timeout,
            retries=tier.health.retries,
        )
        args = TierArgs(port=tier.port, health=health, max_replicas=tier.replicas)
        lb_config = workdir / f"{tier.name}.cfg"
        tier_name = names.tier_name(name, tier.name)
        lb_config.write_text(haproxy_config(tier_name, args))
        for i in range(tier.replicas):
            replica: dict[str, object] = {
                "image": tier.image,
                "hostname": names.replica_name(tier_name, i),
                "environment": {"VIRTSTACK_TIER": tier_name, "VIRTSTACK_REPLICA": str(i)}
                | (
                    {
                        "VIRTSTACK_UPSTREAM": (
                            f"http://{names.tier_name(name, tier.upstream)}:{names.LB_PORT}"
                        )
                    }
                    if tier.upstream
                    else {}
                ),
                "networks": {net: {"aliases": [names.replica_alias(tier_name)]}},
                "healthcheck": _health(
                    health_test(health.path, tier.port, health.timeout), tier.health.interval
                ),
                "restart": "always",
            }
            if tier.volume:
                volumes[f"{tier.volume.name}-{i}"] = {}
                replica["volumes"] = [f"{tier.volume.name}-{i}:{tier.volume.path}"]
            services[f"{tier.name}-{i}"] = replica
        clients = {
            f"{c.name}-net": {"aliases": [tier_name]} for c in spec.tiers if c.upstream == tier.name
        }
        lb: dict[str, object] = {
            "image": spec.images.lb,
            "command": ["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"],
            "volumes": [f"{lb_config}:/etc/haproxy/haproxy.cfg:ro"],
            "networks": {net: {}} | clients,
            "healthcheck": _health(tiers.LB_HEALTH_TEST, tiers.LB_CHECK_INTERVAL),
            "restart": "always",
        }
        if tier.publish:
            lb["ports"] = [f"{tier.publish_address}:{tier.publish}:{names.LB_PORT}"]
        services[f"{tier.name}-lb"] = lb
    document = {"version": "2.4", "services": services, "networks": networks, "volumes": volumes}
    path = workdir / "docker-compose.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _health(test: list[str], interval: int) -> dict[str, object]:
    return {"test": test, "interval": f"{interval}s", "timeout": "2s", "retries": 3}


def all_healthy(label_filter: str, expected: int) -> None:
    """Wait until ``expected`` containers matching the filter report healthy (2 min cap)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ids = subprocess.run(
            ["docker", "ps", "-q", "--filter", label_filter],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if len(ids) >= expected:
            states = json.loads(
                subprocess.run(
                    ["docker", "inspect", *ids], capture_output=True, text=True, check=True
                ).stdout
            )
            if all(s["State"].get("Health", {}).get("Status") == "healthy" for s in states):
                return
        time.sleep(0.2)
    raise TimeoutError(f"{label_filter}: not all {expected} containers healthy in 2 minutes")
