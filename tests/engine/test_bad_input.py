# ruff: noqa: E501  (a table of cases, one per line, reads better than wrapped)
"""Bad input through `virtstack up ENV --yes`: exit 2, one line per problem naming the key,
and nothing made on the engines (Docker and libvirt listings for the environment's names).

Each case is a stack file a user could write; the checks that need no engine run before
anything is created, those that need one (images, ports, memory) before the first change.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.engine.cli_support import cli, make_project
from tests.engine.harness import PREFIX, remove_leftovers, run, virsh
from virtstack.cli import EXIT_BAD_INPUT
from virtstack.stackfiles import stack_file

pytestmark = pytest.mark.engine

WEB = {"name": "web", "image": "virtstack/demo:1", "publish": 18080}
DB = {"name": "db", "image": "virtstack/demo:1", "stateful": True,
      "volume": {"name": "data", "path": "/data"}}  # fmt: skip
NET = [{"name": "lab", "cidr": "192.168.199.0/24"}]
CMD = ["busybox", "httpd", "-f", "-p", "8080"]


def container(**keys: Any) -> dict[str, Any]:
    return {"virtstack:target": "container", "virtstack:tiers": [WEB], **keys}


def tiers(*items: dict[str, Any], **keys: Any) -> dict[str, Any]:
    return container(**{"virtstack:tiers": list(items)}, **keys)


def hostos(**keys: Any) -> dict[str, Any]:
    return {"virtstack:target": "hostos", "virtstack:networks": NET, **keys}


def tier(**keys: Any) -> dict[str, Any]:
    return {**WEB, **keys}


# (case id, stack file: a config mapping or raw text, a fragment the error line must hold)
CASES: list[tuple[str, dict[str, Any] | str, str]] = [
    # the file itself
    ("invalid yaml", "config:\n  virtstack:target: [container\n", "not valid YAML"),
    ("file not a mapping", "- config\n- more\n", "a mapping"),
    ("config not a mapping", "config: just text\n", "config"),
    ("key not a string", "config:\n  1: container\n", "1"),
    ("empty config", "config: {}\n", "virtstack:target: required"),
    ("misspelt namespace", {**container(), "virtstak:tiers": []}, "virtstak:tiers"),
    ("foreign namespace", {**container(), "docker:host": "tcp://x:1"}, "docker:host"),
    ("unknown top-level key", container(**{"virtstack:tierz": []}), "virtstack:tierz"),
    # target and engine
    ("unknown target", {"virtstack:target": "kubernetes"}, "virtstack:target"),
    ("target not a name", {"virtstack:target": "Container"}, "virtstack:target"),
    ("docker uri for libvirt", hostos(**{"virtstack:engine": {"uri": "unix:///d.sock"}}),
     "virtstack:engine.uri"),
    ("libvirt uri for docker", container(**{"virtstack:engine": {"uri": "qemu:///system"}}),
     "virtstack:engine.uri"),
    ("remote uri on hostos", hostos(**{"virtstack:engine": {"uri": "qemu+ssh://h/system"}}),
     "virtstack:engine.uri"),
    ("domain type unknown", hostos(**{"virtstack:engine": {"domain_type": "xen"}}),
     "virtstack:engine.domain_type"),
    ("engine unknown key", container(**{"virtstack:engine": {"url": "x"}}), "virtstack:engine.url"),
    ("unreachable engine", container(**{"virtstack:engine": {"uri": "unix:///nonexistent.sock"}}),
     "virtstack:engine.uri"),
    # networks
    ("network cidr invalid", hostos(**{"virtstack:networks": [{"name": "a", "cidr": "10.0.0.0/33"}]}),
     "virtstack:networks[0].cidr"),
    ("network name invalid", hostos(**{"virtstack:networks": [{"name": "A_b", "cidr": "10.9.0.0/24"}]}),
     "virtstack:networks[0].name"),
    ("networks overlap", hostos(**{"virtstack:networks": [*NET, {"name": "b", "cidr": "192.168.199.128/25"}]}),
     "virtstack:networks[1].cidr"),
    ("network twice", hostos(**{"virtstack:networks": [*NET, {"name": "lab", "cidr": "10.8.0.0/24"}]}),
     "virtstack:networks[1].name"),
    ("vm target without network", {"virtstack:target": "hostos", "virtstack:vms": [{"name": "a"}]},
     "virtstack:networks"),
    ("unknown network", hostos(**{"virtstack:vms": [{"name": "a", "network": "nope"}]}),
     "virtstack:vms[0].network"),
    # registry
    ("registry port 0", container(**{"virtstack:registry": {"enabled": True, "port": 0}}),
     "virtstack:registry.port"),
    ("registry port too high", container(**{"virtstack:registry": {"enabled": True, "port": 70000}}),
     "virtstack:registry.port"),
    ("registry address invalid", container(**{"virtstack:registry": {"enabled": True, "address": "localhost:1"}}),
     "virtstack:registry.address"),
    ("registry user invalid", container(**{"virtstack:registry": {"enabled": True, "username": "a b"}}),
     "virtstack:registry.username"),
    ("registry storage invalid", container(**{"virtstack:registry": {"enabled": True, "storage": "Data!"}}),
     "virtstack:registry.storage"),
    ("registry size 0", container(**{"virtstack:registry": {"enabled": True, "size_gib": 0}}),
     "virtstack:registry.size_gib"),
    ("plaintext registry password", container(**{"virtstack:registry_password": "hunter2"}),
     "virtstack:registry_password"),
    ("open registry beside a public tier", tiers(
        tier(publish_address="0.0.0.0"),
        **{"virtstack:registry": {"enabled": True, "auth": False, "address": "0.0.0.0"}}),
     "virtstack:registry.auth"),
    # tiers
    ("tiers not a list", container(**{"virtstack:tiers": {"web": {}}}), "virtstack:tiers"),
    ("thousands of tiers", container(**{"virtstack:tiers": [
        {"name": f"t{i}", "image": "x"} for i in range(2000)]}), "virtstack:tiers"),
    ("tier without name", tiers({"image": "virtstack/demo:1"}), "virtstack:tiers[0].name"),
    ("tier without image", tiers({"name": "web"}), "virtstack:tiers[0].image"),
    ("tier name uppercase", tiers(tier(name="Web")), "virtstack:tiers[0].name"),
    ("tier name too long", tiers(tier(name="w" * 40)), "virtstack:tiers[0].name"),
    ("tier twice", tiers(WEB, tier(publish=18081)), "virtstack:tiers[1].name"),
    ("tier and vm share a name", hostos(**{"virtstack:tiers": [tier(command=CMD)],
                                           "virtstack:vms": [{"name": "web"}]}),
     "virtstack:vms[0].name"),
    ("negative replicas", tiers(tier(replicas=-1)), "virtstack:tiers[0].replicas"),
    ("too many replicas", tiers(tier(replicas=65)), "virtstack:tiers[0].replicas"),
    ("port 0", tiers(tier(port=0)), "virtstack:tiers[0].port"),
    ("publish too high", tiers(tier(publish=70000)), "virtstack:tiers[0].publish"),
    ("publish on a fed tier", tiers(tier(upstream="db"), {**DB, "publish": 18082}),
     "virtstack:tiers[1].publish"),
    ("publish port clash", tiers(WEB, {**DB, "publish": 18080}), "virtstack:tiers[1].publish"),
    ("health interval 0", tiers(tier(health={"interval": 0})), "virtstack:tiers[0].health.interval"),
    ("health timeout above interval", tiers(tier(health={"interval": 2, "timeout": 5})),
     "virtstack:tiers[0].health"),
    ("health retries 11", tiers(tier(health={"retries": 11})), "virtstack:tiers[0].health.retries"),
    ("health path relative", tiers(tier(health={"path": "healthz"})), "virtstack:tiers[0].health.path"),
    ("health path with a hash", tiers(tier(health={"path": "/h#x"})), "virtstack:tiers[0].health.path"),
    ("env name not an identifier", tiers(tier(env={"1BAD": "x"})), "virtstack:tiers[0].env"),
    ("env value with a control character", tiers(tier(env={"A": "x\x1by"})),
     "virtstack:tiers[0].env.A"),
    ("env secret of no name", tiers(tier(env={"A": {"secret": "Bad Name"}})),
     "virtstack:tiers[0].env.A.secret"),
    ("env secret never set", tiers(tier(env={"A": {"secret": "db"}}, command=CMD)),
     "virtstack:tiers[0].env.A"),
    ("command with a control character", tiers(tier(command=["httpd", "-f\x00"])),
     "virtstack:tiers[0].command"),
    ("command named like an ExecStart prefix", tiers(tier(command=["-httpd"])),
     "virtstack:tiers[0].command"),
    ("stateful without volume", tiers(tier(stateful=True)), "virtstack:tiers[0].volume"),
    ("volume path relative", tiers({**DB, "volume": {"name": "data", "path": "data"}}),
     "virtstack:tiers[0].volume.path"),
    ("volume path with a comma", tiers({**DB, "volume": {"name": "data", "path": "/data,/etc"}}),
     "virtstack:tiers[0].volume.path"),
    ("volume name invalid", tiers({**DB, "volume": {"name": "Data", "path": "/data"}}),
     "virtstack:tiers[0].volume.name"),
    ("volume used twice", tiers({**DB, "volume": {"name": "registry-data", "path": "/d"}},
                                **{"virtstack:registry": {"enabled": True}}),
     "registry-data"),
    ("upstream unknown", tiers(tier(upstream="api")), "virtstack:tiers[0].upstream"),
    ("upstream itself", tiers(tier(upstream="web")), "virtstack:tiers[0].upstream"),
    ("upstream loop", tiers(tier(upstream="db"), {**DB, "upstream": "web"}), "virtstack:tiers"),
    ("scaling min above max", tiers(tier(scaling={"min": 3, "max": 2})),
     "virtstack:tiers[0].scaling"),
    ("replicas outside scaling", tiers(tier(replicas=9, scaling={"min": 1, "max": 4})),
     "virtstack:tiers[0].replicas"),
    ("cpus 0", tiers(tier(cpus=0)), "virtstack:tiers[0].cpus"),
    ("memory below 128", tiers(tier(memory=64)), "virtstack:tiers[0].memory"),
    ("image missing on the engine", tiers(tier(image="virtstack/nope:404")),
     "virtstack:tiers[0].image"),
    # what the target cannot do
    ("vms on the container target", container(**{"virtstack:vms": [{"name": "a"}]}), "virtstack:vms"),
    ("container hosts on the container target", container(**{"virtstack:container_hosts": [{"name": "h"}]}),
     "virtstack:container_hosts"),
    ("vm tier without command", hostos(**{"virtstack:tiers": [WEB]}), "virtstack:tiers[0].command"),
    ("vm memory in the millions", hostos(**{"virtstack:vms": [{"name": "a", "memory": 5_000_000}]}),
     "virtstack:vms[0].memory"),
    ("vm memory above the host", hostos(**{"virtstack:vms": [{"name": "a", "memory": 1_000_000}]}),
     "virtstack:vms[0].memory"),
    ("all vms above the host", hostos(**{"virtstack:vms": [{"name": "a", "memory": 600_000, "count": 2}]}),
     "virtstack:vms"),
    ("vm count 0", hostos(**{"virtstack:vms": [{"name": "a", "count": 0}]}), "virtstack:vms[0].count"),
    ("vm disk 0", hostos(**{"virtstack:vms": [{"name": "a", "disk": 0}]}), "virtstack:vms[0].disk"),
    ("ssh key of two lines", hostos(**{"virtstack:container_hosts": [
        {"name": "h", "ssh_authorized_keys": ["ssh-ed25519 AAAA a\nssh-rsa BBBB b"]}]}),
     "virtstack:container_hosts[0].ssh_authorized_keys"),
]  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("bad-input"))


@pytest.fixture(scope="module")
def taken_port() -> Iterator[int]:
    """A loopback port another process holds, for the published-port case."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def made(name: str) -> list[str]:
    """Everything on the engines whose name holds the environment's name."""
    listings = [
        ["docker", "ps", "-a", "--format", "{{.Names}}"],
        ["docker", "volume", "ls", "--format", "{{.Name}}"],
        ["docker", "network", "ls", "--format", "{{.Name}}"],
    ]
    found = [n for argv in listings for n in run(*argv).stdout.split() if name in n]
    for what in ("list --all --name", "pool-list --all --name", "net-list --all --name"):
        found += [n for n in virsh(*what.split()).stdout.split() if name in n]
    return found


def up_refuses(project: Path, content: dict[str, Any] | str, fragment: str) -> None:
    env = f"{PREFIX}bad-{secrets.token_hex(3)}"
    text = content if isinstance(content, str) else yaml.safe_dump({"config": content})
    stack_file(project, env).write_text(text)
    try:
        result = cli(project, "up", env, "--yes")
        assert result.exit_code == EXIT_BAD_INPUT, result.output
        lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
        assert lines, result.output
        assert any(fragment in line for line in lines), lines
        assert all(len(line) < 600 for line in lines), lines  # one readable line each
        assert made(env) == []
    finally:
        stack_file(project, env).unlink()
        remove_leftovers(env)  # only if a refusal came too late: the assertion above says so


def test_the_corpus_is_large_and_distinct() -> None:
    assert len(CASES) >= 60
    assert len({case for case, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("content", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_anything_is_made(
    project: Path, content: dict[str, Any] | str, fragment: str
) -> None:
    up_refuses(project, content, fragment)


def test_a_published_port_someone_else_holds(project: Path, taken_port: int) -> None:
    up_refuses(project, tiers(tier(publish=taken_port)), "virtstack:tiers[0].publish")
