"""Pulumi's engine events as virtstack reads them from a run's event log (JSON lines).

Only what virtstack uses, under the Automation API's names, parsed without Pulumi's SDK:
its import costs about 0.2 s of CPU, which the reader would take from Pulumi as it starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StepState:
    """A resource's state before or after a step."""

    type: str
    urn: str
    parent: str
    custom: bool | None
    """Whether a provider manages it (the engine leaves this out for components)."""
    inputs: Mapping[str, Any] | None
    outputs: Mapping[str, Any] | None
    retain_on_delete: bool | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepState:
        return cls(
            type=data.get("type", ""),
            urn=data.get("urn", ""),
            parent=data.get("parent", ""),
            custom=data.get("custom"),
            inputs=data.get("inputs"),
            outputs=data.get("outputs"),
            retain_on_delete=data.get("retainOnDelete"),
        )


@dataclass(frozen=True, slots=True)
class StepMetadata:
    """One step of a run: what it does (``op``: create, same, delete-replaced...) to what."""

    op: str
    urn: str
    type: str
    old: StepState | None
    new: StepState | None
    keys: list[str] | None
    """Properties whose change forces a replacement."""
    diffs: list[str] | None
    detailed_diff: Mapping[str, Any] | None
    """Changed property paths (their details are not read)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepMetadata:
        old, new = data.get("old"), data.get("new")
        return cls(
            op=data.get("op", ""),
            urn=data.get("urn", ""),
            type=data.get("type", ""),
            old=StepState.from_json(old) if old else None,
            new=StepState.from_json(new) if new else None,
            keys=data.get("keys"),
            diffs=data.get("diffs"),
            detailed_diff=data.get("detailedDiff"),
        )


@dataclass(frozen=True, slots=True)
class StepEvent:
    """A step about to run (``resourcePreEvent``) or done (``resOutputsEvent``)."""

    metadata: StepMetadata


@dataclass(frozen=True, slots=True)
class DiagnosticEvent:
    """A message of the program, a provider or the engine."""

    message: str
    color: str
    severity: str
    """``info``, ``warning``, ``error``, ``debug``..."""
    urn: str | None = None


@dataclass(frozen=True, slots=True)
class PreludeEvent:
    """The run's start: its config."""

    config: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """One event of a run; at most one of its kinds is set."""

    sequence: int
    timestamp: int
    diagnostic_event: DiagnosticEvent | None = None
    prelude_event: PreludeEvent | None = None
    resource_pre_event: StepEvent | None = None
    res_outputs_event: StepEvent | None = None
    res_op_failed_event: StepEvent | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EngineEvent:
        """An event as the event log writes it; kinds virtstack does not read are dropped."""
        diagnostic, prelude = data.get("diagnosticEvent"), data.get("preludeEvent")
        return cls(
            sequence=data.get("sequence", 0),
            timestamp=data.get("timestamp", 0),
            diagnostic_event=DiagnosticEvent(
                message=diagnostic.get("message", ""),
                color=diagnostic.get("color", ""),
                severity=diagnostic.get("severity", ""),
                urn=diagnostic.get("urn"),
            )
            if diagnostic
            else None,
            prelude_event=PreludeEvent(prelude.get("config", {})) if prelude else None,
            resource_pre_event=_step(data.get("resourcePreEvent")),
            res_outputs_event=_step(data.get("resOutputsEvent")),
            res_op_failed_event=_step(data.get("resOpFailedEvent")),
        )


def _step(data: Mapping[str, Any] | None) -> StepEvent | None:
    return StepEvent(StepMetadata.from_json(data.get("metadata", {}))) if data else None
