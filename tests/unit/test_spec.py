"""The environment spec: good stacks parse, each kind of bad input names its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from virtstack import targets
from virtstack.errors import SpecError
from virtstack.spec import parse_spec
from virtstack.stackfiles import environments, read_config

PROJECT = Path(__file__).resolve().parents[2]

WEB = {"name": "web", "image": "virtstack/demo:1", "upstream": "app", "publish": 8080}
APP = {"name": "app", "image": "virtstack/demo:1", "upstream": "db"}
DB = {
    "name": "db",
    "image": "virtstack/demo:1",
    "stateful": True,
    "volume": {"name": "db-data", "path": "/data"},
}


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"target": "container", "tiers": [WEB, APP, DB]}
    base.update(overrides)
    return {f"virtstack:{k}": v for k, v in base.items()}


def problems(config: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as caught:
        targets.check(parse_spec(config))
    return str(caught.value)


@pytest.mark.parametrize("env", environments(PROJECT))
def test_every_shipped_environment_is_valid(env: str) -> None:
    parsed = parse_spec(read_config(PROJECT, env))
    assert targets.check(parsed).name == parsed.target


def test_shipped_environments_cover_all_three_targets() -> None:
    shipped = {parse_spec(read_config(PROJECT, env)).target for env in environments(PROJECT)}
    assert shipped == set(targets.TARGETS)


def test_a_good_spec_keeps_its_values() -> None:
    parsed = parse_spec(spec())
    assert [t.name for t in parsed.tiers] == ["web", "app", "db"]
    assert [t.name for t in parsed.front_tiers()] == ["web"]
    assert parsed.tier("db").volume is not None
    assert parsed.tier("web").health.path == "/healthz"


def test_more_than_256_tiers_are_refused() -> None:
    """Above the program's scale goal of 200 (tests/unit/test_bench_inputs.py)."""
    chain = [{"name": f"t{i}", "image": "virtstack/demo:1"} for i in range(257)]
    assert "virtstack:tiers: List should have at most 256 items" in problems(spec(tiers=chain))


def test_other_namespaces_and_the_secret_are_not_spec_keys() -> None:
    config = spec() | {"docker:host": "x", "virtstack:registry_password": {"secure": "v1:x"}}
    assert parse_spec(config).target == "container"


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("unknown target", spec(target="cloud"), "virtstack:target: unknown target 'cloud'"),
    ("missing target", {"virtstack:tiers": []}, "virtstack:target: required"),
    ("misspelt key", spec(tier=[WEB]), "virtstack:tier: unknown key"),
    (
        "name not a DNS label",
        spec(tiers=[{**WEB, "name": "Web_1", "upstream": None}]),
        "virtstack:tiers[0].name: must be a DNS label",
    ),
    (
        "replicas not a number",
        spec(tiers=[{**WEB, "upstream": None, "replicas": "many"}]),
        "virtstack:tiers[0].replicas:",
    ),
    (
        "port out of range",
        spec(tiers=[{**WEB, "upstream": None, "port": 70000}]),
        "virtstack:tiers[0].port:",
    ),
    (
        "published port out of range",
        spec(tiers=[{**WEB, "upstream": None, "publish": 0}]),
        "virtstack:tiers[0].publish:",
    ),
    ("duplicate tier names", spec(tiers=[WEB, APP, DB, APP]), "virtstack:tiers[3].name: 'app'"),
    (
        "overlapping CIDRs",
        spec(
            networks=[
                {"name": "front", "cidr": "10.90.0.0/16"},
                {"name": "back", "cidr": "10.90.4.0/24"},
            ]
        ),
        "virtstack:networks[1].cidr: 10.90.4.0/24 overlaps",
    ),
    (
        "malformed CIDR",
        spec(networks=[{"name": "front", "cidr": "10.90.0.300/24"}]),
        "virtstack:networks[0].cidr:",
    ),
    (
        "replicas above scaling max",
        spec(tiers=[{**WEB, "upstream": None, "replicas": 9, "scaling": {"min": 1, "max": 4}}]),
        "virtstack:tiers[0].replicas: 9 is outside scaling min..max (1..4)",
    ),
    (
        "scaling min above max",
        spec(tiers=[{**WEB, "upstream": None, "scaling": {"min": 5, "max": 4}}]),
        "virtstack:tiers[0].scaling: min (5) must not exceed max (4)",
    ),
    (
        "stateful tier without a volume",
        spec(tiers=[{**DB, "volume": None}]),
        "virtstack:tiers[0].volume: stateful tier 'db' needs a volume",
    ),
    (
        "upstream names no tier",
        spec(tiers=[{**WEB, "upstream": "api"}]),
        "virtstack:tiers[0].upstream: no tier named 'api'",
    ),
    (
        "traffic loop",
        spec(tiers=[{**WEB, "upstream": "app"}, {**APP, "upstream": "web"}]),
        "virtstack:tiers[0].upstream: traffic loops: web -> app -> web",
    ),
    (
        "publishing a back tier",
        spec(tiers=[WEB, {**APP, "publish": 9090}, DB]),
        "virtstack:tiers[1].publish: only a front tier is published",
    ),
    (
        "published port taken by the registry",
        spec(registry={"enabled": True, "port": 8080}),
        "virtstack:tiers[0].publish: port 8080 is taken by virtstack:registry.port",
    ),
    (
        "tier on an unknown network",
        spec(tiers=[{**WEB, "upstream": None, "network": "dmz"}]),
        "virtstack:tiers[0].network: no network named 'dmz'",
    ),
    (
        "health path not absolute",
        spec(tiers=[{**WEB, "upstream": None, "health": {"path": "healthz"}}]),
        "virtstack:tiers[0].health.path: must be an absolute path",
    ),
    (
        "health timeout longer than interval",
        spec(tiers=[{**WEB, "upstream": None, "health": {"interval": 2, "timeout": 5}}]),
        "virtstack:tiers[0].health: timeout (5s) must not exceed interval (2s)",
    ),
    (
        "VMs on the container target",
        spec(vms=[{"name": "tools"}]),
        "virtstack:vms: the container target has no VMs",
    ),
    (
        "container hosts on the container target",
        spec(container_hosts=[{"name": "docker"}]),
        "virtstack:container_hosts: the container target has no container hosts",
    ),
    (
        "libvirt URI for the container target",
        spec(engine={"uri": "qemu:///system"}),
        "virtstack:engine.uri: 'qemu:///system' is not a docker endpoint",
    ),
    (
        "remote libvirt for hostos",
        spec(
            target="hostos",
            engine={"uri": "qemu+ssh://admin@kvm1/system"},
            networks=[{"name": "lab", "cidr": "192.168.151.0/24"}],
        ),
        "virtstack:engine.uri: 'qemu+ssh://admin@kvm1/system' is not a libvirt endpoint",
    ),
    (
        "threshold scaling on a VM target",
        spec(
            target="hypervisor",
            networks=[{"name": "lab", "cidr": "192.168.151.0/24"}],
            tiers=[
                {
                    **WEB,
                    "upstream": None,
                    "scaling": {"min": 1, "max": 3, "requests_per_replica_per_minute": 500},
                }
            ],
        ),
        "virtstack:tiers[0].scaling.requests_per_replica_per_minute: "
        "the hypervisor target has no threshold scaling",
    ),
    (
        "VM target without a network",
        spec(target="hostos", tiers=[], vms=[{"name": "tools"}]),
        "virtstack:networks: VM targets need at least one network",
    ),
    (
        "VM network too small for its tiers",
        spec(
            target="hostos",
            networks=[{"name": "lab", "cidr": "192.168.151.0/27"}],
            tiers=[{**t, "command": ["serve"]} for t in (WEB, APP, DB)],
        ),
        "virtstack:networks[0].cidr: too small: 192.168.151.0/27 has 32 addresses; its 3 "
        "tier(s) (16 addresses each, the first block kept for the gateway) and 0 other VM(s) "
        "need 65 (a /25 or larger)",
    ),
    (
        "VM network too small for its plain VMs",
        spec(
            target="hostos",
            networks=[{"name": "lab", "cidr": "192.168.151.0/29"}],
            tiers=[],
            vms=[{"name": "tools", "count": 6}],
        ),
        "virtstack:networks[0].cidr: too small: 192.168.151.0/29 has 8 addresses",
    ),
    (
        "memory below the minimum",
        spec(target="hostos", tiers=[], vms=[{"name": "tools", "memory": 64}]),
        "virtstack:vms[0].memory:",
    ),
    (
        "volume used twice",
        spec(
            tiers=[
                {**APP, "upstream": None, "volume": {"name": "data", "path": "/d"}},
                {**DB, "volume": {"name": "data", "path": "/d"}},
            ]
        ),
        "volume 'data' is used twice",
    ),
    (
        "NUL in a command word",
        spec(tiers=[{**WEB, "upstream": None, "command": ["sh", "-c", "a\x00b"]}]),
        "virtstack:tiers[0].command[2]: must not contain control characters",
    ),
    (
        "empty command",
        spec(tiers=[{**WEB, "upstream": None, "command": []}]),
        "virtstack:tiers[0].command: must start with a program to run",
    ),
    (
        "program named like an ExecStart prefix",
        spec(tiers=[{**WEB, "upstream": None, "command": ["-rm", "x"]}]),
        "virtstack:tiers[0].command: the program must not start with any of",
    ),
    (
        "command word too long",
        spec(tiers=[{**WEB, "upstream": None, "command": ["echo", "x" * 40000]}]),
        "virtstack:tiers[0].command[1]: String should have at most 32768 characters",
    ),
    (
        "env name with a space",
        spec(tiers=[{**WEB, "upstream": None, "env": {"MY VAR": "x"}}]),
        "virtstack:tiers[0].env: name must be an environment variable name",
    ),
    (
        "env name starting with a digit",
        spec(tiers=[{**WEB, "upstream": None, "env": {"1X": "x"}}]),
        "virtstack:tiers[0].env: name must be an environment variable name",
    ),
    (
        "carriage return in an env value",
        spec(tiers=[{**WEB, "upstream": None, "env": {"A": "x\ry"}}]),
        "virtstack:tiers[0].env.A: must not contain control characters",
    ),
    (
        "volume path with a comma",
        spec(tiers=[WEB, APP, {**DB, "volume": {"name": "db-data", "path": "/data,/etc"}}]),
        "virtstack:tiers[2].volume.path: must be an absolute path of letters",
    ),
    (
        "volume path with a bracket",
        spec(tiers=[WEB, APP, {**DB, "volume": {"name": "db-data", "path": "/data]"}}]),
        "virtstack:tiers[2].volume.path:",
    ),
    (
        "volume path with a space",
        spec(tiers=[WEB, APP, {**DB, "volume": {"name": "db-data", "path": "/da ta"}}]),
        "virtstack:tiers[2].volume.path:",
    ),
    (
        "health path with a shell command",
        spec(tiers=[{**WEB, "upstream": None, "health": {"path": "/x;$(reboot) #"}}]),
        "virtstack:tiers[0].health.path: must be an absolute path of URL characters",
    ),
    (
        "health path with a quote",
        spec(tiers=[{**WEB, "upstream": None, "health": {"path": '/x"y'}}]),
        "virtstack:tiers[0].health.path:",
    ),
    (
        "ssh key on two lines",
        spec(
            target="hypervisor",
            tiers=[],
            container_hosts=[{"name": "docker", "ssh_authorized_keys": ["ssh-ed25519 A\nx"]}],
        ),
        "virtstack:container_hosts[0].ssh_authorized_keys[0]: must be one public key line",
    ),
    (
        "vm image not an absolute path",
        spec(target="hostos", tiers=[], vms=[{"name": "v", "image": "disk.qcow2"}]),
        "virtstack:vms[0].image: must be an absolute path, one line without control "
        "characters (got 'disk.qcow2')",
    ),
]


def test_user_strings_a_consumer_can_carry_are_kept_as_written() -> None:
    command = ["sh", "-c", 'echo "100% $HOME; `id`"\necho done\t#']
    env = {"GREETING": 'it\'s "50%" off\nnext line', "_X1": "{{ x }} {% y %}"}
    parsed = parse_spec(
        spec(
            tiers=[
                {**WEB, "upstream": None, "command": command, "env": env},
                {**APP, "upstream": None, "health": {"path": "/status?probe=1&x=%20y"}},
            ]
        )
    )
    assert parsed.tiers[0].command == command
    assert parsed.tiers[0].env == env
    assert parsed.tiers[1].health.path == "/status?probe=1&x=%20y"


def test_a_long_bad_value_is_shown_shortened() -> None:
    text = problems(spec(tiers=[{**WEB, "upstream": None, "env": {"A": "\x01" * 10000}}]))
    assert len(text) < 400


@pytest.mark.parametrize(("case", "config", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_the_key(case: str, config: dict[str, Any], message: str) -> None:
    assert message in problems(config)


def test_every_problem_is_reported_at_once() -> None:
    text = problems(spec(tiers=[{**WEB, "upstream": "api", "replicas": 9, "scaling": {"max": 2}}]))
    assert "virtstack:tiers[0].upstream" in text
    assert "virtstack:tiers[0].replicas" in text
    assert all(line.startswith("virtstack:") for line in text.splitlines())
