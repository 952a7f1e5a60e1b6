"""Quoting of values for the files virtstack renders: each consumer has its own rules.

Every user string reaches a template through one of these filters, which either quote it so
the consumer reads back exactly the same string, or raise :class:`TemplateError` when the
consumer cannot carry it at all. The spec refuses such values earlier with the config key
named; the errors here are the backstop for values that come from elsewhere.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from virtstack_components.errors import TemplateError

# Characters YAML's reader accepts raw inside a double-quoted scalar without folding them:
# printable ASCII and printable non-ASCII, minus the line and paragraph separators that
# YAML 1.1 treats as line breaks (str.isprintable() is False for those, and for C0/C1).
_YAML_SHORT = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def _raw_ok(ch: str) -> bool:
    return " " <= ch <= "~" or (ord(ch) >= 0xA0 and ch.isprintable())


def _escape_code_point(ch: str) -> str:
    # \x, \u and \U mean the same code point in YAML double quotes and in systemd's
    # C-style escapes, so one spelling serves both.
    n = ord(ch)
    if n < 0x80:
        return f"\\x{n:02x}"
    if n < 0x10000:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def yaml_quote(value: str) -> str:
    """``value`` as a YAML double-quoted scalar that loads back as exactly ``value``.

    Jinja's ``tojson`` is not enough: it writes characters outside the BMP as JSON
    surrogate pairs, which a YAML loader reads as two lone surrogates.
    """
    if not isinstance(value, str):
        raise TemplateError(f"yaml_quote: expected a string, got {type(value).__name__}")
    out = []
    for ch in value:
        if ch in _YAML_SHORT:
            out.append(_YAML_SHORT[ch])
        elif _raw_ok(ch):
            out.append(ch)
        else:
            out.append(_escape_code_point(ch))
    return '"' + "".join(out) + '"'


# systemd.syntax(7): quoted words take C-style escapes; '%' starts a specifier everywhere;
# in ExecStart= a '$' starts a variable substitution ("$$" is a literal '$').
_SYSTEMD_SHORT = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "%": "%%"}
# Environment= drops an assignment whose value has control characters other than these.
_ENV_CONTROL_OK = frozenset("\t\n")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _surrogate(ch: str) -> bool:
    return 0xD800 <= ord(ch) <= 0xDFFF


# Words of these characters mean themselves to systemd unquoted (a first word starting with
# a prefix character is refused by systemd_exec before it gets here).
_SYSTEMD_BARE = re.compile(r"[A-Za-z0-9_./:=,+-]+")


def systemd_word(value: str, *, dollar: bool = False, bare: bool = False) -> str:
    """One word of a unit file setting, read back by systemd as ``value``.

    ``dollar`` doubles '$' for ExecStart=, where systemd substitutes variables. ``bare``
    leaves a word of plain characters unquoted, so common commands read as written.
    """
    if bare and _SYSTEMD_BARE.fullmatch(value):
        return value
    out = []
    for ch in value:
        if ch == "\0" or _surrogate(ch):
            # cunescape() refuses \x00 and invalid code points: no spelling carries them.
            raise TemplateError(f"systemd: {value!r} holds a character a unit file cannot carry")
        if ch in _SYSTEMD_SHORT:
            out.append(_SYSTEMD_SHORT[ch])
        elif ch == "$" and dollar:
            out.append("$$")
        elif _raw_ok(ch):
            out.append(ch)
        else:
            out.append(_escape_code_point(ch))
    return '"' + "".join(out) + '"'


def systemd_exec(command: Sequence[str] | str) -> str:
    """An ExecStart= value that runs ``command`` (a list of words) without a shell.

    Every word is quoted, which keeps a lone ';' after the first word an argument rather
    than a command separator. A first word starting with one of systemd's prefixes
    ('-', '@', ':', '+', '!') is refused: systemd strips them even from a quoted word. A
    string is read as shell words (``shlex.join`` output, as components passed it before).
    """
    words = shlex.split(command) if isinstance(command, str) else list(command)
    if not words or not words[0]:
        raise TemplateError("systemd: ExecStart needs a non-empty command")
    if words[0][0] in "-@:+!" or words[0] == ";":
        # systemd reads prefixes off the first word after unquoting it: quotes do not help.
        raise TemplateError(f"systemd: ExecStart cannot run a program named {words[0]!r}")
    return " ".join(systemd_word(w, dollar=True, bare=True) for w in words)


def systemd_environment(name: str, value: str) -> str:
    """An Environment= value setting variable ``name`` to ``value``."""
    if not _ENV_NAME.fullmatch(name):
        raise TemplateError(f"systemd: {name!r} is not an environment variable name")
    if any((ch < " " or ch == "\x7f") and ch not in _ENV_CONTROL_OK for ch in value):
        raise TemplateError(f"systemd: the value of {name} holds a control character")
    return systemd_word(f"{name}={value}")


# HAProxy reads '#' as a comment, '\' as an escape, '$' and quotes as expansion and
# grouping: inside single quotes everything is literal except the closing quote. Words of
# these characters mean themselves unquoted, and stay readable (paths, host:port).
_HAPROXY_BARE = re.compile(r"[A-Za-z0-9_./:=,+~@-]+")


def haproxy_quote(value: str) -> str:
    """``value`` as one HAProxy config argument, read back literally."""
    if any(not ch.isprintable() for ch in value):
        # A config line ends at a newline; HAProxy has no escape for control characters.
        raise TemplateError(f"haproxy: {value!r} holds a character a config line cannot carry")
    if _HAPROXY_BARE.fullmatch(value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def plain_name(value: str) -> str:
    """``value`` unchanged if it is a plain name (letters, digits, '_', '.', '-').

    For identifiers no quoting can save: HAProxy proxy and server names, systemd unit
    names and hostnames.
    """
    if not isinstance(value, str) or not _PLAIN_NAME.fullmatch(value):
        raise TemplateError(f"{value!r} is not a plain name (letters, digits, '_', '.', '-')")
    return value


FILTERS = {
    "yaml_quote": yaml_quote,
    "systemd_exec": systemd_exec,
    "systemd_environment": systemd_environment,
    "haproxy_quote": haproxy_quote,
    "plain_name": plain_name,
}
"""Jinja filters, registered on the one environment by :mod:`templating`."""
