"""Round-trip stack file edits: config paths, --set values, comments kept."""

from __future__ import annotations

import pytest
import yaml

from tests.unit.fixtures.cli_support import REPO
from virtstack import stackedit
from virtstack.errors import UsageError
from virtstack.spec import key
from virtstack.stackedit import ConfigPath


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
    assert stackedit.parse_path(text) == expected


def test_paths_print_like_spec_keys() -> None:
    # What --set accepts is what error messages print.
    assert str(stackedit.parse_path("tiers[0].health.path")) == key("tiers", 0, "health", "path")


@pytest.mark.parametrize(
    "text", ["", "tiers[x]", "tiers..a", "tiers[0]a", ".a", "a b", "tiers[-1]"]
)
def test_bad_paths(text: str) -> None:
    with pytest.raises(UsageError, match="not a config path"):
        stackedit.parse_path(text)


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
    _, parsed = stackedit.parse_assignment(f"tiers[0].x={raw}")
    assert parsed == value


def _doc() -> stackedit.CommentedMap:
    return stackedit.load((REPO / "stacks" / "Pulumi.dev.yaml").read_text(), "dev")


def test_set_creates_mappings_and_appends_one_item() -> None:
    doc = _doc()
    for text in ("images.lb=x:1", "tiers[3].name=cache", "tiers[3].image=cache:1", "vms[0].name=v"):
        stackedit.set_value(doc, *stackedit.parse_assignment(text))
    config = stackedit.plain(doc)
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
        stackedit.set_value(_doc(), *stackedit.parse_assignment(text))


@pytest.mark.parametrize("env", ["dev", "lab", "staging"])
def test_shipped_stack_files_round_trip_byte_for_byte(env: str) -> None:
    text = (REPO / "stacks" / f"Pulumi.{env}.yaml").read_text()
    assert stackedit.dump(stackedit.load(text, env)) == text


def test_an_edit_changes_one_line_and_keeps_comments() -> None:
    text = (REPO / "stacks" / "Pulumi.dev.yaml").read_text()
    doc = stackedit.load(text, "dev")
    stackedit.set_value(doc, stackedit.parse_path("tiers[2].replicas"), 1)
    stackedit.set_value(doc, stackedit.parse_path("tiers[0].replicas"), 4)
    before, after = text.splitlines(), stackedit.dump(doc).splitlines()
    assert len(before) == len(after)
    assert [(a, b) for a, b in zip(before, after, strict=True) if a != b] == [
        ("      replicas: 2", "      replicas: 4")
    ]
    assert yaml.safe_load("\n".join(after))["config"]["virtstack:tiers"][0]["replicas"] == 4


def test_not_a_stack_file() -> None:
    with pytest.raises(Exception, match=r"x\.yaml: a stack file is a mapping"):
        stackedit.load("- a\n- b\n", "x.yaml")
    with pytest.raises(Exception, match=r"x\.yaml: not valid YAML"):
        stackedit.load("config: [\n", "x.yaml")
