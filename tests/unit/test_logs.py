"""logs: which replicas a selector names, and merging their lines by time, prefixed."""

from __future__ import annotations

import sys

import pytest

from virtstack import logs
from virtstack.errors import UsageError
from virtstack.spec import parse_spec

SPEC = parse_spec(
    {
        "target": "container",
        "tiers": [
            {"name": "web", "image": "i", "replicas": 2},
            {"name": "db", "image": "i", "replicas": 1},
        ],
    }
)


def test_selectors() -> None:
    assert logs.replicas(SPEC, "e", "web") == ["e-web-0", "e-web-1"]
    assert logs.replicas(SPEC, "e", "e-db-0") == ["e-db-0"]
    assert logs.replicas(SPEC, "e", None) == ["e-web-0", "e-web-1", "e-db-0"]
    with pytest.raises(UsageError, match="no tier or replica 'api'"):
        logs.replicas(SPEC, "e", "api")


def _printer(*lines: str) -> list[str]:
    return [sys.executable, "-c", f"print({chr(10).join(lines)!r})"]


def test_merged_by_time_and_prefixed() -> None:
    sources = {
        "e-web-0": _printer("2026-01-01T00:00:01Z one", "2026-01-01T00:00:03Z three"),
        "e-web-10": _printer("2026-01-01T00:00:02Z two"),
    }
    assert list(logs.merged(sources)) == [
        "e-web-0  | one",
        "e-web-10 | two",
        "e-web-0  | three",
    ]
    assert list(logs.merged(sources, timestamps=True))[1] == "e-web-10 | 2026-01-01T00:00:02Z two"


def test_follow_yields_lines_as_they_come_until_every_source_ends() -> None:
    sources = {"a": _printer("t1 x"), "b": _printer("t2 y", "t3 z")}
    assert sorted(logs.merged(sources, follow=True)) == ["a | x", "b | y", "b | z"]
