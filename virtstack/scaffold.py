"""New environments: a stack file from templates/stacks/<target>.yaml.j2 or another env.

Everything is validated (spec and target) before a file is written.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from ruamel.yaml.comments import CommentedMap
from virtstack_components.templating import render

from virtstack import netranges, stackfiles
from virtstack.configkeys import NAMESPACE
from virtstack.environment import Environment, check_config
from virtstack.errors import EnvironmentExistsError, UsageError, VirtstackError
from virtstack.spec import Name
from virtstack.stackfiles import environments, load_stack, read_config, stack_file

# New VM environments get the first free 192.168.x.0/24 from x = 150, clear of the other
# environments' networks; containers the first free host ports.
_FIRST_PUBLISH = 8080
_FIRST_REGISTRY = 5000
# Config keys kept from the file a --force overwrites: the stack's encryption salt and
# its secrets stay valid only together.
_SALT = "encryptionsalt"


@dataclass(frozen=True, kw_only=True)
class Scaffold:
    """A new environment's stack file, checked and ready to write."""

    env: str
    path: Path
    text: str
    environment: Environment
    origin: str
    """Where the config came from: a template or another environment."""


def template_name(target: str) -> str:
    """The template a target's new environments start from."""
    return f"stacks/{target}.yaml.j2"


def check_name(env: str) -> None:
    """Environment names prefix every engine name: they must be DNS labels."""
    try:
        TypeAdapter(Name).validate_python(env)
    except ValidationError:
        raise UsageError(
            f"{env!r}: environment names are DNS labels (lowercase letters, digits and '-', "
            "starting with a letter, at most 32 characters)"
        ) from None


def prepare(
    project: Path,
    env: str,
    *,
    target: str | None,
    source: str | None = None,
    sets: Sequence[str] = (),
    force: bool = False,
) -> Scaffold:
    """The stack file ``new`` would write, validated; nothing is written."""
    check_name(env)
    path = stack_file(project, env)
    if path.exists() and not force:
        raise EnvironmentExistsError(f"{path}: environment {env!r} exists (--force overwrites it)")
    assignments = [stackfiles.parse_assignment(s) for s in sets]
    if source is not None:
        document, origin = _copy(project, source, env, target), f"a copy of {source}"
    elif target is not None:
        document, origin = (
            _from_template(project, env, target),
            f"templates/{template_name(target)}",
        )
    else:
        raise UsageError(f"new {env}: --target or --from is required")
    for assignment_path, value in assignments:
        stackfiles.set_value(document, assignment_path, value)
    if path.exists():
        _keep_secrets(stackfiles.load_file(path), document)
    environment = check_config(stackfiles.plain(document))
    text = stackfiles.dump(document)
    if source is not None:
        text = f"# {env}: created by `virtstack new {env} --from {source}`.\n{text}"
    return Scaffold(env=env, path=path, text=text, environment=environment, origin=origin)


def write(scaffold: Scaffold) -> None:
    """Write the stack file."""
    scaffold.path.parent.mkdir(parents=True, exist_ok=True)
    scaffold.path.write_text(scaffold.text)


def _from_template(project: Path, env: str, target_name: str) -> CommentedMap:
    from virtstack import targets  # imports Pulumi

    target = targets.get(target_name)
    cidrs, ports = taken(project, env)
    text = render(
        template_name(target.name),
        env=env,
        target=target,
        cidr=_free_network(cidrs),
        publish_port=_free_port(_FIRST_PUBLISH, ports),
        registry_port=_free_port(_FIRST_REGISTRY, ports),
    )
    return stackfiles.load(text, f"templates/{template_name(target.name)}")


def _copy(project: Path, source: str, env: str, target: str | None) -> CommentedMap:
    document = load_stack(project, source)  # a missing source: EnvironmentNotFoundError
    # Secrets are encrypted with the source stack's salt: the new stack makes its own.
    document.pop(_SALT, None)
    config = document["config"]
    for name in [k for k, v in config.items() if _is_secure(v)]:
        del config[name]
    if target is not None:
        config[f"{NAMESPACE}:target"] = target
    return document


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _keep_secrets(old: CommentedMap, new: CommentedMap) -> None:
    """Carry the overwritten stack's salt and encrypted values into its new file."""
    if _SALT in old:
        new[_SALT] = old[_SALT]
    for name, value in old["config"].items():
        if _is_secure(value) and name not in new["config"]:
            new["config"][name] = value


def taken(project: Path, env: str) -> tuple[list[ipaddress.IPv4Network], set[int]]:
    """Networks and host ports the project's other environments already use."""
    cidrs: list[ipaddress.IPv4Network] = []
    ports: set[int] = set()
    for other in environments(project):
        if other == env:
            continue
        try:
            config = read_config(project, other)
        except VirtstackError:
            continue  # a broken neighbour is its own problem, not this one's
        for net in config.get(f"{NAMESPACE}:networks") or []:
            try:
                cidrs.append(ipaddress.IPv4Network(str(net.get("cidr"))))
            except (ValueError, AttributeError):
                continue
        registry = config.get(f"{NAMESPACE}:registry") or {}
        if isinstance(registry, dict) and registry.get("enabled"):
            ports.add(int(registry.get("port", _FIRST_REGISTRY)))
        for tier in config.get(f"{NAMESPACE}:tiers") or []:
            if isinstance(tier, dict) and tier.get("publish"):
                ports.add(int(tier["publish"]))
    return cidrs, ports


def _free_network(taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    free = netranges.free_network(taken)
    if free is None:
        raise UsageError("no free private /24 network left: set networks[0].cidr with --set")
    return free


def _free_port(first: int, taken: set[int]) -> int:
    return next(port for port in itertools.count(first) if port not in taken)
