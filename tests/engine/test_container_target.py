"""The dev environment for real: registry, web -> app -> db, on this machine's Docker engine.

One environment with the shipped dev topology (its own name, free loopback ports) is
deployed once for the module; each test checks one promise from outside: HTTP through
the published load balancer, killed replicas, scaling under load, data surviving a
replaced db container, the registry's auth. Everything is removed at the end.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from tenacity import retry, stop_after_delay, wait_fixed

from tests.engine.cli_support import Deployed, cli, make_project
from tests.engine.harness import PREFIX, PROJECT, docker_inspect, remove_leftovers, run
from tests.support import free_port, hit
from virtstack import pki, tlsfiles
from virtstack.engines import docker as docker_engine
from virtstack.environment import StackRef
from virtstack.runner import PulumiRunner
from virtstack.stackfiles import read_config, stack_file

pytestmark = pytest.mark.engine

INTERVAL = 2  # the dev tiers' health check interval, seconds


@dataclass
class Env(Deployed):
    url: str
    registry: str


def dev_config(web_port: int, registry_port: int) -> dict[str, object]:
    """The shipped dev environment, on ports of its own."""
    config = read_config(PROJECT, "dev")
    config.pop("virtstack:registry_password", None)  # this machine's, not the test's
    config["virtstack:registry"]["port"] = registry_port
    config["virtstack:tiers"][0]["publish"] = web_port
    return config


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    project = make_project(tmp_path_factory.mktemp("dev"))
    name = f"{PREFIX}dev-{secrets.token_hex(3)}"
    web_port, registry_port = free_port(), free_port()
    stack_file(project, name).write_text(
        yaml.safe_dump({"config": dev_config(web_port, registry_port)}, sort_keys=False)
    )
    env = Env(
        project=project,
        name=name,
        url=f"http://127.0.0.1:{web_port}/",
        registry=f"127.0.0.1:{registry_port}",
    )
    try:
        env.run("up", name, "--yes")
        wait_for_replicas(env.url, {f"{name}-web-0", f"{name}-web-1"})
        yield env
    finally:
        cli(project, "destroy", name, "--yes", "--delete-data")
        # The provider leaves the local tags it made for pushing (as `docker tag` would):
        # the shipped image's (two path components) and the db variant's (one).
        tags = run(
            "docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
            "--filter", f"reference={env.registry}/*/*", "--filter", f"reference={env.registry}/*",
        ).stdout  # fmt: skip
        for tag in tags.split():
            run("docker", "image", "rm", tag, check=False)  # the tag only, never the image
        leftovers = remove_leftovers(name)
        assert leftovers == [], f"destroy left {leftovers}"


@retry(stop=stop_after_delay(60), wait=wait_fixed(1), reraise=True)
def wait_for_replicas(url: str, replicas: set[str]) -> None:
    """Until requests through the load balancer reach exactly ``replicas`` (first line)."""
    seen, failed = hit(url, 4 * len(replicas))
    assert failed == 0
    assert {line.split()[-1] for line in seen} == replicas


class Load:
    """Requests through the load balancer in a background thread; each failure is timed
    when its request was sent (one in flight to a replica that dies fails only when the
    load balancer gives up on it, seconds later)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ok = 0
        self.failures: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with httpx.Client(timeout=10) as client:
            # Bounded: at most 10 minutes of requests, whatever happens to the test.
            deadline = time.monotonic() + 600
            while not self._stop.is_set() and time.monotonic() < deadline:
                sent = time.monotonic()
                try:
                    client.get(self.url).raise_for_status()
                    self.ok += 1
                except httpx.HTTPError:
                    self.failures.append(sent)
                time.sleep(0.02)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def failures_after(self, moment: float) -> int:
        return len([t for t in self.failures if t > moment])


def kill_main_process(container: str) -> int:
    """SIGKILL the container's main process from the host, as a crash would."""
    state = docker_inspect(container)
    assert state is not None, container
    pid = int(state["State"]["Pid"])  # type: ignore[index]
    os.kill(pid, signal.SIGKILL)
    return pid


def restart_count(container: str) -> int:
    state = docker_inspect(container)
    assert state is not None, container
    return int(state["RestartCount"])  # type: ignore[arg-type]


@retry(stop=stop_after_delay(60), wait=wait_fixed(1), reraise=True)
def healthy_again(container: str, restarts_before: int) -> None:
    state = docker_inspect(container)
    assert state is not None
    assert int(state["RestartCount"]) > restarts_before  # type: ignore[arg-type]
    assert state["State"]["Health"]["Status"] == "healthy"  # type: ignore[index]


def test_requests_through_the_load_balancer_reach_every_web_replica(dev: Env) -> None:
    seen, failed = hit(dev.url, 200)
    assert failed == 0
    assert sum(seen.values()) == 200
    assert {line.split()[-1] for line in seen} == {f"{dev.name}-web-0", f"{dev.name}-web-1"}
    # Each answer went web -> app -> db.
    body = httpx.get(dev.url, timeout=10).text.splitlines()
    assert [line.split()[0] for line in body] == [
        f"{dev.name}-web",
        f"{dev.name}-app",
        f"{dev.name}-db",
    ]


def test_logs_merge_every_web_replica_prefixed(dev: Env) -> None:
    web = [f"{dev.name}-web-0", f"{dev.name}-web-1"]
    for replica in web:  # httpd logs nothing by itself: write to its stdout, as it would
        mark = f"virtstack-logs-test from {replica}"
        run("docker", "exec", replica, "sh", "-c", f"echo '{mark}' > /proc/1/fd/1")
    lines = dev.run("logs", dev.name, "web").splitlines()
    width = max(map(len, web))
    for replica in web:
        assert f"{replica:<{width}} | virtstack-logs-test from {replica}" in lines, lines
    only = dev.run("logs", dev.name, web[1], "--timestamps").splitlines()
    assert only
    assert all(line.startswith(f"{web[1]} | 20") for line in only), only


def test_status_shows_every_replica_where_it_runs_and_as_its_lb_sees_it(dev: Env) -> None:
    found = json.loads(dev.run("status", dev.name, "--json"))
    replicas = {r["replica"]: r for r in found["replicas"]}
    assert set(replicas) >= {f"{dev.name}-{t}-{i}" for t in ("web", "app") for i in (0, 1)}
    web = replicas[f"{dev.name}-web-0"]
    assert web["tier"] == "web"
    assert web["node"] == "unix:///var/run/docker.sock"
    assert web["state"] == "running (healthy)"
    assert web["load_balancer"].startswith("UP")
    assert web["restarts"] == 0
    assert web["started"].startswith("20")  # an RFC 3339 time
    table = dev.run("status", dev.name)
    assert "replicas" in table
    assert f"{dev.name}-db-0" in table


def test_right_after_up_nothing_drifts(dev: Env) -> None:
    counts = json.loads(dev.run("preview", dev.name, "--json"))["counts"]
    assert {k: v for k, v in counts.items() if k != "same" and v} == {}
    again = dev.run("up", dev.name, "--yes")
    assert "no changes" in again


def test_killed_replicas_leave_rotation_and_come_back(dev: Env) -> None:
    web, app = f"{dev.name}-web-1", f"{dev.name}-app-0"
    before = {c: restart_count(c) for c in (web, app)}
    with Load(dev.url) as load:
        time.sleep(1)
        killed_at = time.monotonic()
        kill_main_process(web)
        kill_main_process(app)
        time.sleep(2 * INTERVAL + 4)
        settled = killed_at + 2 * INTERVAL
    assert load.ok > 50
    assert load.failures_after(settled) == 0, f"{len(load.failures)} failures in all"
    for container, count in before.items():
        healthy_again(container, count)
    wait_for_replicas(dev.url, {f"{dev.name}-web-0", f"{dev.name}-web-1"})


def test_scaling_under_load_fails_no_request_and_keeps_the_lb(dev: Env) -> None:
    lb_before = docker_inspect(f"{dev.name}-web-lb")
    assert lb_before is not None
    with Load(dev.url) as load:
        dev.run("scale", dev.name, "web", "4")
        wait_for_replicas(dev.url, {f"{dev.name}-web-{i}" for i in range(4)})
        dev.run("scale", dev.name, "web", "2")
        wait_for_replicas(dev.url, {f"{dev.name}-web-0", f"{dev.name}-web-1"})
    assert load.ok > 50
    assert load.failures == []
    lb_after = docker_inspect(f"{dev.name}-web-lb")
    assert lb_after is not None
    # Same load balancer container, same config: replicas were found through DNS.
    assert lb_after["Id"] == lb_before["Id"]
    assert docker_inspect(f"{dev.name}-web-2") is None


def test_data_survives_a_replaced_db_container(dev: Env) -> None:
    kv = f"{dev.url}cgi-bin/kv?answer"
    stored = httpx.post(kv, content=b"forty-two", timeout=10)
    assert stored.status_code == 200, stored.text
    assert httpx.get(kv, timeout=10).text.strip() == "forty-two"
    db_before = docker_inspect(f"{dev.name}-db-0")
    assert db_before is not None
    # A new db image: same program, a label naming this run, so a new image id and digest.
    variant = f"{dev.name}-demo:2"
    run(
        "docker", "build", "-q", "--label", f"virtstack.test={dev.name}", "-t", variant,
        "--build-arg", "BASE=virtstack/busybox:1", str(PROJECT / "images" / "demo"),
        timeout=300,
    )  # fmt: skip
    try:
        dev.set("tiers[2].image", variant)
        out = dev.run("up", dev.name, "--yes")
        assert "replaced" in out
        db_after = docker_inspect(f"{dev.name}-db-0")
        assert db_after is not None
        assert db_after["Id"] != db_before["Id"]
        # Run by the id of the image just built: pinned to its content, not to its tag.
        built = run("docker", "image", "inspect", "--format", "{{.Id}}", variant).stdout.strip()
        assert db_after["Image"] == built
        assert httpx.get(kv, timeout=10).text.strip() == "forty-two"
    finally:
        dev.set("tiers[2].image", "virtstack/demo:1")
        dev.run("up", dev.name, "--yes")
        run("docker", "image", "rm", variant, check=False)


def trusting(project: Path, env: str) -> ssl.SSLContext:
    """A client context that trusts ``env``'s CA and nothing else."""
    return ssl.create_default_context(cafile=tlsfiles.ca_file(project, env))


def test_registry_refuses_anonymous_pushes_and_keeps_its_password_secret(dev: Env) -> None:
    upload = f"https://{dev.registry}/v2/{dev.name}/probe/blobs/uploads/"
    client = httpx.Client(verify=trusting(dev.project, dev.name), timeout=10)
    assert client.post(upload).status_code == 401
    outputs = PulumiRunner().outputs(StackRef(project=dev.project, env=dev.name), reveal=True)
    password = outputs["registry_password"]
    assert password.secret
    user = outputs["registry_username"].value
    accepted = client.post(upload, auth=(user, password.value))
    assert accepted.status_code == 202
    assert client.post(upload, auth=(user, "wrong")).status_code == 401
    # Plain HTTP is refused before any credentials are looked at.
    plain = httpx.post(upload.replace("https:", "http:"), auth=(user, password.value), timeout=10)
    assert plain.status_code == 400
    assert "Docker-Distribution-Api-Version" not in plain.headers
    # Never in plain text: not in the state, not in the stack file, not in what we printed.
    state = dev.project / ".virtstack" / "state"
    files = [p for p in state.rglob("*") if p.is_file()]
    assert files, "no state files found"
    for path in [*files, stack_file(dev.project, dev.name)]:
        assert password.value not in path.read_text(errors="replace"), path
    for output in dev.outputs:
        assert password.value not in output


def test_registry_serves_a_certificate_from_the_environments_own_ca(dev: Env) -> None:
    host, port = dev.registry.split(":")
    served = x509.load_pem_x509_certificate(ssl.get_server_certificate((host, int(port))).encode())
    ca_file = tlsfiles.ca_file(dev.project, dev.name)
    outputs = PulumiRunner().outputs(StackRef(project=dev.project, env=dev.name))
    assert outputs["registry_ca"].value == str(ca_file)
    served.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_file.read_bytes()))
    assert pki.san_names(served) == {"127.0.0.1", "localhost"}
    folder = ca_file.parent
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == {
        "ca.crt": 0o644, "ca.key": 0o600, "registry.crt": 0o644, "registry.key": 0o600,
    }  # fmt: skip
    assert folder.stat().st_mode & 0o777 == 0o700
    # No private key in the stack file or the state in plain text.
    private = [(folder / k).read_text().splitlines()[1] for k in ("ca.key", "registry.key")]
    state = dev.project / ".virtstack" / "state"
    for path in [*[p for p in state.rglob("*") if p.is_file()], stack_file(dev.project, dev.name)]:
        text = path.read_text(errors="replace")
        assert not any(line in text for line in private), path
    # The engine pushed the tiers' image and the provider read its digest back, both over
    # HTTPS (the registry serves nothing else; the provider trusts the env's CA alone).
    log = run("docker", "logs", f"{dev.name}-registry").stderr.splitlines()
    assert requests(log, "PUT", "/v2/virtstack/demo/manifests/1", "201")
    assert requests(log, "HEAD", "/v2/virtstack/demo/manifests/1", "200")


def requests(log: list[str], methods: str, uri: str, status: str) -> list[str]:
    """The registry's log lines of completed requests for ``uri`` by one of ``methods``
    (space-separated) answered ``status``."""
    return [
        line for line in log
        if any(f"http.request.method={m} " in line for m in methods.split())
        and f"http.request.uri={uri} " in line and f"http.response.status={status} " in line
    ]  # fmt: skip


def docker_login(folder: Path, env: Env, name: str, registry: str) -> Path:
    """A docker client config holding ``name``'s registry login (the user's is left alone)."""
    outputs = PulumiRunner().outputs(StackRef(project=env.project, env=name), reveal=True)
    login = f"{outputs['registry_username'].value}:{outputs['registry_password'].value}"
    auth = {"auths": {registry: {"auth": base64.b64encode(login.encode()).decode()}}}
    (folder / "config.json").write_text(json.dumps(auth))
    return folder


def test_the_engine_pulls_from_the_registry_over_https(dev: Env, tmp_path: Path) -> None:
    config = docker_login(tmp_path, dev, dev.name, dev.registry)
    before = len(run("docker", "logs", f"{dev.name}-registry").stderr.splitlines())
    # By tag: an engine asks the registry what a tag means (a digest it holds, it does not).
    run("docker", "--config", str(config), "pull", f"{dev.registry}/virtstack/demo:1")
    log = run("docker", "logs", f"{dev.name}-registry").stderr.splitlines()[before:]
    pulled = requests(log, "GET HEAD", "/v2/virtstack/demo/manifests/1", "200")
    assert pulled, log
    assert all('useragent="docker/' in line for line in pulled)


@pytest.fixture
def bridge_address() -> Iterator[str]:
    """An address of this host beyond loopback: the gateway of a Docker network of the
    test's own (so the registry is reached on no network the test did not make)."""
    name = f"{PREFIX}gw-{secrets.token_hex(3)}"
    for _ in range(5):
        subnet = f"10.213.{20 + secrets.randbelow(200)}"
        made = run("docker", "network", "create", "--subnet", f"{subnet}.0/24", name, check=False)
        if made.returncode == 0:
            break
    else:
        pytest.fail(f"no free 10.213.x.0/24 for a test network: {made.stderr}")
    try:
        yield f"{subnet}.1"
    finally:
        run("docker", "network", "rm", name, check=False)


def test_a_second_environment_beyond_loopback_has_a_ca_of_its_own(
    dev: Env, bridge_address: str, tmp_path: Path
) -> None:
    """A second environment beside dev, its registry on an address Docker verifies (not
    loopback): the engine trusts that environment's CA, and neither CA vouches for the
    other's registry."""
    name = f"{PREFIX}reg-{secrets.token_hex(3)}"
    port = free_port()
    config = read_config(PROJECT, "dev")
    config.pop("virtstack:registry_password", None)
    config["virtstack:registry"] |= {"port": port, "address": bridge_address}
    web = {k: v for k, v in config["virtstack:tiers"][0].items()
           if k not in ("upstream", "publish", "scaling")}  # fmt: skip
    config["virtstack:tiers"] = [web | {"replicas": 1}]
    stack_file(dev.project, name).write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    registry = f"{bridge_address}:{port}"
    certs = docker_engine.CERTS_D / registry
    try:
        dev.run("up", name, "--yes")  # the engine pushed there, verifying the certificate
        ca = tlsfiles.ca_file(dev.project, name)
        assert ca.read_text() != tlsfiles.ca_file(dev.project, dev.name).read_text()
        assert (certs / "ca.crt").read_text() == ca.read_text()
        own = httpx.get(f"https://{registry}/v2/", verify=trusting(dev.project, name))
        assert own.status_code == 401
        for address, ca_of in ((registry, dev.name), (dev.registry, name)):
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                httpx.get(f"https://{address}/v2/", verify=trusting(dev.project, ca_of))
        login = docker_login(tmp_path, dev, name, registry)
        pull = ("docker", "--config", str(login), "pull", f"{registry}/virtstack/demo:1")
        run(*pull)
        # Without the CA the engine refuses that registry: its trust is what let it in.
        aside = certs.with_name(f"{certs.name}.aside")
        certs.rename(aside)
        refused = run(*pull, check=False)
        aside.rename(certs)
        assert refused.returncode != 0
        assert "certificate signed by unknown authority" in refused.stderr, refused.stderr
        # Destroy takes the engine's trust with it: nothing of the environment stays.
        dev.run("destroy", name, "--yes", "--delete-data")
        assert not certs.exists()
    finally:
        cli(dev.project, "destroy", name, "--yes", "--delete-data")
        shutil.rmtree(certs, ignore_errors=True)
        shutil.rmtree(certs.with_name(f"{certs.name}.aside"), ignore_errors=True)
        run("docker", "image", "rm", f"{registry}/virtstack/demo:1", check=False)  # tag only
        leftovers = remove_leftovers(name)
        assert leftovers == [], f"destroy left {leftovers}"


def test_autoscale_adds_replicas_where_the_load_crosses_the_threshold(dev: Env) -> None:
    # A low threshold on web, so the test's own modest load crosses it, and a high one on
    # app, which sees the same load (thresholds change no infrastructure).
    dev.set("tiers[0].scaling.requests_per_replica_per_minute", 60)
    dev.set("tiers[1].scaling.requests_per_replica_per_minute", 1_000_000)
    try:
        with Load(dev.url) as load:
            out = dev.run("autoscale", dev.name, "--window", "5")
        assert load.failures == []
        assert "web: " in out
        assert "2 replicas → 3" in out
        wait_for_replicas(dev.url, {f"{dev.name}-web-{i}" for i in range(3)})
    finally:
        dev.set("tiers[0].scaling.requests_per_replica_per_minute", 500)
        dev.set("tiers[1].scaling.requests_per_replica_per_minute", 500)
        dev.run("scale", dev.name, "web", "2")
    assert "app: " in out
    assert "2 replicas stays" in out
    assert docker_inspect(f"{dev.name}-app-2") is None


def test_destroy_keeps_data_and_up_brings_it_back(dev: Env) -> None:
    kv = f"{dev.url}cgi-bin/kv?kept"
    assert httpx.post(kv, content=b"still-here", timeout=10).status_code == 200
    out = dev.run("destroy", dev.name, "--yes")
    assert f"kept data: {dev.name}_db-data_0, {dev.name}_registry-data" in out
    assert docker_inspect(f"{dev.name}-db-0") is None
    dev.run("up", dev.name, "--yes")
    wait_for_replicas(dev.url, {f"{dev.name}-web-0", f"{dev.name}-web-1"})
    assert httpx.get(kv, timeout=10).text.strip() == "still-here"


# -- bad input against the live engine: one clear error, nothing created ----------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def refused(project: Path, env: str, config: dict[str, object]) -> list[str]:
    """Deploy ``config`` as ``env``; it must be refused with nothing left on the engine."""
    stack_file(project, env).write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    try:
        result = cli(project, "up", env, "--yes")
        assert result.exit_code == 2, result.output
        assert not run("docker", "ps", "-aq", "--filter", f"name={env}").stdout.strip()
        return result.stderr.splitlines()
    finally:
        leftovers = remove_leftovers(env)
        assert leftovers == [], f"left {leftovers}"


def test_a_published_port_already_taken_is_refused(project: Path) -> None:
    env = f"{PREFIX}taken-{secrets.token_hex(3)}"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        errors = refused(project, env, dev_config(port, free_port()))
    assert errors == [
        f"error: virtstack:tiers[0].publish: 127.0.0.1:{port} is already in use by another process"
    ]


def test_an_image_missing_from_the_engine_is_refused(project: Path) -> None:
    env = f"{PREFIX}noimage-{secrets.token_hex(3)}"
    config = dev_config(free_port(), free_port())
    config["virtstack:tiers"][1]["image"] = "virtstack/nope:1"  # type: ignore[index]
    errors = refused(project, env, config)
    assert errors == [
        "error: virtstack:tiers[1].image: image 'virtstack/nope:1' is not on the engine "
        "unix:///var/run/docker.sock (build it: images/build.sh)"
    ]
