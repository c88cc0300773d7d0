"""Native test-run records (test_run.start, test_run.end, test_result), without a database."""

from __future__ import annotations

from typing import Any

from ingest.formats.native import parse_records
from ingest.formats.records import TestResultRecord, TestRunRecord


def parse(*raws: dict[str, Any]) -> Any:
    return parse_records(list(raws), max_string_chars=10_000)


def test_a_run_and_its_results_parse_with_lax_values() -> None:
    parsed = parse(
        {
            "type": "test_run.start",
            "id": "r1",
            "run_id": "run-1",
            "tier": "Scenario",
            "suite": "arena",
            "commit": "abc",
            "branch": "main",
            "started_at": "2026-11-21T10:00:00Z",
        },
        {
            "type": "test_result",
            "id": "t1",
            "run_id": "run-1",
            "test_id": "tests/test_arena.py::test_judge",
            "outcome": "failed",
            "duration_ms": "1500",
            "metrics": {"tokens": "812", "cost": 0.01},
            "session_ids": "s-1",
        },
        {"type": "test_run.end", "id": "r2", "run_id": "run-1", "ended_at": 1795000000},
    )

    assert parsed.errors == []
    start, result, end = (record for _, record in parsed.records)
    assert isinstance(start, TestRunRecord)
    assert (start.action, start.tier, start.suite) == ("start", "scenario", "arena")
    assert isinstance(result, TestResultRecord)
    assert (result.outcome, result.duration_ms) == ("fail", 1500.0)
    assert result.metrics == {"tokens": 812.0, "cost": 0.01}
    assert result.session_ids == ("s-1",)
    assert isinstance(end, TestRunRecord)
    assert end.action == "end"


def test_bad_test_records_name_their_field_and_good_ones_are_kept() -> None:
    parsed = parse(
        {"type": "test_result", "id": "a", "run_id": "r", "test_id": "x", "outcome": "flaky"},
        {"type": "test_result", "id": "b", "run_id": "r", "outcome": "pass"},
        {"type": "test_result", "id": "c", "test_id": "x", "outcome": "pass"},
        {
            "type": "test_result",
            "id": "d",
            "run_id": "r",
            "test_id": "x",
            "outcome": "pass",
            "metrics": {"tokens": "many"},
        },
        {
            "type": "test_result",
            "id": "e",
            "run_id": "r",
            "test_id": "x",
            "outcome": "pass",
            "session_ids": [1, 2],
        },
        {"type": "test_run.start", "id": "f", "run_id": "r"},
        {"type": "test_result", "id": "g", "run_id": "r", "test_id": "ok", "outcome": "skip"},
    )

    assert [error.field for error in parsed.errors] == [
        "records[0].outcome",
        "records[1].test_id",
        "records[2].run_id",
        "records[3].metrics.tokens",
        "records[4].session_ids",
        "records[5].started_at",
    ]
    assert [index for index, _ in parsed.records] == [6]
