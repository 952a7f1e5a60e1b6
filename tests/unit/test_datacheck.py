"""The environment's data on the engine against the spec, before an up changes anything."""

from __future__ import annotations

from pathlib import Path

import yaml

from virtstack import datacheck
from virtstack.engines.base import DataItem
from virtstack.spec import parse_spec

REPO = Path(__file__).resolve().parents[2]
DEV = parse_spec(yaml.safe_load((REPO / "stacks" / "Pulumi.dev.yaml").read_text())["config"])
GIB = 1024**3


def problems(items: list[DataItem], **kw: bool) -> list[str]:
    return list(datacheck.problems(DEV, "dev", items, **kw))


def test_the_specs_own_data_passes_kept_replicas_too() -> None:
    items = [
        DataItem(name="dev_db-data_0", owned=True),
        DataItem(name="dev_db-data_5", owned=True),  # kept after a scale-down
        DataItem(name="dev_registry-data", owned=True),
    ]
    assert problems(items) == []


def test_data_of_a_renamed_volume_is_refused_unless_kept_on_purpose() -> None:
    items = [DataItem(name="dev_old-data_0", owned=True)]
    [problem] = problems(items)
    assert problem.startswith("dev: dev_old-data_0 holds data the spec no longer declares")
    assert "--keep-orphaned-data" in problem
    assert problems(items, keep_orphans=True) == []


def test_data_under_a_version_0_1_name_must_be_migrated_first() -> None:
    [problem] = problems([DataItem(name="dev-db-data-0", owned=False)])
    assert "dev-db-data-0 under virtstack 0.1's name" in problem
    assert "virtstack migrate-data dev" in problem
    migrated = [
        DataItem(name="dev-db-data-0", owned=False),
        DataItem(name="dev_db-data_0", owned=True),
    ]
    assert problems(migrated) == []


def test_another_environments_unlabelled_volume_is_not_ours() -> None:
    # `dev-db` with volume `data` in 0.1 made `dev-db-data-0`: not dev's `db-data` replica 0?
    # It is, by name alone; 0.1's names were ambiguous, which is why they are only reported.
    assert problems([DataItem(name="dev-other-thing", owned=False)]) == []


def test_a_data_disk_of_another_size_is_refused_naming_the_key() -> None:
    [problem] = problems([DataItem(name="dev_db-data_0", owned=True, size_bytes=2 * GIB)])
    assert problem.startswith(
        "virtstack:tiers[2].volume.size_gib: data disk dev_db-data_0 is 2 GiB"
    )
    assert problems([DataItem(name="dev_db-data_0", owned=True, size_bytes=GIB)]) == []


def test_a_data_disk_under_its_old_name_in_the_data_pool_is_reported_as_old() -> None:
    [problem] = problems([DataItem(name="dev-db-data-0", owned=True, size_bytes=GIB)])
    assert "under virtstack 0.1's name" in problem
