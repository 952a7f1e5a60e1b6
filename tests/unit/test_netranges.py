"""A clone's network ranges: the free ones picked, the given ones checked, what a libvirt
host uses read from virsh and ip, and the ``--network`` option."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.unit.fixtures.cli_support import invoke, make_services
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack import netranges, stackfiles
from virtstack.cli import EXIT_BAD_INPUT
from virtstack.environment import check_config
from virtstack.errors import EngineCommandError, UsageError
from virtstack.restore import _renumber
from virtstack.spec import NetworkSpec

Net = ipaddress.IPv4Network


def nets(*pairs: tuple[str, str]) -> list[NetworkSpec]:
    return [NetworkSpec(name=n, cidr=Net(c)) for n, c in pairs]


def test_the_first_free_range_of_the_same_size_is_picked() -> None:
    taken = [Net("192.168.150.0/24"), Net("192.168.151.128/25")]
    assert netranges.free_network(taken) == Net("192.168.152.0/24")
    assert netranges.free_network(taken, 25) == Net("192.168.151.0/25")
    # Wider than 192.168.150.0/24 onwards can hold: the 10.0.0.0/8 space.
    assert netranges.free_network([Net("10.0.0.0/12")], 16) == Net("10.16.0.0/16")
    assert netranges.free_network([Net("0.0.0.0/1"), Net("128.0.0.0/1")]) is None


def test_each_network_of_a_clone_gets_a_range_overlapping_nothing_taken() -> None:
    source = nets(("front", "192.168.150.0/24"), ("back", "192.168.151.0/26"))
    taken = [*(n.cidr for n in source), Net("192.168.152.0/24"), Net("192.168.153.0/32")]
    chosen = netranges.clone_networks(source, {}, taken)
    assert chosen == {"front": Net("192.168.154.0/24"), "back": Net("192.168.151.64/26")}


def test_a_given_range_is_kept_and_the_picked_ones_avoid_it() -> None:
    source = nets(("front", "192.168.150.0/24"), ("back", "192.168.151.0/24"))
    given = {"back": Net("192.168.152.0/24")}
    chosen = netranges.clone_networks(source, given, [n.cidr for n in source])
    assert chosen == {"front": Net("192.168.153.0/24"), "back": Net("192.168.152.0/24")}


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"nope": Net("10.9.0.0/24")}, r"--network nope=\.\.\.: no such network \(networks: net\)"),
        ({"net": Net("192.168.122.0/25")}, r"--network net=192.168.122.0/25: overlaps 192.168.122"),
        ({"net": Net("10.0.0.0/8")}, "--network net=10.0.0.0/8: overlaps 10.1.2.0/24"),
    ],
)
def test_a_given_range_that_is_unknown_or_in_use_is_refused_naming_the_option(
    given: dict[str, Net], words: str
) -> None:
    taken = [Net("192.168.122.0/24"), Net("10.1.2.0/24")]
    with pytest.raises(UsageError, match=words):
        netranges.clone_networks(nets(("net", "192.168.150.0/24")), given, taken)


@pytest.mark.parametrize(
    "item", ["net", "net=", "=10.0.0.0/24", "net=10.0.0.1/24", "net=300.1.0.0/16", "net=fe80::/64"]
)
def test_a_bad_network_option_is_one_line_naming_it(item: str) -> None:
    with pytest.raises(UsageError, match=f"^--network {item}: expected NAME=CIDR"):
        netranges.parse_given([item])


def test_network_options_parse_and_a_repeated_name_is_refused() -> None:
    assert netranges.parse_given(["a=10.0.0.0/24", "b=10.0.1.0/24"]) == {
        "a": Net("10.0.0.0/24"),
        "b": Net("10.0.1.0/24"),
    }
    with pytest.raises(UsageError, match="network a is given twice"):
        netranges.parse_given(["a=10.0.0.0/24", "a=10.0.1.0/24"])


NET_XML = {
    "default": "<network><name>default</name>"
    "<ip address='192.168.122.1' netmask='255.255.255.0'/></network>",
    "lab-net": "<network><ip family='ipv4' address='192.168.150.1' prefix='24'/>"
    "<ip family='ipv6' address='fd00::1' prefix='64'/></network>",
}
IP_OUT = {
    "addr": "2: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\n",
    "route": "default via 192.0.2.1 dev eth0\n172.17.0.0/16 dev docker0 proto kernel\n",
}


def fake_host(argv: Sequence[str], *, uri: str, timeout: float = 0) -> str:
    if argv[0] == "ip":
        return IP_OUT[argv[3] if argv[2] == "-o" else argv[2]]
    command, *args = argv[4:]
    if command == "net-list":
        return "\n".join([*NET_XML, "gone"]) + "\n"
    assert command == "net-dumpxml"
    if args[0] not in NET_XML:
        raise EngineCommandError(f"{uri}: Network not found: no network with matching name")
    return NET_XML[args[0]]


def test_the_host_ranges_are_its_libvirt_networks_routes_and_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(netranges.hostcmd, "run", fake_host)
    assert sorted(netranges.host_ranges("qemu:///system")) == sorted(
        [Net("192.168.122.0/24"), Net("192.168.150.0/24"), Net("192.0.2.0/24"),
         Net("172.17.0.0/16")]
    )  # fmt: skip
    # A libvirt reached over TCP: only what libvirt itself tells.
    assert len(netranges.host_ranges("qemu+tcp://far/system")) == 2


VM_DECLARATION = """\
config:
  virtstack:target: hostos
  virtstack:engine:
    uri: qemu:///system
    pool_path: /pools/lab
  virtstack:networks:
    - name: net
      cidr: 192.168.150.0/24
  virtstack:tiers:
    - name: db
      image: x
      command: [sleep, infinity]
"""


def test_a_vm_clone_gets_free_ranges_and_a_pool_folder_of_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(netranges.hostcmd, "run", fake_host)
    document = stackfiles.load(VM_DECLARATION, "d")
    said: list[str] = []
    source = check_config(stackfiles.plain(document))
    _renumber(tmp_path, document, source, "lab2", {}, said.append)
    config = check_config(stackfiles.plain(document))
    assert [str(n.cidr) for n in config.spec.networks] == ["192.168.151.0/24"]
    assert config.spec.engine.pool_path == "/pools/lab2"
    assert said == ["network net of lab2: 192.168.151.0/24 (the source's is 192.168.150.0/24)"]


def test_a_bad_network_option_is_refused_before_anything_is_read(project: Path) -> None:
    result = invoke(
        project, make_services(), "restore", "dev", "--into", "dev2", "--network", "net", "--yes"
    )
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.strip().splitlines() == [
        "error: --network net: expected NAME=CIDR (an IPv4 network such as 192.168.160.0/24)"
    ]
    assert not stackfiles.stack_file(project, "dev2").exists()


def test_a_network_range_without_a_clone_is_refused(project: Path) -> None:
    result = invoke(project, make_services(), "restore", "dev", "--network", "a=10.0.0.0/24", "-y")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "--network: only for a clone (with --into)" in result.stderr
