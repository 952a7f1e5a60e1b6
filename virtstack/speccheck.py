"""Checks of an environment spec beyond each field's own rules, and errors as key lines.

:func:`virtstack.spec.parse_spec` runs these: pydantic's errors become one line per
problem naming the config key, and the checks that span fields (unique names, CIDR
overlaps, references between tiers) run once every field is valid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from virtstack.configkeys import key
from virtstack.spec import (
    _ENV_NAME_PATTERN,
    _FILE_PATTERN,
    _HEALTH_PATH_PATTERN,
    _LINE_PATTERN,
    _NAME_PATTERN,
    _PATH_TAG,
    _POOL_NAME_PATTERN,
    _SECRET_TAG,
    _SSH_KEY,
    _TEXT_PATTERN,
    _TEXT_TAG,
    _VOLUME_PATH_PATTERN,
    _VOLUME_TAG,
    EnvironmentSpec,
)

# pydantic reports a pattern mismatch by the regex; say what the pattern means instead.
_PATTERN_MEANING = {
    _NAME_PATTERN: "must be a DNS label: lowercase letters, digits and '-', "
    "starting with a letter, at most 32 characters",
    _TEXT_PATTERN: "must not contain control characters other than tab and newline",
    _LINE_PATTERN: "must be one line without control characters",
    _FILE_PATTERN: "must be an absolute path, one line without control characters",
    _ENV_NAME_PATTERN: "must be an environment variable name: letters, digits and '_', "
    "not starting with a digit",
    _VOLUME_PATH_PATTERN: "must be an absolute path of letters, digits and '._@+=~-' "
    "(not '/' itself; no spaces, ',', ':', brackets or control characters)",
    _HEALTH_PATH_PATTERN: "must be an absolute path of URL characters: an HTTP path and "
    "query of letters, digits, -._~!$&'()*+,;=:@/? and %XX escapes",
    _POOL_NAME_PATTERN: "must be a libvirt pool or volume name: letters, digits and "
    "'_.+@:-', starting with a letter, digit or '_', at most 255 characters",
    _SSH_KEY: "must be one public key line: '<type> <base64> [comment]' (ssh-ed25519, "
    "ssh-rsa, ecdsa-sha2-*, sk-*)",
}


def describe(error: Any) -> str:
    """One of pydantic's errors as a line naming the config key and the bad value."""
    loc = tuple(error["loc"]) or ("(root)",)
    # The tag of an env value's or an image's kind is pydantic's, not a key a user wrote.
    loc = tuple(
        part
        for i, part in enumerate(loc)
        if not (part in (_TEXT_TAG, _SECRET_TAG) and i >= 2 and loc[i - 2] == "env")
        and not (part in (_PATH_TAG, _VOLUME_TAG) and i >= 1 and loc[i - 1] == "image")
    )
    message = str(error["msg"]).removeprefix("Value error, ")
    if loc[-1] == "[key]":
        # A bad mapping key (an env name): name the mapping, and say it is the name.
        loc = loc[:-2] if len(loc) > 2 else loc[:-1]
        message = "name " + _PATTERN_MEANING.get(error.get("ctx", {}).get("pattern"), message)
        return f"{key(*loc)}: {message} (got {_shown(error['input'])})"
    if error["type"] == "string_unicode":
        message = "must be valid Unicode text (no lone surrogates)"
    if error["type"] == "string_pattern_mismatch":
        message = _PATTERN_MEANING.get(error["ctx"]["pattern"], message)
    if error["type"] == "extra_forbidden":
        return f"{key(*loc)}: unknown key"
    if error["type"] == "missing":
        return f"{key(*loc)}: required"
    return f"{key(*loc)}: {message} (got {_shown(error['input'])})"


def _shown(value: Any) -> str:
    # A hostile value can be megabytes long: the key says where, a prefix says which.
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:100]}... ({len(text)} characters)"


def cross_checks(spec: EnvironmentSpec) -> Iterator[str]:
    """Problems that span fields: unique names, CIDR overlaps, references between tiers."""
    yield from _check_ssh_opts(spec)
    yield from _check_networks(spec)
    yield from _check_names(spec)
    yield from _check_tiers(spec)


def _check_ssh_opts(spec: EnvironmentSpec) -> Iterator[str]:
    from virtstack.engines import sshopts

    try:
        list(sshopts.parse(spec.engine.ssh_opts))
    except sshopts.SshOptionError as exc:
        yield f"{key('engine', 'ssh_opts', exc.index)}: {exc}"


def _check_networks(spec: EnvironmentSpec) -> Iterator[str]:
    for i, net in enumerate(spec.networks):
        for j, other in enumerate(spec.networks[:i]):
            if net.name == other.name:
                yield f"{key('networks', i, 'name')}: {net.name!r} is already networks[{j}]"
            elif net.cidr.overlaps(other.cidr):
                yield (
                    f"{key('networks', i, 'cidr')}: {net.cidr} overlaps "
                    f"networks[{j}] ({other.name}, {other.cidr})"
                )
    known = {n.name for n in spec.networks}
    for section, items in spec.placed():
        for i, item in enumerate(items):
            if item.network is not None and item.network not in known:
                yield (
                    f"{key(section, i, 'network')}: no network named {item.network!r} "
                    f"(networks: {sorted(known) or 'none'})"
                )


def _check_names(spec: EnvironmentSpec) -> Iterator[str]:
    # Tiers, VMs and hosts share one namespace: they become host and container names.
    owners: dict[str, str] = {}
    for section, items in spec.placed():
        for i, item in enumerate(items):
            here = key(section, i, "name")
            if item.name in owners:
                yield f"{here}: {item.name!r} is already used by {owners[item.name]}"
            else:
                owners[item.name] = here
    volumes = [t.volume.name for t in spec.tiers if t.volume] + (
        [spec.registry.storage] if spec.registry.enabled else []
    )
    for name in sorted(n for n, count in Counter(volumes).items() if count > 1):
        i = next(i for i, t in enumerate(spec.tiers) if t.volume and t.volume.name == name)
        yield f"{key('tiers', i, 'volume', 'name')}: volume {name!r} is used twice"


def _check_tiers(spec: EnvironmentSpec) -> Iterator[str]:
    names = [t.name for t in spec.tiers]
    published: dict[tuple[str, int], str] = {}
    if spec.registry.enabled:
        published[(str(spec.registry.address), spec.registry.port)] = key("registry", "port")
    front = {t.name for t in spec.front_tiers()}
    for i, tier in enumerate(spec.tiers):
        if tier.stateful and tier.volume is None:
            yield f"{key('tiers', i, 'volume')}: stateful tier {tier.name!r} needs a volume"
        if tier.upstream is not None:
            if tier.upstream == tier.name:
                yield f"{key('tiers', i, 'upstream')}: tier {tier.name!r} cannot feed itself"
            elif tier.upstream not in names:
                yield (
                    f"{key('tiers', i, 'upstream')}: no tier named {tier.upstream!r} "
                    f"(tiers: {names})"
                )
        if tier.scaling is not None:
            lo, hi = tier.scaling.min, tier.scaling.max
            if not lo <= tier.replicas <= hi:
                yield (
                    f"{key('tiers', i, 'replicas')}: {tier.replicas} is outside "
                    f"scaling min..max ({lo}..{hi})"
                )
        if tier.publish is not None:
            if tier.name not in front:
                yield (
                    f"{key('tiers', i, 'publish')}: only a front tier is published; "
                    f"{tier.name!r} receives traffic from another tier"
                )
            where = (str(tier.publish_address), tier.publish)
            if where in published:
                taken = published[where]
                yield f"{key('tiers', i, 'publish')}: port {tier.publish} is taken by {taken}"
            published[where] = key("tiers", i, "publish")
    yield from _check_cycles(spec)


def _check_cycles(spec: EnvironmentSpec) -> Iterator[str]:
    upstream = {t.name: t.upstream for t in spec.tiers}
    for i, tier in enumerate(spec.tiers):
        seen = [tier.name]
        nxt = upstream.get(tier.name)
        while nxt is not None and nxt in upstream and nxt != tier.name:
            if nxt in seen:
                break
            seen.append(nxt)
            nxt = upstream[nxt]
        if nxt == tier.name and len(seen) > 1:
            chain = " -> ".join([*seen, tier.name])
            yield f"{key('tiers', i, 'upstream')}: traffic loops: {chain}"
            return
