"""Test runs and their results (records test_run.start / test_run.end / test_result, JUnit XML)."""

from __future__ import annotations

from typing import Any

from ingest.formats.records import (
    ScoreRecord,
    TestResultRecord,
    TestRunRecord,
)
from ingest.models import (
    Project,
    TestResult,
    TestRun,
)

TestRecord = TestRunRecord | TestResultRecord


TEST_RUN_MERGE_FIELDS = (
    "tier",
    "suite",
    "commit",
    "branch",
    "environment",
    "source",
    "started_at",
    "ended_at",
    "metadata",
    "is_inferred",
)


TEST_RESULT_FIELDS = (
    "name",
    "tier",
    "outcome",
    "duration_ms",
    "started_at",
    "error_message",
    "error_trace",
    "metrics",
    "session_ids",
    "scores",
)


def _save_test_records(project: Project, records: list[TestRecord]) -> set[int]:
    """Upsert the runs these records name (inferred until their start arrives), then the results
    by (run, test_id), a later result for the same test replacing the earlier. Three queries."""
    if not records:
        return set()
    runs = _upsert_test_runs(project, records)
    results: dict[tuple[int, str], TestResult] = {}
    for record in records:
        if isinstance(record, TestResultRecord):
            run = runs[record.run_id]
            results[(run.pk, record.test_id)] = _result_row(project, run, record)
    TestResult.objects.bulk_create(
        list(results.values()),
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["run", "test_id"],
        update_fields=list(TEST_RESULT_FIELDS),
    )
    return {run.pk for run in runs.values()}


def _result_row(project: Project, run: TestRun, record: TestResultRecord) -> TestResult:
    return TestResult(
        project=project,
        run=run,
        test_id=record.test_id,
        name=record.name or record.test_id,
        tier=record.tier,
        outcome=record.outcome,
        duration_ms=record.duration_ms,
        started_at=record.started_at,
        error_message=record.error_message[:2000],
        error_trace=record.error_trace,
        metrics=record.metrics,
        session_ids=list(record.session_ids),
        scores=[_score_json(score) for score in record.scores],
    )


def _score_json(score: ScoreRecord) -> dict[str, Any]:
    return {
        "name": score.name,
        "data_type": score.data_type,
        "value": score.value,
        "label": score.label,
        "comment": score.comment,
    }


def _upsert_test_runs(project: Project, records: list[TestRecord]) -> dict[str, TestRun]:
    wanted = {record.run_id for record in records}
    stored = TestRun.objects.filter(project=project, external_id__in=wanted)
    runs = {run.external_id: run for run in stored}
    before = {run.external_id: _run_snapshot(run) for run in runs.values()}
    created = [
        TestRun(project=project, external_id=run_id, is_inferred=True)
        for run_id in wanted - runs.keys()
    ]
    runs.update({run.external_id: run for run in created})
    for record in records:
        run = runs[record.run_id]
        if isinstance(record, TestRunRecord):
            _merge_test_run(run, record)
        elif record.started_at is not None and (
            run.started_at is None or (run.is_inferred and record.started_at < run.started_at)
        ):
            run.started_at = record.started_at
    TestRun.objects.bulk_create(created)
    changed = [runs[key] for key, old in before.items() if _run_snapshot(runs[key]) != old]
    if changed:
        TestRun.objects.bulk_update(changed, TEST_RUN_MERGE_FIELDS)
    return runs


def _run_snapshot(run: TestRun) -> tuple[Any, ...]:
    return tuple(getattr(run, name) for name in TEST_RUN_MERGE_FIELDS)


def _merge_test_run(run: TestRun, record: TestRunRecord) -> None:
    if record.action == "start":
        run.is_inferred = False
    for name in ("tier", "suite", "commit", "branch", "environment", "source"):
        value = getattr(record, name)
        if value is not None:
            setattr(run, name, value)
    run.started_at = record.started_at or run.started_at
    run.ended_at = record.ended_at or run.ended_at
    if record.metadata is not None:
        run.metadata = {**(run.metadata or {}), **record.metadata}
