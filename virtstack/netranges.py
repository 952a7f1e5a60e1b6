"""Address ranges for new networks: free ones, those a libvirt host uses, a clone's.

A VM environment's clone runs beside its source on the same host, so each of its libvirt
networks needs a range of its own: one the user gives (``--network NAME=CIDR``) or the
first free one of the same size, free meaning it overlaps no libvirt network of the host
(running or not), no route or interface address there, and nothing declared in the project.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from virtstack.engines import hostcmd
from virtstack.errors import EngineCommandError, UsageError

if TYPE_CHECKING:
    from virtstack.spec import NetworkSpec

Network = ipaddress.IPv4Network

FIRST = Network("192.168.150.0/24")
"""Where the search for a free range starts: below it lie ranges people often use."""
SPACES = (Network("192.168.0.0/16"), Network("10.0.0.0/8"))
"""The private ranges searched, in this order."""
OPTION = "--network"


def free_network(taken: Iterable[Network], prefixlen: int = 24) -> Network | None:
    """The first private range of ``prefixlen`` bits overlapping none of ``taken``."""
    used = list(taken)
    return next((c for c in _candidates(prefixlen) if not any(c.overlaps(u) for u in used)), None)


def _candidates(prefixlen: int) -> Iterator[Network]:
    for space in SPACES:
        if prefixlen < space.prefixlen:
            continue
        for candidate in space.subnets(new_prefix=prefixlen):
            if space.overlaps(FIRST) and candidate.network_address < FIRST.network_address:
                continue
            yield candidate


def parse_given(items: Sequence[str]) -> dict[str, Network]:
    """``NAME=CIDR`` options as a mapping; one line naming the option for a bad one."""
    given: dict[str, Network] = {}
    for item in items:
        name, sep, cidr = item.partition("=")
        try:
            network = Network(cidr) if sep and name else None
        except ValueError:
            network = None
        if network is None:
            raise UsageError(
                f"{OPTION} {item}: expected NAME=CIDR (an IPv4 network such as 192.168.160.0/24)"
            )
        if name in given:
            raise UsageError(f"{OPTION} {item}: network {name} is given twice")
        given[name] = network
    return given


def clone_networks(
    networks: Sequence[NetworkSpec], given: Mapping[str, Network], taken: Iterable[Network]
) -> dict[str, Network]:
    """A range per network of a clone: the given one, else the first free of its size.

    Raises :class:`UsageError` naming the option for an unknown network, or a given range
    that overlaps one of ``taken`` or another of the clone's.
    """
    known = [n.name for n in networks]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UsageError(
            f"{OPTION} {unknown[0]}=...: no such network (networks: {', '.join(known) or 'none'})"
        )
    used = list(taken)
    chosen: dict[str, Network] = {}
    for name, cidr in given.items():  # first, so that the ranges picked below avoid them
        clash = next((u for u in used if cidr.overlaps(u)), None)
        if clash is not None:
            raise UsageError(
                f"{OPTION} {name}={cidr}: overlaps {clash}, which is in use on the host, in the "
                "project or by the clone"
            )
        chosen[name] = cidr
        used.append(cidr)
    for net in networks:
        if net.name in chosen:
            continue
        free = free_network(used, net.cidr.prefixlen)
        if free is None:
            raise UsageError(
                f"{OPTION} {net.name}=CIDR: no free /{net.cidr.prefixlen} range is left on the "
                "host; give one"
            )
        chosen[net.name] = free
        used.append(free)
    return {n.name: chosen[n.name] for n in networks}


def host_ranges(uri: str) -> list[Network]:
    """Every IPv4 range the libvirt host at ``uri`` uses: its networks, running or not,
    and (when this machine can ask it: locally or over ssh) its routes and addresses."""
    taken: list[Network] = []
    listed = hostcmd.run(hostcmd.virsh_argv(uri, "net-list", "--all", "--name"), uri=uri)
    for name in listed.split():
        try:
            xml = hostcmd.run(hostcmd.virsh_argv(uri, "net-dumpxml", name), uri=uri)
        except EngineCommandError:
            continue  # gone since the listing: another environment's destroy
        taken += xml_ranges(xml)
    if hostcmd.is_local(uri) or hostcmd.over_ssh(uri):
        for command in (("ip", "-4", "-o", "addr", "show"), ("ip", "-4", "route", "show")):
            if hostcmd.is_local(uri):
                out = hostcmd.run(command, uri=uri)
            else:
                out = hostcmd.ssh_run(uri, *command)
            taken += words_ranges(out)
    return taken


def xml_ranges(xml: str) -> list[Network]:
    """The IPv4 ranges of a libvirt network's XML (its ``<ip>`` elements)."""
    ranges = []
    for ip in ET.fromstring(xml).iter("ip"):
        if ip.get("family", "ipv4") != "ipv4" or ip.get("address") is None:
            continue
        bits = ip.get("prefix") or ip.get("netmask") or "32"
        ranges.append(Network(f"{ip.get('address')}/{bits}", strict=False))
    return ranges


def words_ranges(text: str) -> list[Network]:
    """Every ``address/bits`` word of ``ip addr`` or ``ip route`` output, as a range."""
    ranges = []
    for word in text.split():
        if "/" not in word:
            continue
        try:
            ranges.append(Network(word, strict=False))
        except ValueError:
            continue  # an interface's name or an IPv6 word, not a range
    return ranges
