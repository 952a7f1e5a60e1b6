"""Pulumi's engine events as virtstack reads them from a run's event log (JSON lines).

Only what virtstack uses, under the Automation API's names, parsed without Pulumi's SDK:
its import costs about 0.2 s of CPU, which the reader would take from Pulumi as it starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


@dataclass(frozen=True, slots=True)
class StepState:
    """A resource's state before or after a step."""

    type: str = ""
    urn: str = ""
    parent: str = ""
    custom: bool | None = None
    """Whether a provider manages it (the engine leaves this out for components)."""
    inputs: Mapping[str, Any] | None = None
    outputs: Mapping[str, Any] | None = None
    retain_on_delete: bool | None = None


@dataclass(frozen=True, slots=True)
class StepMetadata:
    """One step of a run: what it does (``op``: create, same, delete-replaced...) to what."""

    op: str = ""
    urn: str = ""
    type: str = ""
    old: StepState | None = None
    new: StepState | None = None
    keys: list[str] | None = None
    """Properties whose change forces a replacement."""
    diffs: list[str] | None = None
    detailed_diff: Mapping[str, Any] | None = None
    """Changed property paths (their details are not read)."""


@dataclass(frozen=True, slots=True)
class StepEvent:
    """A step about to run (``resourcePreEvent``), done (``resOutputsEvent``) or failed."""

    metadata: StepMetadata


@dataclass(frozen=True, slots=True)
class DiagnosticEvent:
    """A message of the program, a provider or the engine."""

    message: str = ""
    color: str = ""
    severity: str = ""
    """``info``, ``warning``, ``error``, ``debug``..."""
    urn: str | None = None


@dataclass(frozen=True, slots=True)
class PreludeEvent:
    """The run's start: its config."""

    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """One event of a run; at most one of its kinds is set."""

    sequence: int = 0
    timestamp: int = 0
    diagnostic_event: DiagnosticEvent | None = None
    prelude_event: PreludeEvent | None = None
    resource_pre_event: StepEvent | None = None
    res_outputs_event: StepEvent | None = None
    res_op_failed_event: StepEvent | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EngineEvent:
        """An event as the event log writes it; kinds virtstack does not read are dropped."""
        diagnostic, prelude = data.get("diagnosticEvent"), data.get("preludeEvent")
        return _read(
            cls,
            data,
            diagnostic_event=_read(DiagnosticEvent, diagnostic) if diagnostic else None,
            prelude_event=_read(PreludeEvent, prelude) if prelude else None,
            resource_pre_event=_step(data.get("resourcePreEvent")),
            res_outputs_event=_step(data.get("resOutputsEvent")),
            res_op_failed_event=_step(data.get("resOpFailedEvent")),
        )


def _step(data: Mapping[str, Any] | None) -> StepEvent | None:
    if not data:
        return None
    metadata = data.get("metadata", {})
    old, new = metadata.get("old"), metadata.get("new")
    return StepEvent(
        _read(
            StepMetadata,
            metadata,
            old=_read(StepState, old) if old else None,
            new=_read(StepState, new) if new else None,
        )
    )


def _read(cls: type[T], data: Mapping[str, Any], **given: Any) -> T:
    """A dataclass from its JSON form: each field not ``given`` from its camelCase key."""
    values = dict(given)
    for f in fields(cls):
        if f.name not in given:
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            values[f.name] = data.get(_camel(f.name), default)
    return cls(**values)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)
