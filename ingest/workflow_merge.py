"""How a batch's workflow and step records merge into the row of the workflow run they name.
Pure.

As for sessions (session_merge.py), a batch's records are folded into one WorkflowChange per run
(workflow_change), which is merged into the row as it is (merge_workflow_change; on PostgreSQL
the store does the same in one UPDATE, store.workflows._update_stored_workflows), so concurrent
batches of one run, such as one-span requests of one trace, keep each other's changes. The rules:

- start: a workflow start ends the inference (`is_inferred`) and sets the start (the last said).
- until then the run starts at the earliest step record seen in it (LEAST).
- end: the end with the latest time wins (an end without a time is taken only when the run has
  none), with its status (success when it says none).
- name and result summary: the last said; metadata keys merge, the later value per key winning.
- duration: from the merged start and end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ingest.formats.records import StepRecord, WorkflowRecord

DEFAULT_END_STATUS = "success"


@dataclass(slots=True)
class WorkflowChange:
    """What one batch says about one workflow run. None and "" mean "not said"."""

    is_started: bool = False
    started_at: datetime | None = None
    earliest: datetime | None = None  # the earliest step record: the start while inferred
    has_end: bool = False
    ended_at: datetime | None = None
    status: str = ""
    name: str = ""
    result_summary: str | None = None
    metadata: dict[str, Any] | None = None


def workflow_change(records: Iterable[WorkflowRecord | StepRecord]) -> WorkflowChange:
    """The records of one run, in batch order, folded into one change."""
    change = WorkflowChange()
    for record in records:
        if isinstance(record, StepRecord):
            if record.at is not None and (change.earliest is None or record.at < change.earliest):
                change.earliest = record.at
            continue
        if record.action == "start":
            change.is_started, change.started_at = True, record.at
        elif _takes_end(change.has_end, change.ended_at, record.at):
            change.has_end, change.ended_at = True, record.at
            change.status = record.status or DEFAULT_END_STATUS
        if record.name:
            change.name = record.name
        if record.result_summary is not None:
            change.result_summary = record.result_summary
        if record.metadata is not None:
            change.metadata = {**(change.metadata or {}), **record.metadata}
    return change


def _takes_end(has_end: bool, ended_at: datetime | None, at: datetime | None) -> bool:
    return not has_end or ended_at is None or (at is not None and at >= ended_at)


class WorkflowRow(Protocol):
    is_inferred: bool
    started_at: datetime | None
    ended_at: datetime | None
    status: str
    name: str
    result_summary: str
    metadata: dict[str, Any]
    duration_ms: float | None


def merge_workflow_change(row: WorkflowRow, change: WorkflowChange) -> None:
    """Merge `change` into `row` in place, by the rules in the module docstring."""
    if change.is_started:
        row.is_inferred, row.started_at = False, change.started_at
    elif change.earliest is not None and (
        row.started_at is None or (row.is_inferred and change.earliest < row.started_at)
    ):
        row.started_at = change.earliest
    if change.has_end and (
        row.ended_at is None or (change.ended_at is not None and change.ended_at >= row.ended_at)
    ):
        row.ended_at, row.status = change.ended_at, change.status
    if change.name:
        row.name = change.name
    if change.result_summary is not None:
        row.result_summary = change.result_summary
    if change.metadata is not None:
        row.metadata = {**(row.metadata or {}), **change.metadata}
    row.duration_ms = (
        (row.ended_at - row.started_at).total_seconds() * 1000
        if row.started_at is not None and row.ended_at is not None
        else None
    )
