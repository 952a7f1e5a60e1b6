"""The Pulumi program end to end under mocks: each shipped environment on its target."""

from __future__ import annotations

import base64
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from virtstack_components.registry import CERTIFICATE_PATH, CONFIG_PATH, KEY_PATH

from tests.unit.conftest import LOCAL_IMAGE_ID, USER_KEY, seed_file
from virtstack import pki
from virtstack.errors import SpecError
from virtstack.program import main
from virtstack.stackfiles import read_config

PROJECT = Path(__file__).resolve().parents[2]
SECRET = {"virtstack:registry_password": "s3cret"}
DOMAIN = "libvirt:index/domain:Domain"
VOLUME = "libvirt:index/volume:Volume"


def config_of(env: str, **changes: Any) -> dict[str, Any]:
    config = read_config(PROJECT, env)
    # A working copy where `virtstack up` ran holds an encrypted password: not ours here.
    config.pop("virtstack:registry_password", None)
    config.update({f"virtstack:{k}": v for k, v in changes.items()})
    return config


def test_dev_deploys_registry_images_by_digest_and_three_tiers(run):
    d = run(main, config_of("dev"), SECRET, stack="dev")
    assert d.named("dev-docker").type == "pulumi:providers:docker"
    # Providers receive their non-string inputs JSON-encoded.
    auth = json.loads(d.named("dev-docker").inputs["registryAuth"])
    # HTTPS: the provider reads digests over TLS, trusting the environment's CA alone.
    assert auth[0]["address"] == "https://127.0.0.1:5000"
    assert d.named("dev-registry").type == "virtstack:docker:ContainerRegistry"
    # The demo image is pushed into the stack's registry and used by digest.
    tag = d.named("dev-image-virtstack-demo-1-tag")
    assert tag.inputs["sourceImage"] == "virtstack/demo:1"
    assert tag.inputs["targetImage"] == "127.0.0.1:5000/virtstack/demo:1"
    # A rebuilt local image (new id) re-tags and re-pushes.
    assert tag.inputs["tagTriggers"] == [LOCAL_IMAGE_ID]
    assert d.named("dev-image-virtstack-demo-1-push").inputs["triggers"] == {
        "source": LOCAL_IMAGE_ID
    }
    # The replicas run the engine's own copy pinned by its id (what was pushed), so they
    # wait for neither the registry nor the push; nothing pulls the image back.
    chain = {d.named(n).urn for n in ("dev-registry-server", "dev-image-virtstack-demo-1-push")}
    for tier in ("web", "app", "db"):
        replica = d.named(f"dev-{tier}-replica-0")
        assert replica.inputs["image"] == LOCAL_IMAGE_ID
        assert replica.dependencies
        assert not chain & set(replica.dependencies)
    assert not [r for r in d.resources if r.type == "docker:index/remoteImage:RemoteImage"]
    assert len([r for r in d.resources if r.name.startswith("dev-web-replica-")]) == 2
    assert len([r for r in d.resources if r.name.startswith("dev-app-replica-")]) == 2
    assert d.named("dev-db-data-0").inputs["name"] == "dev_db-data_0"
    assert d.named("dev-web-lb").inputs["ports"][0]["external"] == 8080
    # The password only travels as a secret.
    server = d.named("dev-registry-server")
    assert "uploads" in server.secrets
    assert "registryAuth" in d.named("dev-docker").secrets


def test_dev_registry_serves_https_with_a_certificate_from_the_environments_ca(run, tls_home: Path):
    d = run(main, config_of("dev"), SECRET, stack="dev")
    uploads = {u["file"]: u["content"] for u in d.named("dev-registry-server").inputs["uploads"]}
    assert "tls:" in uploads[CONFIG_PATH]
    cert = x509.load_pem_x509_certificate(uploads[CERTIFICATE_PATH].encode())
    ca = x509.load_pem_x509_certificate((tls_home / "dev" / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert pki.san_names(cert) == {"127.0.0.1", "localhost"}
    assert uploads[KEY_PATH] == (tls_home / "dev" / "registry.key").read_text()
    # A second run (the next `up`) deploys the very same certificate: nothing to replace.
    again = run(main, config_of("dev"), SECRET, stack="dev")
    assert (
        again.named("dev-registry-server").inputs["uploads"]
        == (d.named("dev-registry-server").inputs["uploads"])
    )


def test_a_registry_beyond_loopback_is_named_by_its_certificate_and_trusted_by_the_engine(
    run, tls_home: Path
):
    registry = {"enabled": True, "address": "192.0.2.10", "port": 5443}
    d = run(main, config_of("dev", registry=registry), SECRET, stack="dev")
    uploads = {u["file"]: u["content"] for u in d.named("dev-registry-server").inputs["uploads"]}
    cert = x509.load_pem_x509_certificate(uploads[CERTIFICATE_PATH].encode())
    assert pki.san_names(cert) == {"192.0.2.10", "127.0.0.1", "localhost"}
    # The local engine verifies the registry by the environment's CA (Docker's certs.d).
    trusted = tls_home / "certs.d" / "192.0.2.10:5443" / "ca.crt"
    assert trusted.read_text() == (tls_home / "dev" / "ca.crt").read_text()


def test_registry_password_is_required_when_auth_is_on(run):
    with pytest.raises(SpecError, match=r"virtstack:registry_password: required"):
        run(main, config_of("dev"), stack="dev")


def test_a_misspelt_key_stops_the_program(run):
    config = config_of("dev") | {"virtstack:replica": 3}
    with pytest.raises(SpecError, match="virtstack:replica: unknown key"):
        run(main, config, SECRET)


def test_container_target_without_registry_uses_images_as_named(run):
    d = run(main, config_of("dev", registry={"enabled": False}), stack="dev")
    assert not [r for r in d.resources if r.type == "docker:index/registryImage:RegistryImage"]
    assert d.named("dev-web-replica-0").inputs["image"] == "virtstack/demo:1"


@pytest.mark.parametrize(("env", "domain_type"), [("lab", "qemu"), ("staging", "qemu")])
def test_vm_environments_deploy_on_libvirt(run, guest_dir: Path, env: str, domain_type: str):
    d = run(main, config_of(env, images={"guest": str(guest_dir)}), stack=env)
    assert d.named(f"{env}-libvirt").type == "pulumi:providers:libvirt"
    pool = d.named(f"{env}-pool")
    assert pool.inputs["path"] == f"/var/lib/virtstack/pools/{env}"
    domains = sorted(r.inputs["name"] for r in d.of_type("libvirt:index/domain:Domain"))
    assert {f"{env}-web-0", f"{env}-web-1", f"{env}-web-lb", f"{env}-docker"} <= set(domains)
    assert {r.inputs["type"] for r in d.of_type("libvirt:index/domain:Domain")} == {domain_type}
    assert d.named(f"{env}-docker").type == "virtstack:libvirt:ContainerHost"


@pytest.mark.parametrize(
    ("problem", "domain_type", "cpu"),
    [(None, "kvm", {"mode": "host-passthrough"}), ("no vmx/svm", "qemu", None)],
)
def test_hypervisor_uses_kvm_where_the_host_has_it(
    run, guest_dir: Path, monkeypatch, problem, domain_type, cpu
):
    from virtstack.engines.libvirt import LibvirtAdapter

    probed: list[str] = []

    def kvm_problem(self, uri: str) -> str | None:
        probed.append(uri)
        return problem

    monkeypatch.setattr(LibvirtAdapter, "kvm_problem", kvm_problem)
    config = config_of(
        "staging", images={"guest": str(guest_dir)}, engine={"uri": "qemu:///system"}
    )
    d = run(main, config, stack="staging")
    assert probed == ["qemu:///system"]
    domains = d.of_type("libvirt:index/domain:Domain")
    assert {r.inputs["type"] for r in domains} == {domain_type}
    assert all(r.inputs.get("cpu") == cpu for r in domains)
    # Servers: the VMs start with the host (hostos VMs do not, see below).
    assert all(r.inputs["autostart"] is True for r in domains)


def test_hostos_runs_qemu_without_probing_or_autostart(run, guest_dir: Path, monkeypatch):
    from virtstack.engines.libvirt import LibvirtAdapter

    monkeypatch.setattr(LibvirtAdapter, "kvm_problem", lambda self, uri: pytest.fail("probed"))
    d = run(main, config_of("lab", images={"guest": str(guest_dir)}), stack="lab")
    domains = d.of_type("libvirt:index/domain:Domain")
    assert {r.inputs["type"] for r in domains} == {"qemu"}
    assert not any(r.inputs.get("autostart") for r in domains)


def test_container_hosts_trust_the_environments_registry(run, guest_dir: Path, tls_home: Path):
    import json

    import yaml

    from tests.unit.conftest import seed_file

    config = config_of(
        "lab", images={"guest": str(guest_dir)}, registry={"enabled": True, "auth": False}
    )
    d = run(main, config, stack="lab")
    seed = d.named("lab-docker-vm-seed")
    files = {
        f["path"]: f["content"] for f in yaml.safe_load(seed_file(seed, "user-data"))["write_files"]
    }
    registry = next(r for r in d.of_type("libvirt:index/domain:Domain") if "registry" in r.name)
    # The registry's address is planned before it boots: the network's last host address.
    cidr = ipaddress.ip_network(config["virtstack:networks"][0]["cidr"])
    assert registry.inputs["networkInterfaces"][0]["addresses"] == [str(cidr[-2])]
    expected = f"{cidr[-2]}:5000"
    # Its engine verifies the registry by the environment's CA, over HTTPS only.
    assert json.loads(files["/etc/docker/daemon.json"])["insecure-registries"] == []
    ca = files[f"/etc/docker/certs.d/{expected}/ca.crt"]
    assert ca == (tls_home / "lab" / "ca.crt").read_text()


def test_every_vm_accepts_the_user_key_and_the_environment_keys(run, guest_dir: Path):
    extra = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVudi13aWRl env@test"
    own = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG93bi1rZXk= own@test"
    config = config_of("staging", images={"guest": str(guest_dir)}, ssh_authorized_keys=[extra])
    config["virtstack:vms"][0]["ssh_authorized_keys"] = [own]
    d = run(main, config, stack="staging")
    seeds = {
        r.name: seed_file(r, "user-data") for r in d.of_type(VOLUME) if r.name.endswith("-seed")
    }
    assert sorted(seeds) == [
        "staging-docker-vm-seed",
        "staging-tools-seed",
        "staging-web-lb-seed",
        "staging-web-replica-0-seed",
        "staging-web-replica-1-seed",
    ]
    for name, text in seeds.items():
        assert USER_KEY in text, name
        assert extra in text, name
        assert (own in text) == (name == "staging-tools-seed"), name
    # Seeds travel on a libvirt connection of their own.
    seed_providers = {
        r.provider.split("::")[3] for r in d.of_type(VOLUME) if r.name.endswith("-seed")
    }
    domain_providers = {r.provider.split("::")[3] for r in d.of_type(DOMAIN)}
    assert seed_providers == {"staging-libvirt-seeds"}, seed_providers
    assert domain_providers == {"staging-libvirt"}, domain_providers


def test_a_published_vm_tier_forwards_the_host_port_to_its_load_balancer(run, guest_dir: Path):
    config = config_of("lab", images={"guest": str(guest_dir)})
    config["virtstack:tiers"][0]["publish"] = 8088
    d = run(main, config, stack="lab")
    xslt = d.named("lab-web-lb-domain").inputs["xml"]["xslt"]
    assert "hostfwd=tcp:127.0.0.1:8088-:80" in xslt
    assert "mac=02:00:76:73:00:01" in xslt
    lb = seed_file(d.named("lab-web-lb-seed"), "user-data")
    assert "MACAddress=02:00:76:73:00:01" in lb
    assert "Address=10.0.2.15/24" in lb
    assert "xml" not in d.named("lab-web-replica-0-domain").inputs


def test_the_swarm_registry_serves_https_with_its_key_as_a_root_only_secret(
    run, tls_home: Path, monkeypatch: pytest.MonkeyPatch
):
    from virtstack.engines.swarm import ADAPTER

    monkeypatch.setattr(type(ADAPTER), "manager_address", lambda self, uri: "192.0.2.11")
    monkeypatch.setattr(type(ADAPTER), "pin_data", lambda self, spec, env, uri: {})
    d = run(main, config_of("dev", target="swarm", tiers=[]), SECRET, stack="dev")
    auth = json.loads(d.named("dev-swarm").inputs["registryAuth"])
    assert auth[0]["address"] == "https://192.0.2.11:5000"
    spec = d.named("dev-registry-server").inputs["taskSpec"]["containerSpec"]
    files = {
        c["fileName"]: base64.b64decode(d.named(n).inputs["data"]).decode()
        for c, n in zip(
            spec["configs"], ("dev-registry-config", "dev-registry-certificate"), strict=True
        )
    }
    assert "tls:" in files[CONFIG_PATH]
    cert = x509.load_pem_x509_certificate(files[CERTIFICATE_PATH].encode())
    cert.verify_directly_issued_by(
        x509.load_pem_x509_certificate((tls_home / "dev" / "ca.crt").read_bytes())
    )
    assert pki.san_names(cert) == {"192.0.2.11", "127.0.0.1", "localhost"}
    [key] = [s for s in spec["secrets"] if s["fileName"] == KEY_PATH]
    assert key["fileMode"] == 0o400
    secret = d.named("dev-registry-key")
    assert "data" in secret.secrets
    key_pem = base64.b64decode(secret.inputs["data"]).decode()
    assert key_pem == (tls_home / "dev" / "registry.key").read_text()
    # Every node on this machine verifies the registry by the environment's CA.
    trusted = tls_home / "certs.d" / "192.0.2.11:5000" / "ca.crt"
    assert trusted.read_text() == (tls_home / "dev" / "ca.crt").read_text()
