"""virtstack's reading of engine events agrees with Pulumi's SDK on every recorded event."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi.automation import EngineEvent as SdkEvent
from pulumi.automation import StepEventMetadata, StepEventStateMetadata

from tests.unit.fixtures.cli_support import FIXTURES
from virtstack.engineevents import EngineEvent, StepMetadata, StepState

RECORDED = sorted(FIXTURES.glob("recorded-*.json"))


def state(ours: StepState | None, sdk: StepEventStateMetadata | None) -> Any:
    if ours is None or sdk is None:
        return ours is None and sdk is None
    return (
        (ours.type, ours.urn, ours.parent, ours.custom, ours.retain_on_delete)
        == (sdk.type, sdk.urn, sdk.parent, sdk.custom, sdk.retain_on_delete)
        and ours.inputs == sdk.inputs
        and ours.outputs == sdk.outputs
    )


def step(ours: StepMetadata, sdk: StepEventMetadata) -> bool:
    return (
        (ours.op, ours.urn, ours.type, ours.keys, ours.diffs)
        == (sdk.op.value, sdk.urn, sdk.type, sdk.keys, sdk.diffs)
        and list(ours.detailed_diff or {}) == list(sdk.detailed_diff or {})
        and state(ours.old, sdk.old)
        and state(ours.new, sdk.new)
    )


@pytest.mark.parametrize("fixture", RECORDED, ids=[f.stem for f in RECORDED])
def test_each_recorded_event_reads_as_the_sdk_reads_it(fixture: Any) -> None:
    records = json.loads(fixture.read_text())
    kinds = set()
    for record in records:
        ours, sdk = EngineEvent.from_json(record), SdkEvent.from_json(record)
        assert (ours.sequence, ours.timestamp) == (sdk.sequence, sdk.timestamp)
        for kind in ("resource_pre_event", "res_outputs_event", "res_op_failed_event"):
            mine, theirs = getattr(ours, kind), getattr(sdk, kind)
            assert (mine is None) == (theirs is None), (kind, record)
            if mine is not None:
                kinds.add(kind)
                assert step(mine.metadata, theirs.metadata), record
        if sdk.diagnostic_event is not None:
            kinds.add("diagnostic_event")
            d, s = ours.diagnostic_event, sdk.diagnostic_event
            assert d is not None
            assert (d.message, d.color, d.severity, d.urn) == (
                s.message, s.color, s.severity, s.urn,
            )  # fmt: skip
        if sdk.prelude_event is not None:
            assert ours.prelude_event is not None
            assert ours.prelude_event.config == sdk.prelude_event.config
    assert kinds >= {"resource_pre_event", "diagnostic_event"}  # the fixture was read
