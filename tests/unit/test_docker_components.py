"""Components on the Docker placement, under mocks."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pulumi
import pytest
import yaml
from virtstack_components.docker.network import DockerNetwork, DockerNetworkArgs
from virtstack_components.docker.placement import DockerPlacement
from virtstack_components.docker.registry import ContainerRegistry, ContainerRegistryArgs
from virtstack_components.docker.tier import ContainerTier, ContainerTierArgs
from virtstack_components.registry import (
    CERTIFICATE_PATH,
    CONFIG_PATH,
    HTPASSWD_PATH,
    KEY_PATH,
    Credentials,
    ServerTls,
    htpasswd_line,
)
from virtstack_components.stack import ServiceStack, ServiceStackArgs, StackTier
from virtstack_components.tier import UPSTREAM_ENV, DataVolume, HealthCheck, Publish, TierArgs

from virtstack.errors import ComponentError

PLACEMENT = DockerPlacement(namespace="dev", lb_image="lb")
CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"


HTTP_PROBE = [
    "CMD", "busybox", "timeout", "1", "busybox", "wget", "-q", "-O", "/dev/null",
    "http://127.0.0.1:9000/ready",
]  # fmt: skip


def env_of(container) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs.get("envs", []))


def test_network_is_a_docker_network_named_like_the_component(run):
    def program():
        DockerNetwork(
            "dev-web-net",
            DockerNetworkArgs(placement=PLACEMENT, cidr="10.91.0.0/24", internal=True),
        )

    d = run(program)
    component = d.named("dev-web-net")
    assert component.type == "virtstack:docker:DockerNetwork"
    (net,) = d.children(component)
    assert net.type == NETWORK
    assert net.name == "dev-web-net-docker"
    assert net.inputs["name"] == "dev-web-net"
    assert net.inputs["internal"] is True
    assert net.inputs["ipamConfigs"] == [{"subnet": "10.91.0.0/24"}]


def test_service_tier_replicas_share_an_alias_and_carry_health_checks(run):
    health = HealthCheck(path="/ready", interval=3, timeout=1, retries=4)

    def program():
        ContainerTier(
            "dev-app",
            ContainerTierArgs(
                placement=PLACEMENT,
                tier=TierArgs(image="img", replicas=3, port=9000, health=health, max_replicas=12),
                network="dev-app-net",
                client_networks=["dev-web-net"],
            ),
        )

    d = run(program)
    tier = d.named("dev-app")
    assert tier.type == "virtstack:docker:ContainerTier"
    children = d.children(tier)
    replicas = [c for c in children if c.name.startswith("dev-app-replica-")]
    assert [r.inputs["name"] for r in replicas] == ["dev-app-0", "dev-app-1", "dev-app-2"]
    for r in replicas:
        assert r.type == CONTAINER
        assert r.inputs["image"] == "img"
        assert r.inputs["restart"] == "always"
        assert r.inputs["networksAdvanced"] == [
            {"name": "dev-app-net", "aliases": ["dev-app-replica"]}
        ]
        assert r.inputs["healthcheck"] == {
            # Exec form: no shell in the replica ever sees the path.
            "tests": HTTP_PROBE,
            "interval": "3s",
            "timeout": "1s",
            "retries": 4,
        }
        assert "ports" not in r.inputs or not r.inputs["ports"]
        assert r.delete_before_replace
    lb = d.named("dev-app-lb")
    assert lb.parent == tier.urn
    assert lb.inputs["image"] == "lb"
    config = lb.inputs["uploads"][0]["content"]
    # Discovery through Docker's DNS, with room to scale without a config change.
    assert "server-template dev-app-slot 1-12 dev-app-replica:9000 check resolvers docker" in config
    assert "option httpchk GET /ready" in config
    assert "default-server inter 3s fall 4" in config
    # The LB sits on its own tier's network and answers as "dev-app" on the client's.
    assert lb.inputs["networksAdvanced"] == [
        {"name": "dev-app-net"},
        {"name": "dev-web-net", "aliases": ["dev-app"]},
    ]
    assert not lb.inputs.get("ports")


def test_replica_count_changes_leave_the_load_balancer_config_alone(run):
    def tier(replicas: int):
        def program():
            ContainerTier(
                "dev-web",
                ContainerTierArgs(
                    placement=PLACEMENT,
                    tier=TierArgs(image="img", replicas=replicas, max_replicas=6),
                    network="n",
                ),
            )

        return program

    two, four = run(tier(2)), run(tier(4))
    assert len(two.of_type(CONTAINER)) == 3
    assert len(four.of_type(CONTAINER)) == 5
    assert two.named("dev-web-lb").inputs["uploads"] == four.named("dev-web-lb").inputs["uploads"]


def test_a_tcp_health_check_when_there_is_no_path(run):
    def program():
        ContainerTier(
            "dev-db",
            ContainerTierArgs(
                placement=PLACEMENT,
                tier=TierArgs(image="img", port=5432, health=HealthCheck(path=None)),
                network="n",
            ),
        )

    d = run(program)
    assert d.named("dev-db-replica-0").inputs["healthcheck"]["tests"] == [
        "CMD", "busybox", "nc", "-w", "2", "127.0.0.1", "5432", "-e", "busybox", "true",
    ]  # fmt: skip
    assert "httpchk" not in d.named("dev-db-lb").inputs["uploads"][0]["content"]


def test_stateful_replicas_keep_data_on_retained_volumes(run):
    def program():
        ContainerTier(
            "dev-db",
            ContainerTierArgs(
                placement=PLACEMENT,
                tier=TierArgs(
                    image="img",
                    replicas=2,
                    max_replicas=2,
                    volume=DataVolume(name="db-data", path="/data"),
                ),
                network="n",
            ),
        )

    d = run(program)
    volumes = d.of_type(VOLUME)
    assert [v.inputs["name"] for v in volumes] == ["dev_db-data_0", "dev_db-data_1"]
    assert all(v.retain_on_delete for v in volumes)
    assert d.named("dev-db-replica-1").inputs["volumes"] == [
        {"volumeName": "dev_db-data_1", "containerPath": "/data"}
    ]


def test_published_port_is_only_on_the_load_balancer(run):
    def program():
        ContainerTier(
            "dev-web",
            ContainerTierArgs(
                placement=PLACEMENT,
                tier=TierArgs(image="img", replicas=2, max_replicas=2, publish=Publish(port=8080)),
                network="n",
            ),
        )

    d = run(program)
    assert d.named("dev-web-lb").inputs["ports"] == [
        {"internal": 80, "external": 8080, "ip": "127.0.0.1"}
    ]
    assert not d.named("dev-web-replica-0").inputs.get("ports")


def test_service_stack_isolates_tiers_and_wires_upstreams(run):
    tiers = [
        StackTier(
            name="web",
            args=TierArgs(image="w", replicas=2, max_replicas=2, publish=Publish(port=8080)),
            upstream="app",
        ),
        StackTier(name="app", args=TierArgs(image="a", replicas=2, max_replicas=2), upstream="db"),
        StackTier(
            name="db", args=TierArgs(image="d", volume=DataVolume(name="db-data", path="/data"))
        ),
    ]

    def program():
        ServiceStack("dev", ServiceStackArgs(placement=PLACEMENT, tiers=tiers))

    d = run(program)
    stack = d.named("dev")
    assert stack.type == "virtstack:stack:ServiceStack"
    nets = {n.inputs["name"]: n.inputs for n in d.of_type(NETWORK)}
    assert set(nets) == {"dev-web-net", "dev-app-net", "dev-db-net"}
    # The stack's own children: no component per network (a resource that did no work).
    assert {n.parent for n in d.of_type(NETWORK)} == {stack.urn}
    assert not [r for r in d.resources if r.type == "virtstack:docker:DockerNetwork"]
    # Only the front tier's network routes to the host; the others are internal.
    assert not nets["dev-web-net"].get("internal")
    assert nets["dev-app-net"]["internal"]
    assert nets["dev-db-net"]["internal"]
    # Replicas sit on their own tier's network only.
    for tier in ("web", "app", "db"):
        replica = d.named(f"dev-{tier}-replica-0")
        assert [n["name"] for n in replica.inputs["networksAdvanced"]] == [f"dev-{tier}-net"]
    # Each LB joins the network of the tier that sends it traffic.
    assert [n["name"] for n in d.named("dev-app-lb").inputs["networksAdvanced"]] == [
        "dev-app-net",
        "dev-web-net",
    ]
    assert [n["name"] for n in d.named("dev-db-lb").inputs["networksAdvanced"]] == [
        "dev-db-net",
        "dev-app-net",
    ]
    assert env_of(d.named("dev-web-replica-0"))[UPSTREAM_ENV] == "http://dev-app:80"
    assert env_of(d.named("dev-app-replica-1"))[UPSTREAM_ENV] == "http://dev-db:80"
    assert UPSTREAM_ENV not in env_of(d.named("dev-db-replica-0"))
    published = [c.name for c in d.of_type(CONTAINER) if c.inputs.get("ports")]
    assert published == ["dev-web-lb"]
    for tier in ("dev-web", "dev-app", "dev-db"):
        assert d.named(tier).parent == stack.urn


def test_registry_in_a_container_keeps_blobs_on_a_volume_and_hides_the_password(run):
    def program():
        r = ContainerRegistry(
            "dev-registry",
            ContainerRegistryArgs(
                placement=PLACEMENT,
                image="base",
                port=5000,
                credentials=Credentials(password="s3cret"),
            ),
        )
        pulumi.export("endpoint", r.endpoint)

    d = run(program)
    registry = d.named("dev-registry")
    assert registry.type == "virtstack:docker:ContainerRegistry"
    storage = d.named("dev-registry-storage")
    assert storage.inputs["name"] == "dev_registry-data"
    assert storage.retain_on_delete
    assert storage.parent == registry.urn
    server = d.named("dev-registry-server")
    assert server.inputs["ports"] == [{"internal": 5000, "external": 5000, "ip": "127.0.0.1"}]
    assert server.inputs["volumes"][0]["volumeName"] == "dev_registry-data"
    uploads = {u["file"]: u["content"] for u in server.inputs["uploads"]}
    assert "htpasswd:" in uploads["/etc/docker/registry/config.yml"]
    assert uploads[HTPASSWD_PATH] == htpasswd_line("virtstack", "s3cret")
    assert "uploads" in server.secrets
    assert "s3cret" not in uploads[HTPASSWD_PATH]


def test_registry_with_tls_serves_https_only_and_keeps_its_key_secret(run):
    def program():
        ContainerRegistry(
            "dev-registry",
            ContainerRegistryArgs(
                placement=PLACEMENT,
                image="base",
                credentials=Credentials(password="s3cret"),
                tls=ServerTls(certificate="CERT PEM", key="KEY PEM"),
            ),
        )

    d = run(program)
    server = d.named("dev-registry-server")
    uploads = {u["file"]: u["content"] for u in server.inputs["uploads"]}
    config = yaml.safe_load(uploads[CONFIG_PATH])
    assert config["http"]["tls"] == {
        "certificate": CERTIFICATE_PATH,
        "key": KEY_PATH,
        "minimumtls": "tls1.2",
    }
    assert config["auth"]["htpasswd"]["path"] == HTPASSWD_PATH
    assert uploads[CERTIFICATE_PATH] == "CERT PEM"
    assert uploads[KEY_PATH] == "KEY PEM"
    assert "uploads" in server.secrets


def test_registry_without_auth_has_no_htpasswd(run):
    def program():
        ContainerRegistry(
            "dev-registry",
            ContainerRegistryArgs(
                placement=PLACEMENT, image="base", credentials=Credentials(username=None)
            ),
        )

    d = run(program)
    uploads = {u["file"]: u["content"] for u in d.named("dev-registry-server").inputs["uploads"]}
    assert HTPASSWD_PATH not in uploads
    assert "htpasswd" not in uploads["/etc/docker/registry/config.yml"]


def test_htpasswd_refuses_what_bcrypt_would_truncate():
    with pytest.raises(ComponentError, match="at most 72 bytes"):
        htpasswd_line("virtstack", "x" * 73)


def test_htpasswd_is_stable_and_bcrypt():
    line = htpasswd_line("virtstack", "pw")
    assert line == htpasswd_line("virtstack", "pw")
    assert line != htpasswd_line("virtstack", "other")
    assert line.startswith("virtstack:$2b$05$")
    assert bcrypt.checkpw(b"pw", line.strip().partition(":")[2].encode())


def test_the_readme_example_of_another_program_builds(run):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### The components in another Pulumi program", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]

    d = run(lambda: exec(code, {}))
    names = sorted(c.inputs["name"] for c in d.of_type(CONTAINER))
    assert names == ["shop-web-0", "shop-web-1", "shop-web-lb"]


def test_tier_args_refuse_more_replicas_than_the_load_balancer_has_slots_for():
    with pytest.raises(ComponentError, match="3 replicas exceed max_replicas 2"):
        TierArgs(image="img", replicas=3, max_replicas=2)
