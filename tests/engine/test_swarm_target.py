"""The swarm target for real: a three-node Swarm lab (tools/swarm-lab.sh) on this machine.

The lab gets its own prefix and subnet and is removed at the end, even on failure. One
environment (registry, web -> app) is deployed once; each test checks one promise from
outside: HTTP through the front load balancer, where Swarm put the tasks, a killed node,
a drained node, scaling and a rolling update under load, the registry's credentials, and
a stateful db tier whose replica keeps to the node that holds its volume.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from tenacity import retry, stop_after_delay, wait_fixed

from tests.engine.cli_support import Deployed, cli, make_project, ok
from tests.engine.harness import PREFIX, PROJECT, run
from tests.engine.test_container_target import Load, trusting
from tests.support import hit, wait_until_serving
from virtstack import pki, tlsfiles
from virtstack.engines.docker import CERTS_D
from virtstack.stackfiles import stack_file

pytestmark = pytest.mark.engine

LAB = PROJECT / "tools" / "swarm-lab.sh"
LAB_ENV = {"VIRTSTACK_SWARM_PREFIX": "vst", "VIRTSTACK_SWARM_SUBNET": "10.233.0"}
MANAGER_ADDR = "10.233.0.11"
REGISTRY_PORT = 5998
REGISTRY = f"{MANAGER_ADDR}:{REGISTRY_PORT}"
WEB_PORT = 18080
INTERVAL = 2  # the tiers' health check interval, seconds
IMAGES = ("virtstack/busybox:1", "virtstack/base:bookworm-1", "virtstack/demo:1")
UPDATED = "virtstack/demo:swarm-test"
NODES = ("vst1", "vst2", "vst3")
HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/srv/www"]  # the demo image's own command
TOKEN = f"tok-{secrets.token_hex(12)}"
"""The app tier's secret env value: in its replicas' environment, in no service spec."""


def lab(*args: str, timeout: float = 180) -> str:
    # No insecure-registry entry for the environment's registry: the nodes verify it.
    env = {**os.environ, **LAB_ENV}
    done = subprocess.run(
        [str(LAB), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"swarm-lab {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


def node_uri(node: str) -> str:
    return f"unix:///var/lib/virtstack-swarm/vst/{node}/docker.sock"


MANAGER = node_uri("vst1")


def manager(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("docker", "-H", MANAGER, *args, check=check)


def config(target: str, engine: str | None) -> dict[str, object]:
    """The declaration both targets deploy; only target and engine differ."""
    health = {"path": "/healthz", "interval": INTERVAL, "timeout": 1, "retries": 2}
    tiers = [
        {"name": "web", "image": "virtstack/demo:1", "replicas": 2, "port": 8080,
         "upstream": "app", "publish": WEB_PORT, "health": health,
         "scaling": {"min": 1, "max": 6}},
        {"name": "app", "image": "virtstack/demo:1", "replicas": 2, "port": 8080,
         "upstream": "db", "health": health, "command": HTTPD,
         "env": {"APP_TOKEN": {"secret": "app-token"}}},
        {"name": "db", "image": "virtstack/demo:1", "replicas": 1, "port": 8080,
         "stateful": True, "volume": {"name": "db-data", "path": "/data"}, "health": health},
    ]  # fmt: skip
    found: dict[str, object] = {
        "virtstack:target": target,
        "virtstack:registry": {"enabled": True, "port": REGISTRY_PORT, "auth": True},
        "virtstack:tiers": tiers,
    }
    if engine is not None:
        found["virtstack:engine"] = {"uri": engine}
    return found


@dataclass
class Env(Deployed):
    url: str


def deploy(project: Path, name: str, target: str, engine: str | None) -> None:
    stack_file(project, name).write_text(
        yaml.safe_dump({"config": config(target, engine)}, sort_keys=False)
    )
    done = cli(project, "secret", "set", name, "app-token", input=TOKEN)
    assert done.exit_code == 0, done.output
    ok(project, "up", name, "--yes")


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if os.geteuid() != 0:
        pytest.skip("the Swarm lab needs root (network namespaces)")
    project = make_project(tmp_path_factory.mktemp("swarm"))
    name = f"{PREFIX}sw-{secrets.token_hex(3)}"
    try:
        lab("up", "3")
        lab("load", *IMAGES)
        deploy(project, name, "swarm", MANAGER)
        yield Env(project=project, name=name, url=f"http://{MANAGER_ADDR}:{WEB_PORT}/")
    finally:
        cli(project, "destroy", name, "--yes", "--delete-data")
        shutil.rmtree(CERTS_D / REGISTRY, ignore_errors=True)  # destroy's job, checked below
        lab("down")
        run("docker", "image", "rm", UPDATED, check=False)


def served_by(seen: dict[str, int]) -> set[str]:
    """The nodes that answered: every page's first line ends in ``<node>-<tier>-<slot>``."""
    return {line.split()[-1].split("-")[0] for line in seen}


@retry(stop=stop_after_delay(60), wait=wait_fixed(1), reraise=True)
def tier_running(service: str, count: int, avoid: str | None = None) -> set[str]:
    """Until ``count`` tasks of ``service`` run (none on node ``avoid``); their nodes."""
    lines = manager(
        "service", "ps", service, "--filter", "desired-state=running",
        "--format", "{{.Node}} {{.CurrentState}}",
    ).stdout.splitlines()  # fmt: skip
    running = [line.split()[0] for line in lines if " Running " in f" {line} "]
    assert len(running) == count, lines
    assert avoid not in running, lines
    return set(running)


def pinned_to(data: str) -> list[str]:
    """The nodes whose labels pin volume ``data``."""
    nodes = json.loads(manager("node", "inspect", *NODES).stdout)
    pin = f"virtstack.data.{data}"
    return [n["Description"]["Hostname"] for n in nodes if pin in (n["Spec"].get("Labels") or {})]


def volume_on(data: str) -> list[str]:
    """The nodes whose engine holds volume ``data``."""
    listed = {n: run("docker", "-H", node_uri(n), "volume", "ls", "-q").stdout for n in NODES}
    return [node for node in NODES if data in listed[node].split()]


@retry(stop=stop_after_delay(60), wait=wait_fixed(1), reraise=True)
def reads(url: str, value: str) -> None:
    """Until ``url`` answers ``value`` (a replica coming back, its load balancer noticing)."""
    got = httpx.get(url, timeout=10)
    assert (got.status_code, got.text.strip()) == (200, value)


@retry(stop=stop_after_delay(60), wait=wait_fixed(1), reraise=True)
def waits_for_a_node(service: str) -> None:
    """Until the one task of ``service`` Swarm wants running is pending, on no node."""
    lines = manager(
        "service", "ps", service, "--filter", "desired-state=running",
        "--format", "{{.Node}}|{{.CurrentState}}|{{.Error}}",
    ).stdout.splitlines()  # fmt: skip
    assert len(lines) == 1, lines
    assert lines[0].startswith("|Pending "), lines


@retry(stop=stop_after_delay(30), wait=wait_fixed(1), reraise=True)
def replicas_of(swarm: Env, tier: str, count: int) -> list[dict[str, object]]:
    """``status --json`` replicas of ``tier`` once there are ``count``, all seen UP."""
    found = json.loads(swarm.run("status", swarm.name, "--json"))["replicas"]
    mine = [r for r in found if r["tier"] == tier]
    assert len(mine) == count, found
    assert all(r["load_balancer"] == "UP" for r in mine), found
    return mine


def test_up_serves_through_replicas_on_two_nodes(swarm: Env) -> None:
    seen, failed = hit(swarm.url, 200)
    assert failed == 0
    assert sum(seen.values()) == 200
    assert len(served_by(seen)) >= 2, seen
    # status: where each replica runs, as its load balancer sees it, restarts, since when.
    web = replicas_of(swarm, "web", 2)
    assert len({r["node"] for r in web} & set(NODES)) == 2, web
    for r in web:
        assert str(r["replica"]).startswith(f"{swarm.name}-web-replica."), web
        assert (r["state"], r["restarts"]) == ("running", 0), web
        assert str(r["started"]).startswith(time.strftime("%Y-%m-%dT", time.gmtime())), web


def test_right_after_up_nothing_drifts(swarm: Env) -> None:
    counts = json.loads(swarm.run("preview", swarm.name, "--json"))["counts"]
    assert {k: v for k, v in counts.items() if k != "same" and v} == {}


def test_a_stateful_replica_keeps_to_the_node_that_holds_its_volume(swarm: Env) -> None:
    """The db replica is replaced (a forced update), its container killed, its node
    drained while `up` runs: it only ever runs on the node its label pins it to, on its
    one volume there, and serves the data written through the front load balancer."""
    data = f"{swarm.name}_db-data_0"
    service = f"{swarm.name}-db-replica-0"
    kv = f"{swarm.url}cgi-bin/kv?kept"
    (node,) = pinned_to(data)
    assert node != "vst1"  # a worker: the manager runs the load balancers and registry
    stored = httpx.post(kv, content=b"on its node", timeout=10)
    assert stored.status_code == 200, stored.text
    assert tier_running(service, 1) == {node}
    manager("service", "update", "--force", service)  # a new task, stop-first
    assert tier_running(service, 1) == {node}
    reads(kv, "on its node")
    on_node = ("docker", "-H", node_uri(node))
    task = f"label=com.docker.swarm.service.name={service}"
    (container,) = run(*on_node, "ps", "-q", "--filter", task).stdout.split()
    run(*on_node, "kill", container)
    reads(kv, "on its node")
    assert tier_running(service, 1) == {node}
    manager("node", "update", "--availability", "drain", node)
    try:
        # Nowhere else to go: it waits for its node, and `up` keeps the pin where it is.
        waits_for_a_node(service)
        swarm.run("up", swarm.name, "--yes")
        assert pinned_to(data) == [node]
        waits_for_a_node(service)
    finally:
        manager("node", "update", "--availability", "active", node)
    assert tier_running(service, 1) == {node}
    reads(kv, "on its node")
    assert volume_on(data) == [node]
    (db,) = replicas_of(swarm, "db", 1)
    assert (db["replica"], db["node"], db["state"]) == (f"{service}.1", node, "running"), db
    assert db["restarts"] == 1, db  # the kill; an update or a drain is no restart


def test_nodes_pull_only_with_the_registry_credentials(swarm: Env) -> None:
    image = f"{REGISTRY}/virtstack/demo:1"
    pulled = run("docker", "-H", node_uri("vst3"), "pull", image, check=False)
    assert pulled.returncode != 0
    assert "no basic auth credentials" in pulled.stderr or "unauthorized" in pulled.stderr
    # Every replica runs the registry's image, pulled by its node with the service's auth.
    images = manager(
        "service", "inspect", f"{swarm.name}-web-replica",
        "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
    ).stdout  # fmt: skip
    assert images.startswith(f"{MANAGER_ADDR}:{REGISTRY_PORT}/virtstack/demo@sha256:")
    # The password is a Swarm secret file, in no service's environment.
    secrets_ = manager("secret", "ls", "--format", "{{.Name}}").stdout.split()
    assert f"{swarm.name}-registry-htpasswd" in secrets_
    spec = manager("service", "inspect", f"{swarm.name}-registry").stdout
    assert "Env" not in json.loads(spec)[0]["Spec"]["TaskTemplate"]["ContainerSpec"]


def test_the_registry_speaks_https_only_with_the_environments_ca(swarm: Env) -> None:
    ca_file = tlsfiles.ca_file(swarm.project, swarm.name)
    served = ssl.get_server_certificate((MANAGER_ADDR, REGISTRY_PORT)).encode()
    cert = x509.load_pem_x509_certificate(served)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_file.read_bytes()))
    assert MANAGER_ADDR in pki.san_names(cert)
    url = f"https://{REGISTRY}/v2/"
    assert httpx.get(url, verify=trusting(swarm.project, swarm.name)).status_code == 401
    plain = httpx.get(url.replace("https:", "http:"), timeout=10)
    assert plain.status_code == 400
    assert "Docker-Distribution-Api-Version" not in plain.headers
    # Every node's engine verifies it by the environment's CA (none takes it as insecure):
    # the replicas' images came from it, so their pulls went over verified HTTPS.
    assert (CERTS_D / REGISTRY / "ca.crt").read_text() == ca_file.read_text()
    for node in NODES:
        info = run("docker", "-H", node_uri(node), "info", "--format",
                   "{{json .RegistryConfig.IndexConfigs}}").stdout  # fmt: skip
        assert json.loads(info).get(REGISTRY, {"Secure": True})["Secure"], node
    logs = manager("service", "logs", "--raw", f"{swarm.name}-registry")
    pulls = [
        line for line in (logs.stdout + logs.stderr).splitlines()
        if "http.request.method=GET " in line and "/v2/virtstack/demo/manifests/sha256:" in line
        and "http.response.status=200 " in line and 'useragent="docker/' in line
    ]  # fmt: skip
    assert pulls, logs.stderr[-2000:]


def test_secret_env_values_reach_the_replicas_as_a_swarm_secret(swarm: Env) -> None:
    service = f"{swarm.name}-app-replica"
    spec = manager("service", "inspect", service).stdout
    assert TOKEN not in spec
    mounted = json.loads(spec)[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]
    assert [m["File"]["Name"] for m in mounted] == ["/run/virtstack/secrets.env"]
    assert TOKEN not in manager("secret", "inspect", mounted[0]["SecretName"]).stdout
    # In the environment of each replica's server process, wherever it runs.
    lines = manager(
        "service", "ps", service, "--filter", "desired-state=running", "--format", "{{.Node}}"
    ).stdout.split()
    assert len(lines) == 2, lines
    for node in lines:
        on_node = ("docker", "-H", node_uri(node))
        task = f"label=com.docker.swarm.service.name={service}"
        for container in run(*on_node, "ps", "-q", "--filter", task).stdout.split():
            environ = run(*on_node, "exec", container, "cat", "/proc/1/environ").stdout
            assert f"APP_TOKEN={TOKEN}" in environ.split("\0")


def test_scaling_under_load_fails_no_request(swarm: Env) -> None:
    service = f"{swarm.name}-web-replica"
    with Load(swarm.url) as load:
        for replicas in (6, 2):
            swarm.set("tiers[0].replicas", replicas)
            swarm.run("up", swarm.name, "--yes")
            tier_running(service, replicas)
        time.sleep(2 * INTERVAL)
    assert load.ok > 50
    assert load.failures == []


def test_rolling_image_update_fails_no_request(swarm: Env) -> None:
    build = subprocess.run(
        ["docker", "build", "-q", "-t", UPDATED, "-"],
        input="FROM virtstack/demo:1\nLABEL org.virtstack.test=update\n",
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert build.stdout.strip()
    lab("load", UPDATED)
    with Load(swarm.url) as load:
        swarm.set("tiers[0].image", UPDATED)
        swarm.run("up", swarm.name, "--yes")
        time.sleep(2 * INTERVAL)
    assert load.ok > 50
    assert load.failures == []
    image = manager(
        "service", "inspect", f"{swarm.name}-web-replica",
        "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
    ).stdout  # fmt: skip
    assert "/virtstack/demo@sha256:" in image


def test_draining_a_node_moves_its_replicas_without_failures(swarm: Env) -> None:
    service = f"{swarm.name}-web-replica"
    on = tier_running(service, 2)
    node = sorted(on - {"vst1"})[0]
    with Load(swarm.url) as load:
        manager("node", "update", "--availability", "drain", node)
        try:
            tier_running(service, 2, avoid=node)
            time.sleep(2 * INTERVAL)
        finally:
            manager("node", "update", "--availability", "active", node)
    assert load.ok > 50
    assert load.failures == []


def test_a_killed_worker_is_survived(swarm: Env) -> None:
    """Goal: 0 failed requests once the load balancer's detection window (two check
    intervals) has passed; the tier back to full strength on the other nodes within 60 s."""
    service = f"{swarm.name}-web-replica"
    manager("service", "update", "--detach", "--force", service)  # spread over all nodes
    on = tier_running(service, 2)
    worker = sorted(on - {"vst1"})[0]
    with Load(swarm.url) as load:
        time.sleep(1)
        killed_at = time.monotonic()
        lab("kill", worker)
        tier_running(service, 2, avoid=worker)
        recovered = time.monotonic() - killed_at
        time.sleep(2 * INTERVAL)
    before = len(load.failures) - load.failures_after(killed_at + 2 * INTERVAL)
    print(f"node {worker} killed: full count after {recovered:.1f} s, {before} failed early")
    lab("start", worker, timeout=300)
    assert recovered < 60
    # Requests kept going through the kill (how many depends on the machine's load).
    assert load.ok > 10
    assert load.failures_after(killed_at + 2 * INTERVAL) == 0, f"{len(load.failures)} failed"


def test_the_same_declaration_serves_the_same_pages_on_one_engine(
    swarm: Env, tmp_path: Path
) -> None:
    project = make_project(tmp_path)
    name = f"{PREFIX}one-{secrets.token_hex(3)}"
    try:
        deploy(project, name, "container", None)
        tier_running(f"{swarm.name}-db-replica-0", 1)  # back after the killed worker
        # `up` waits for healthy load balancers; their backends' first checks may follow.
        wait_until_serving(f"http://127.0.0.1:{WEB_PORT}/")
        single, _ = hit(f"http://127.0.0.1:{WEB_PORT}/", 4)
        multi, _ = hit(swarm.url, 4)
        # Page bodies name tier then replica; the tiers answer alike, in the same order.
        assert sum(single.values()) == sum(multi.values()) == 4
        same_pages(f"http://127.0.0.1:{WEB_PORT}/", name, swarm.url, swarm.name)
    finally:
        cli(project, "destroy", name, "--yes", "--delete-data")


@retry(stop=stop_after_delay(30), wait=wait_fixed(1), reraise=True)
def same_pages(single: str, single_env: str, multi: str, multi_env: str) -> None:
    """Page bodies name tier then replica; the tiers answer alike, in the same order."""

    def tiers(url: str, env: str) -> list[str]:
        lines = httpx.get(url, timeout=10).text.splitlines()
        return [line.split()[0].removeprefix(env) for line in lines if line]

    assert tiers(single, single_env) == tiers(multi, multi_env) == ["-web", "-app", "-db"]


def test_destroy_with_its_data_unpins_it_and_names_the_volume_left_on_its_node(
    swarm: Env,
) -> None:
    """Last: it destroys the module's environment."""
    data = f"{swarm.name}_db-data_0"
    (node,) = pinned_to(data)
    done = cli(swarm.project, "destroy", swarm.name, "--yes", "--delete-data")
    assert done.exit_code != 0
    assert f"deleted {swarm.name}_registry-data" in done.output, done.output
    assert f"{data} on {node}" in done.output, done.output
    assert pinned_to(data) == []
    assert f"{swarm.name}_registry-data" not in manager("volume", "ls", "-q").stdout.split()
    assert not (CERTS_D / REGISTRY).exists()  # the nodes' trust went with the registry
    label = f"label=virtstack.namespace={swarm.name}"
    assert manager("service", "ls", "-q", "--filter", label).stdout.split() == []
    # The node's Docker removes the gone service's stopped containers on its own time.
    retry(stop=stop_after_delay(60), wait=wait_fixed(0.5), reraise=True)(run)(
        "docker", "-H", node_uri(node), "volume", "rm", data
    )
