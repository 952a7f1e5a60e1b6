"""The built provider plugins speak the pinned Python SDKs' language.

Our provider mains map Terraform types and attributes to Pulumi tokens and property
names themselves (Pulumi's provider modules are not on the Go proxy). A property the
SDK sends that the plugin does not know would be dropped, so every input property of
every resource in pulumi_docker and pulumi_libvirt, nested types included, must be
one the plugin reports (``-pulumi-names``).
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import typing
from pathlib import Path

import pulumi
import pytest
from pulumi import _types

from tests.engine.harness import run

pytestmark = pytest.mark.engine

PLUGINS = {"pulumi_docker": "docker", "pulumi_libvirt": "libvirt"}


def plugin(home: Path, name: str) -> Path:
    [binary] = home.glob(f"plugins/resource-{name}-v*/pulumi-resource-{name}")
    return binary


def sdk_version(package: str) -> str:
    module = importlib.import_module(package)
    meta = json.loads((Path(module.__file__).parent / "pulumi-plugin.json").read_text())
    return str(meta["version"])


def input_classes(hint: object) -> list[type]:
    """The ``@pulumi.input_type`` classes inside a type hint (Optional, Sequence, Input...)."""
    if isinstance(hint, type) and _types.is_input_type(hint):
        return [hint]
    found = []
    for arg in typing.get_args(hint):
        found += input_classes(arg)
    return found


def sdk_tree(cls: type, seen: frozenset[type] = frozenset()) -> dict[str, object]:
    """Pulumi property names of an input type, with those of nested input types."""
    tree: dict[str, object] = {}
    for pulumi_name, hint in _types.input_type_types(cls).items():
        nested = [c for c in input_classes(hint) if c not in seen]
        tree[pulumi_name] = sdk_tree(nested[0], seen | {cls}) if nested else None
    return tree


def missing(sdk: dict[str, object], provider: dict[str, object] | None, path: str) -> list[str]:
    problems = []
    for name, sub in sdk.items():
        if provider is None or name not in provider:
            problems.append(f"{path}.{name}")
        elif isinstance(sub, dict) and isinstance(provider[name], dict):
            problems += missing(sub, provider[name], f"{path}.{name}")
    return problems


def resource_args(package: str) -> dict[str, type]:
    """Resource token -> its Args class, for every resource of an SDK package."""
    module = importlib.import_module(package)
    found = {}
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if not issubclass(cls, pulumi.CustomResource) or cls.__module__.split(".")[0] != package:
            continue
        token = re.search(rf"'({PLUGINS[package]}:[^']+)'", inspect.getsource(cls))
        args = getattr(inspect.getmodule(cls), f"{cls.__name__}Args", None)
        if token and args is not None:
            found[token.group(1)] = args
    return found


@pytest.mark.parametrize("package", sorted(PLUGINS))
def test_plugin_reports_the_sdk_version(toolchain, package):
    binary = plugin(Path(toolchain["PULUMI_HOME"]), PLUGINS[package])
    assert run(str(binary), "-version").stdout.strip() == sdk_version(package)


@pytest.mark.parametrize("package", sorted(PLUGINS))
def test_every_sdk_input_is_known_to_the_plugin(toolchain, package):
    binary = plugin(Path(toolchain["PULUMI_HOME"]), PLUGINS[package])
    names = json.loads(run(str(binary), "-pulumi-names").stdout)

    resources = resource_args(package)
    assert resources, f"no resources found in {package}"
    problems = []
    for token, args in sorted(resources.items()):
        if token == "docker:index/image:Image":
            continue  # pulumi-docker's own build resource, not a Terraform one
        if token not in names["resources"]:
            problems.append(f"{token}: unknown to the plugin")
            continue
        problems += missing(sdk_tree(args), names["resources"][token], token)
    assert not problems, "\n".join(problems)


def test_sdk_types_are_walked():
    # The walk must see nested types, or the check above would pass vacuously.
    docker = importlib.import_module("pulumi_docker")
    tree = sdk_tree(docker.ContainerArgs)
    assert isinstance(tree["ports"], dict)
    assert "internal" in tree["ports"]
    assert isinstance(tree["networksAdvanced"], dict)
