"""Round-trip stack file edits: config paths, --set values, comments kept."""

from __future__ import annotations

import pytest

from tests.unit.fixtures.cli_support import REPO
from virtstack import stackfiles
from virtstack.configkeys import key
from virtstack.errors import (
    BadInputError,
    EnvironmentNotFoundError,
    StackFileError,
    UsageError,
)
from virtstack.stackfiles import ConfigPath


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tiers[0].replicas", ConfigPath("virtstack:tiers", (0, "replicas"))),
        ("registry.enabled", ConfigPath("virtstack:registry", ("enabled",))),
        ("virtstack:engine.uri", ConfigPath("virtstack:engine", ("uri",))),
        ("docker:host", ConfigPath("docker:host", ())),
        ("tiers[1].env.MODE_X", ConfigPath("virtstack:tiers", (1, "env", "MODE_X"))),
    ],
)
def test_paths(text: str, expected: ConfigPath) -> None:
    assert stackfiles.parse_path(text) == expected


def test_paths_print_like_spec_keys() -> None:
    # What --set accepts is what error messages print.
    assert str(stackfiles.parse_path("tiers[0].health.path")) == key("tiers", 0, "health", "path")


@pytest.mark.parametrize(
    "text", ["", "tiers[x]", "tiers..a", "tiers[0]a", ".a", "a b", "tiers[-1]"]
)
def test_bad_paths(text: str) -> None:
    with pytest.raises(UsageError, match="not a config path"):
        stackfiles.parse_path(text)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("3", 3),
        ("true", True),
        ("null", None),
        ("", None),
        ("a=b", "a=b"),
        ("[a, 'b c']", ["a", "b c"]),
    ],
)
def test_set_values_are_yaml(raw: str, value: object) -> None:
    _, parsed = stackfiles.parse_assignment(f"tiers[0].x={raw}")
    assert parsed == value


def _doc() -> stackfiles.CommentedMap:
    return stackfiles.load((REPO / "stacks" / "Pulumi.dev.yaml").read_text(), "dev")


def test_set_creates_mappings_and_appends_one_item() -> None:
    doc = _doc()
    for text in ("images.lb=x:1", "tiers[3].name=cache", "tiers[3].image=cache:1", "vms[0].name=v"):
        stackfiles.set_value(doc, *stackfiles.parse_assignment(text))
    config = stackfiles.plain(doc)
    assert config["virtstack:images"] == {"lb": "x:1"}
    assert config["virtstack:tiers"][3] == {"name": "cache", "image": "cache:1"}
    assert config["virtstack:vms"] == [{"name": "v"}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tiers[5].name=x", r"virtstack:tiers\[5\]: index out of range \(3 items\)"),
        ("tiers.name=x", "virtstack:tiers: is not a mapping"),
        ("registry[0]=x", "virtstack:registry: is not a list"),
        ("tiers[0].replicas.x=1", r"virtstack:tiers\[0\].replicas: is not a mapping"),
    ],
)
def test_set_errors_name_the_path(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        stackfiles.set_value(_doc(), *stackfiles.parse_assignment(text))


@pytest.mark.parametrize("env", ["dev", "lab", "staging"])
def test_shipped_stack_files_round_trip_byte_for_byte(env: str) -> None:
    text = (REPO / "stacks" / f"Pulumi.{env}.yaml").read_text()
    assert stackfiles.dump(stackfiles.load(text, env)) == text


def test_an_edit_changes_one_line_and_keeps_comments() -> None:
    text = (REPO / "stacks" / "Pulumi.dev.yaml").read_text()
    doc = stackfiles.load(text, "dev")
    stackfiles.set_value(doc, stackfiles.parse_path("tiers[2].replicas"), 1)
    stackfiles.set_value(doc, stackfiles.parse_path("tiers[0].replicas"), 4)
    before, after = text.splitlines(), stackfiles.dump(doc).splitlines()
    assert len(before) == len(after)
    assert [(a, b) for a, b in zip(before, after, strict=True) if a != b] == [
        ("      replicas: 2", "      replicas: 4")
    ]
    reread = stackfiles.plain(stackfiles.load("\n".join(after), "f"))
    assert reread["virtstack:tiers"][0]["replicas"] == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", r"^x\.yaml: a stack file is a mapping with a config: key$"),
        ("config: [\n", r"^x\.yaml:2: not valid YAML \(expected the node content"),
        ("a: 1\na: 2\n", r"^x\.yaml:2: not valid YAML \(found duplicate key"),
        ("config: [1]\n", r"^x\.yaml:1: config: is not a mapping$"),
        ("config:\n  a: 1\n  7: x\n", r"^x\.yaml:3: config key 7 is not a string$"),
    ],
)
def test_a_broken_stack_file_names_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(StackFileError, match=message) as caught:
        stackfiles.load(text, "x.yaml")
    assert isinstance(caught.value, BadInputError)


def test_no_config_is_an_empty_one() -> None:
    assert stackfiles.plain(stackfiles.load("", "x.yaml")) == {}
    assert stackfiles.plain(stackfiles.load("encryptionsalt: s\n", "x.yaml")) == {}


def test_config_is_plain_data() -> None:
    config = stackfiles.plain(stackfiles.load("config:\n  a: {b: [1, 0x10, 1.5, x]}\n", "f"))
    assert config == {"a": {"b": [1, 16, 1.5, "x"]}}
    assert type(config["a"]) is dict
    assert [type(v) for v in config["a"]["b"]] == [int, int, float, str]


def test_a_missing_environment_lists_the_known_ones() -> None:
    with pytest.raises(EnvironmentNotFoundError, match=r"no environment 'prod' \(environments: "):
        stackfiles.read_config(REPO, "prod")
