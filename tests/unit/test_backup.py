"""Backups without restic: grouping snapshots into backups, a clone's ports."""

from __future__ import annotations

import pytest

from virtstack import stackfiles
from virtstack.backup import _sets
from virtstack.errors import UsageError
from virtstack.restic import TAG_ENV, TAG_ID, Snapshot
from virtstack.restore import _unpublish


def snap(backup: str, path: str, time: str, *tags: str) -> Snapshot:
    return Snapshot(
        id=f"{backup}{path}", time=time, path=path, tags=[TAG_ENV + "dev", TAG_ID + backup, *tags]
    )


def test_a_backup_without_its_manifest_is_not_listed_but_kept_for_removal() -> None:
    found = [
        snap("a", "/declaration.yaml", "2024-01-01T00:00:00"),
        snap("a", "/dev_db-data_0.tar", "2024-01-01T00:00:01"),
        snap("a", "/manifest.json", "2024-01-01T00:00:02", "virtstack-added=42"),
        snap("b", "/declaration.yaml", "2024-01-02T00:00:00"),  # killed half-way
    ]
    done, partial = _sets(found)
    assert [b.id for b in done] == ["a"]
    assert done[0].added == 42
    assert done[0].files == ["declaration.yaml", "dev_db-data_0.tar"]
    assert [s.id for s in partial] == ["b/declaration.yaml"]


DECLARATION = """\
config:
  virtstack:target: container
  virtstack:registry:
    enabled: true
    port: 5000
  virtstack:tiers:
    - name: web
      image: x
      publish: 8080
    - name: app
      image: x
"""


def test_a_clone_publishes_only_the_ports_given() -> None:
    document = stackfiles.load(DECLARATION, "d")
    _unpublish(document, {"registry": 5001})
    config = stackfiles.plain(document)
    assert config["virtstack:registry"]["port"] == 5001
    assert all("publish" not in t for t in config["virtstack:tiers"])
    document = stackfiles.load(DECLARATION, "d")
    _unpublish(document, {"registry": 5001, "web": 8081})
    assert stackfiles.plain(document)["virtstack:tiers"][0]["publish"] == 8081


@pytest.mark.parametrize(
    ("publish", "words"),
    [({}, "--publish registry=PORT"), ({"registry": 1, "nope": 2}, "--publish nope")],
)
def test_a_clone_without_a_registry_port_or_with_an_unknown_tier_is_refused(
    publish: dict[str, int], words: str
) -> None:
    with pytest.raises(UsageError, match=words):
        _unpublish(stackfiles.load(DECLARATION, "d"), publish)
