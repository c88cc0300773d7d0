"""analytics.summaries: a session's counts, tokens, cost, duration and error flag. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics.summaries import SPAN_COLUMNS, is_follow_up_due, session_summaries

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def span(session_id: int, kind: str, **fields: object) -> tuple[object, ...]:
    values: dict[str, object] = {"status": "ok", "model": None, "prompt_tokens": None}
    values |= {"completion_tokens": None, "cost": None, "started_at": T0, "ended_at": None}
    values |= {"session_id": session_id, "kind": kind} | fields
    return tuple(values[column] for column in SPAN_COLUMNS)


def summaries(
    spans: list[tuple[object, ...]], sessions: list[tuple[object, ...]]
) -> dict[int, dict[str, Any]]:
    return session_summaries(spans, sessions, {1: ["planner", "coder", "planner"]})


def test_a_session_sums_its_calls_and_counts_each_kind_of_error() -> None:
    spans = [
        span(1, "llm", model="gpt-4o", prompt_tokens=100, completion_tokens=20, cost=0.0015),
        span(1, "llm", model="claude", prompt_tokens=50, cost=0.0007, status="error"),
        span(1, "tool", cost=None, ended_at=T0 + timedelta(seconds=3)),
        span(1, "error", model=""),
        span(2, "action", ended_at=T0 + timedelta(seconds=9)),
    ]

    found = summaries(spans, [(1, T0, T0 + timedelta(seconds=2)), (2, T0, None)])

    assert found[1] == {
        "event_count": 4,
        "llm_count": 2,
        "tool_count": 1,
        "error_count": 2,  # the failed call and the error event
        "has_errors": True,
        "prompt_tokens": 150,
        "completion_tokens": 20,
        "cost": 0.0022,
        "duration_ms": 2000.0,  # the session's own end wins over its spans'
        "models_used": ["claude", "gpt-4o"],
        "agent_names": ["coder", "planner"],
    }
    # A session that has not ended runs to its last span's end.
    assert found[2]["duration_ms"] == 9000.0
    assert found[2]["has_errors"] is False


def test_a_session_without_spans_gets_zeros_and_a_running_one_its_last_start() -> None:
    spans = [span(1, "llm", started_at=T0 + timedelta(seconds=5))]

    found = summaries(spans, [(1, T0, None), (3, T0, None)])

    assert found[1]["duration_ms"] == 5000.0  # no span ended: the latest start
    assert found[3] | {"agent_names": []} == {
        "event_count": 0,
        "llm_count": 0,
        "tool_count": 0,
        "error_count": 0,
        "has_errors": False,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost": 0.0,
        "duration_ms": None,
        "models_used": [],
        "agent_names": [],
    }


@pytest.mark.parametrize(
    ("summarized", "now", "is_due"),
    [
        (0, 3, True),  # never summarised
        (63, 64, True),  # a small session: after every batch
        (64, 64, False),  # nothing new (an update of a span waits for the sweep)
        (100, 124, False),  # grown by 24 %
        (100, 125, True),  # by a quarter
        (1000, 990, True),  # spans gone (deleted, moved to another session)
    ],
)
def test_a_long_session_is_followed_up_again_once_it_has_grown_by_a_quarter(
    summarized: int, now: int, is_due: bool
) -> None:
    due = is_follow_up_due(summarized, now, every_batch_below=64, growth_percent=25)

    assert due is is_due
