"""Empty to healthy: the dev topology by `virtstack up` and by docker-compose, in one run.

Both deploy the same topology (a registry, web -> app -> db tiers each behind HAProxy,
tier networks, the db volume) from the same images on the same engine; compose gets the
very HAProxy and registry configs virtstack renders. Runs alternate so machine load hits
both alike. Also timed: a no-op `virtstack up` on the deployed environment.

    .venv/bin/python -m bench.up_vs_compose [--runs N]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from virtstack_components import registry, service
from virtstack_components.registry import CONFIG_PATH, HTPASSWD_PATH, STORAGE_DIR, htpasswd_line
from virtstack_components.service import (
    LB_PORT,
    HealthCheck,
    TierArgs,
    haproxy_config,
    health_command,
)
from virtstack_components.templating import render

from tests.engine.cli_support import make_project, ok
from tests.support import free_port
from virtstack.spec import parse_spec
from virtstack.stackfiles import read_config, stack_file

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
    (workdir / "registry.yml").write_text(
        render(
            "registry/config.yml.j2",
            port=5000,
            debug_port=5001,
            storage_dir=STORAGE_DIR,
            auth=True,
            htpasswd_path=HTPASSWD_PATH,
        )
    )
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
        lb_config.write_text(haproxy_config(f"{name}-{tier.name}", args))
        for i in range(tier.replicas):
            replica: dict[str, object] = {
                "image": tier.image,
                "hostname": f"{name}-{tier.name}-{i}",
                "environment": {"VIRTSTACK_TIER": f"{name}-{tier.name}"}
                | (
                    {"VIRTSTACK_UPSTREAM": f"http://{name}-{tier.upstream}:{LB_PORT}"}
                    if tier.upstream
                    else {}
                ),
                "networks": {net: {"aliases": [f"{name}-{tier.name}-replica"]}},
                "healthcheck": _health(health_command(health, tier.port), tier.health.interval),
                "restart": "always",
            }
            if tier.volume:
                volumes[f"{tier.volume.name}-{i}"] = {}
                replica["volumes"] = [f"{tier.volume.name}-{i}:{tier.volume.path}"]
            services[f"{tier.name}-{i}"] = replica
        clients = {
            f"{c.name}-net": {"aliases": [f"{name}-{tier.name}"]}
            for c in spec.tiers
            if c.upstream == tier.name
        }
        lb: dict[str, object] = {
            "image": spec.images.lb,
            "command": ["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"],
            "volumes": [f"{lb_config}:/etc/haproxy/haproxy.cfg:ro"],
            "networks": {net: {}} | clients,
            "healthcheck": _health(service.LB_HEALTH_TEST, service.LB_CHECK_INTERVAL),
            "restart": "always",
        }
        if tier.publish:
            lb["ports"] = [f"{tier.publish_address}:{tier.publish}:{LB_PORT}"]
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


def timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vsbench-") as tmp:
        work = Path(tmp)
        project = make_project(work)
        name = f"vsbench-{secrets.token_hex(2)}"
        config = dev_config(free_port(), free_port())
        stack_file(project, name).write_text(yaml.safe_dump({"config": config}, sort_keys=False))
        compose = compose_file(name, dev_config(free_port(), free_port()), work)
        spec = parse_spec(config)
        containers = 1 + sum(t.replicas + 1 for t in spec.tiers)
        compose_cmd = ["docker-compose", "-p", f"{name}-compose", "-f", str(compose)]

        def virtstack_up() -> None:
            ok(project, "up", name, "--yes")
            all_healthy(f"label=virtstack.namespace={name}", containers)

        def noop_up() -> None:
            ok(project, "up", name, "--yes")

        def compose_up() -> None:
            subprocess.run([*compose_cmd, "up", "-d"], check=True, capture_output=True)
            all_healthy(f"label=com.docker.compose.project={name}-compose", containers)

        results: dict[str, list[float]] = {
            "virtstack up": [],
            "virtstack up (no-op)": [],
            "docker-compose up": [],
        }
        try:
            for _ in range(args.runs):
                results["virtstack up"].append(timed(virtstack_up))
                results["virtstack up (no-op)"].append(timed(noop_up))
                ok(project, "destroy", name, "--yes", "--delete-data")
                results["docker-compose up"].append(timed(compose_up))
                subprocess.run([*compose_cmd, "down", "-v"], check=True, capture_output=True)
        finally:
            subprocess.run([*compose_cmd, "down", "-v"], check=False, capture_output=True)
            ok(project, "destroy", name, "--yes", "--delete-data")
    for label, samples in results.items():
        sd = statistics.stdev(samples) if len(samples) > 1 else 0.0
        print(f"{label:22} {statistics.mean(samples):6.1f} s ± {sd:4.1f} s  ({len(samples)} runs)")
    ratio = statistics.mean(results["virtstack up"]) / statistics.mean(results["docker-compose up"])
    print(f"empty -> healthy, virtstack / docker-compose: {ratio:.2f}")


if __name__ == "__main__":
    main()
