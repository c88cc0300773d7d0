"""The merge rules of a message's lifecycle records (ingest/lifecycle.py): pure, no database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from ingest.formats.records import AgentMessageRecord
from ingest.lifecycle import MessageState, content_preview, merge_message

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def stage(name: str, seconds: float, **fields: object) -> AgentMessageRecord:
    return AgentMessageRecord(
        record_id=f"{name}-{seconds}",
        session_id="s1",
        message_id="m1",
        stage=name,
        at=T0 + timedelta(seconds=seconds),
        **fields,  # type: ignore[arg-type]
    )


def merged(records: list[AgentMessageRecord]) -> MessageState:
    state = MessageState()
    for record in records:
        state = merge_message(state, record)
    return state


HAPPY = [
    stage("created", 0, sender="planner", receivers=("coder",), content="write it"),
    stage("sent", 0.5),
    stage("delivered", 1.25),
    stage("received", 1.5),
    stage("processed", 4.5),
]


def test_a_full_lifecycle_gives_status_and_stage_timings() -> None:
    state = merged(HAPPY)
    assert state.status == "processed"
    assert state.started_at == T0
    assert state.delivery_ms == 750
    assert state.processing_ms == 3000
    assert state.end_to_end_ms == 4500
    assert state.sender == "planner"
    assert state.receivers == ["coder"]
    assert state.preview == "write it"
    assert state.attempt_count == 1
    assert state.dead_letter_state == ""


def test_every_arrival_order_gives_the_same_state() -> None:
    expected = merged(HAPPY)
    for order in itertools.permutations(HAPPY):
        assert merged(list(order)) == expected


def test_a_retried_message_that_got_through_is_recovered_not_dead() -> None:
    records = [
        stage("sent", 0, sender="a", receivers=("b",)),
        stage("failed", 1, error_type="Timeout", error_message="no ack"),
        stage("retried", 2, attempt=2),
        stage("delivered", 3),
        stage("processed", 4),
    ]
    assert merged(records[:2]).dead_letter_state == "open"
    state = merged(records)
    assert state.status == "processed"
    assert state.dead_letter_state == "recovered"
    assert state.retry_count == 1
    assert state.attempt_count == 2
    assert state.error_type == "Timeout"
    assert state.last_attempt_at == T0 + timedelta(seconds=2)
    for order in itertools.permutations(records):
        assert merged(list(order)) == state


def test_the_latest_failure_names_the_error_whatever_the_order() -> None:
    first = stage("failed", 1, error_type="Timeout", error_message="no ack")
    last = stage("dead_lettered", 5, error_type="MaxRetries", error_message="gave up")
    for records in ([first, last], [last, first]):
        state = merged([stage("sent", 0), *records])
        assert (state.status, state.error_type, state.error_message) == (
            "dead_lettered",
            "MaxRetries",
            "gave up",
        )


def test_a_requeued_dead_letter_stays_requeued_until_it_fails_again() -> None:
    dead = merged([stage("sent", 0), stage("dead_lettered", 1, error_type="X")])
    requeued = MessageState(
        **{
            **dead.__dict__,
            "dead_letter_state": "requeued",
            "requeued_at": T0 + timedelta(seconds=2),
        }
    )
    assert merge_message(requeued, stage("created", 0)).dead_letter_state == "requeued"
    again = merge_message(requeued, stage("dead_lettered", 3, error_type="Y"))
    assert again.dead_letter_state == "open"
    done = merge_message(requeued, stage("processed", 3))
    assert done.dead_letter_state == "recovered"


def test_content_preview_is_one_line_and_bounded() -> None:
    assert content_preview("a\n  b") == "a b"
    assert content_preview({"x": 1}) == '{"x": 1}'
    long = content_preview("y" * 1000)
    assert len(long) == 200
    assert long.endswith("…")
    assert content_preview(None) == ""
