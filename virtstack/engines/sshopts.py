"""``engine.ssh_opts``: OpenSSH command-line options, read as option/value pairs.

The docker provider and every client virtstack runs take them verbatim; the libvirt
provider has an ssh client of its own and takes only what its URI parameters can say.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# ssh's single-letter options that take a value, and their -o names where they have one.
_WITH_VALUE = {
    "i": "IdentityFile",
    "p": "Port",
    "l": "User",
    "F": "-F",
    "J": "ProxyJump",
    "c": "Ciphers",
    "m": "MACs",
    "o": "",
}
_FLAGS = set("46AaCgKkMNnqsTtVvXxYy")


class SshOptionError(ValueError):
    """An ``engine.ssh_opts`` entry ssh would not read as intended; names its index."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class SshOption:
    index: int
    """Position of the option's first token in ``engine.ssh_opts``."""
    name: str
    """The ``-o`` keyword (``IdentityFile``), ``-F`` for a config file, or ``-X`` for a flag."""
    value: str


def parse(tokens: Sequence[str]) -> Iterator[SshOption]:
    """The options ``tokens`` give ssh, in order; :class:`SshOptionError` for a bad one."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("-") or len(token) < 2:
            raise SshOptionError(i, f"{token!r} is not an ssh option (start with '-')")
        letter, rest = token[1], token[2:]
        if letter in _FLAGS and not rest:
            yield SshOption(i, f"-{letter}", "")
            i += 1
            continue
        if letter not in _WITH_VALUE:
            raise SshOptionError(i, f"{token!r}: virtstack does not pass ssh option -{letter}")
        if rest[:1].isspace():
            # ssh would read the value with its leading space ("-i /key" as one item).
            raise SshOptionError(i, f"{token!r}: give the option and its value as two items")
        start = i
        if not rest:
            if i + 1 >= len(tokens):
                raise SshOptionError(i, f"{token!r} needs a value")
            i += 1
            rest = tokens[i]
        i += 1
        if letter == "o":
            name, sep, value = rest.partition("=")
            if not sep:
                name, _, value = rest.partition(" ")
            if not name or not value.strip():
                raise SshOptionError(start, f"{rest!r}: write -o Keyword=value")
            yield SshOption(start, name.strip(), value.strip())
        else:
            yield SshOption(start, _WITH_VALUE[letter], rest)
