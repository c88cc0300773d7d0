"""Workflow runs merge commutatively (ingest/workflow_merge.py): pure, no database."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.formats.records import StepRecord, WorkflowRecord
from ingest.workflow_merge import merge_workflow_change, workflow_change

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@dataclass
class Row:
    is_inferred: bool = True
    started_at: datetime | None = None
    ended_at: datetime | None = None
    status: str = "running"
    name: str = ""
    result_summary: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    duration_ms: float | None = None


def step(seconds: int) -> StepRecord:
    return StepRecord(
        record_id=f"s{seconds}",
        session_id="trace",
        workflow_id="run",
        step_id=f"step{seconds}",
        action="end",
        at=T0 + timedelta(seconds=seconds),
    )


def end(seconds: int, status: str | None = None) -> WorkflowRecord:
    return WorkflowRecord(
        record_id=f"e{seconds}",
        session_id="trace",
        workflow_id="run",
        action="end",
        at=T0 + timedelta(seconds=seconds),
        status=status,
    )


def merged(batches: list[list[StepRecord | WorkflowRecord]]) -> Row:
    row = Row()
    for batch in batches:
        merge_workflow_change(row, workflow_change(batch))
    return row


def test_an_inferred_run_starts_at_its_earliest_step_and_ends_at_its_latest_end_in_any_order() -> (
    None
):
    records: list[StepRecord | WorkflowRecord] = [step(5), step(2), end(9, "fail"), step(7), end(4)]
    results = {
        (row.started_at, row.ended_at, row.status, row.duration_ms, row.is_inferred)
        for order in itertools.permutations(records)
        for row in [merged([[r] for r in order]), merged([list(order)])]
    }
    assert results == {(T0 + timedelta(seconds=2), T0 + timedelta(seconds=9), "fail", 7000.0, True)}


def test_a_started_run_keeps_its_start_when_earlier_steps_arrive() -> None:
    start = WorkflowRecord(
        record_id="w", session_id="trace", workflow_id="run", action="start", at=T0, name="plan"
    )
    row = merged([[step(3)], [start], [step(-5)], [end(10)]])
    assert (row.is_inferred, row.started_at, row.name, row.status) == (False, T0, "plan", "success")
    assert row.duration_ms == 10_000.0
