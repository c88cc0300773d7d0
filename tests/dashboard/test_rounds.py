"""dashboard.rounds: each round gets its duration and its user message and reply. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dashboard.rounds import rounds_with_messages

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
A, B = "a" * 32, "b" * 32


def round_row(trace_id: str, *, at: float | None = 0, seconds: float = 2, **extra: Any) -> Any:
    """A row as analytics.queries.session_rounds returns it; `at` is seconds after T0."""
    started = None if at is None else T0 + timedelta(seconds=at)
    return {
        "trace_id": trace_id,
        "round_index": None,
        "started_at": started,
        "ended_at": None if started is None else started + timedelta(seconds=seconds),
        "span_count": 3,
        "error_count": 0,
    } | extra


def test_rounds_keep_the_given_order_and_count_from_one() -> None:
    rounds = rounds_with_messages([round_row(B, round_index=0), round_row(A, round_index=1)], [])

    assert [(r.number, r.trace_id, r.round_index) for r in rounds] == [(1, B, 0), (2, A, 1)]
    assert rounds[0].duration_ms == 2000.0
    assert rounds[0].short_trace_id == "bbbbbbbb"


def test_a_rounds_message_is_its_first_user_line_and_its_reply_the_last_assistant_line() -> None:
    lines = [
        (A, "user", "question"),
        (A, "user", "follow-up"),
        (A, "assistant", "draft"),
        (A, "tool", "search"),
        (A, "assistant", "final"),
        ("", "assistant", "no trace"),
        (B, "system", "be brief"),
    ]

    first, second = rounds_with_messages([round_row(A), round_row(B)], lines)

    assert (first.user_text, first.reply_text) == ("question", "final")
    assert (second.user_text, second.reply_text) == ("", "")


def test_a_round_without_spans_has_no_start_or_duration() -> None:
    (only,) = rounds_with_messages([round_row(A, at=None, span_count=0)], [])

    assert (only.started_at, only.duration_ms, only.span_count) == (None, None, 0)
