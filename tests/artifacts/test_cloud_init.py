"""Every cloud-init document virtstack renders passes `cloud-init schema`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from virtstack_components.cloudinit import user_data
from virtstack_components.libvirt.addresses import plan_network
from virtstack_components.libvirt.firewall import TierAccess, lb_rules, replica_rules
from virtstack_components.libvirt.registry import registry_user_data
from virtstack_components.registry import htpasswd_line

from tests.artifacts.conftest import shipped_haproxy_configs
from virtstack import pki

COMMON = {"user": "virtstack", "ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 a@b"]}
# Made in memory only (persist=False): nothing is written for it.
TLS = pki.registry_cert(Path("/nonexistent"), "lab", ["192.0.2.1"], persist=False)

PLAN = plan_network("192.0.2.0/24", [10, 10], 0)
WEB = TierAccess(
    addresses=PLAN.tiers[0], gateway=PLAN.gateway, clients=[PLAN.gateway, "10.0.2.0/24"]
)
DB = TierAccess(addresses=PLAN.tiers[1], gateway=PLAN.gateway, clients=PLAN.tiers[0].slots)
FIREWALLS = {
    "web-lb": lb_rules(WEB),
    "web-replica": replica_rules(WEB, 8080),
    "db-lb": lb_rules(DB),
    "db-replica": replica_rules(DB, 5432),
}
LB_CONFIG = next(c for c in shipped_haproxy_configs().values() if "\n    server " in c)

DOCUMENTS = {
    "vm": user_data("vm", hostname="lab-tools", **COMMON),
    "vm-with-extra": user_data(
        "vm",
        extra={"packages": ["curl"], "runcmd": [["touch", "/tmp/x"]], "timezone": "UTC"},
        hostname="lab-tools",
        **COMMON,
    ),
    "service": user_data(
        "service",
        hostname="lab-web-0",
        service="lab-web",
        command="busybox httpd -f -p 8080",
        env={"VIRTSTACK_UPSTREAM": "http://192.0.2.1:80", "GREETING": 'say "hi"'},
        secret_env={"DB_PASSWORD": 'p4ss %n "w0rd"'},
        data_path=None,
        firewall=FIREWALLS["web-replica"],
        **COMMON,
    ),
    "service-with-data": user_data(
        "service",
        hostname="lab-db-0",
        service="lab-db",
        command="db-server --data /data",
        env={},
        secret_env={},
        data_path="/data",
        firewall=FIREWALLS["db-replica"],
        **COMMON,
    ),
    "lb": user_data(
        "lb",
        hostname="lab-web-lb",
        haproxy_cfg=LB_CONFIG,
        publish_mac=None,
        publish_address="",
        firewall=FIREWALLS["db-lb"],
        **COMMON,
    ),
    "lb-published": user_data(
        "lb",
        hostname="lab-web-lb",
        haproxy_cfg=LB_CONFIG,
        publish_mac="02:00:76:73:00:01",
        publish_address="10.0.2.15/24",
        firewall=FIREWALLS["web-lb"],
        **COMMON,
    ),
    "container-host": user_data(
        "container-host",
        hostname="lab-docker",
        insecure_registries=["192.0.2.1:5000"],
        trusted_registries=[],
        registry_ca=None,
        **COMMON,
    ),
    "container-host-trusting": user_data(
        "container-host",
        hostname="lab-docker",
        insecure_registries=[],
        trusted_registries=["192.0.2.1:5000"],
        registry_ca=TLS.ca,
        **COMMON,
    ),
    "registry": registry_user_data(
        "lab-registry",
        COMMON["ssh_authorized_keys"],
        auth=True,
        htpasswd=htpasswd_line("virtstack", "pw"),
        certificate=None,
        key="",
    ),
    "registry-https": registry_user_data(
        "lab-registry",
        COMMON["ssh_authorized_keys"],
        auth=True,
        htpasswd=htpasswd_line("virtstack", "pw"),
        certificate=TLS.certificate,
        key=TLS.key,
    ),
}


def consume(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    """A consumer's verdict: its exit code and output."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def schema_check(cloud_init: str, text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "user-data"
    path.write_text(text)
    return consume(cloud_init, "schema", "--config-file", path)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_is_valid_cloud_config(name: str, require, tmp_path: Path):
    result = schema_check(require("cloud-init"), DOCUMENTS[name], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_reports_the_end_of_cloud_init_on_the_console(name: str):
    doc = yaml.safe_load(DOCUMENTS[name])
    assert doc["final_message"].startswith("VIRTSTACK-CLOUD-INIT-DONE ")


def test_embedded_files_survive_yaml_intact():
    lb = yaml.safe_load(DOCUMENTS["lb"])
    cfg = next(f for f in lb["write_files"] if f["path"] == "/etc/haproxy/haproxy.cfg")
    assert cfg["content"] == LB_CONFIG


def test_the_check_rejects_a_broken_document(require, tmp_path: Path):
    broken = DOCUMENTS["vm"].replace("lock_passwd: true", "lock_passwd: maybe")
    assert schema_check(require("cloud-init"), broken, tmp_path).returncode != 0


def test_secret_env_values_stay_out_of_the_world_readable_unit() -> None:
    config = yaml.safe_load(DOCUMENTS["service"])
    files = {f["path"]: f for f in config["write_files"]}
    unit = files["/etc/systemd/system/virtstack-lab-web.service"]
    dropin = files["/etc/systemd/system/virtstack-lab-web.service.d/secrets.conf"]
    assert unit["permissions"] == "0644"
    assert "DB_PASSWORD" not in unit["content"]
    assert dropin["permissions"] == "0600"
    # systemd's own quoting: % doubled, the quotes escaped inside one quoted assignment.
    assert dropin["content"] == '[Service]\nEnvironment="DB_PASSWORD=p4ss %%n \\"w0rd\\""\n'


def load(require, rules: Path, family: str) -> subprocess.CompletedProcess[str]:
    """``rules`` loaded into netfilter (nf_tables backend, as in the guest) in a network
    namespace of their own, as the VM's unit loads them, then read back."""
    tool = require("iptables-restore" if family == "v4" else "ip6tables-restore")
    save = tool.replace("-restore", "-save")
    return consume(require("unshare"), "--net", "sh", "-c", '"$0" "$1" && "$2"', tool, rules, save)


@pytest.mark.parametrize("name", sorted(FIREWALLS))
def test_firewall_rules_load_into_a_fresh_network_namespace(name: str, require, tmp_path: Path):
    loaded = {}
    for family, text in FIREWALLS[name].items():
        (tmp_path / family).write_text(text)
        done = load(require, tmp_path / family, family)
        assert done.returncode == 0, done.stderr
        assert ":INPUT DROP" in done.stdout
        assert ":OUTPUT ACCEPT" in done.stdout
        loaded[family] = done.stdout
    port = {"web-lb": 80, "db-lb": 80, "web-replica": 8080, "db-replica": 5432}[name]
    allowed = [ln.split()[3] for ln in loaded["v4"].splitlines() if f"--dport {port} " in ln]
    assert (
        allowed
        == {
            "web-lb": ["192.0.2.1/32", "10.0.2.0/24"],
            "web-replica": ["192.0.2.16/32"],
            "db-lb": [f"192.0.2.{17 + i}/32" for i in range(10)],
            "db-replica": ["192.0.2.32/32"],
        }[name]
    )


def test_a_broken_rule_fails_to_load(require, tmp_path: Path):
    """The check above can fail: a rule netfilter does not take."""
    (tmp_path / "v4").write_text(FIREWALLS["db-lb"]["v4"].replace("--dport 80", "--dport x", 1))
    assert load(require, tmp_path / "v4", "v4").returncode != 0
