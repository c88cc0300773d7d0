"""Pure tests of record building and backoff: no database, no network."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from observatory_sdk import records
from observatory_sdk.client import encode_record
from observatory_sdk.transport import backoff_delay, batch_body

AT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def test_session_start_has_type_id_and_a_utc_timestamp() -> None:
    record = records.session_start_record(
        "s1", name="arena round", tags=("arena", "round-1"), started_at=AT
    )

    assert record == {
        "type": "session.start",
        "id": record["id"],
        "session_id": "s1",
        "started_at": "2026-11-21T10:00:00Z",
        "name": "arena round",
        "tags": ["arena", "round-1"],
    }
    assert len(record["id"]) == 32
    int(record["id"], 16)


def test_empty_optional_fields_are_left_out() -> None:
    record = records.session_end_record("s1", ended_at=AT)

    assert record == {
        "type": "session.end",
        "id": record["id"],
        "session_id": "s1",
        "ended_at": "2026-11-21T10:00:00Z",
        "end_state": "success",
    }


def test_every_record_gets_its_own_id() -> None:
    first = records.message_record("s1", "user", "hi", at=AT)
    second = records.message_record("s1", "user", "hi", at=AT)

    assert first["id"] != second["id"]


def test_aware_times_are_converted_to_utc_and_naive_ones_read_as_utc() -> None:
    plus_two = datetime(2026, 11, 21, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2026, 11, 21, 10, 0)  # noqa: DTZ001 - the case under test

    assert records.wire_timestamp(plus_two) == "2026-11-21T10:00:00Z"
    assert records.wire_timestamp(naive) == "2026-11-21T10:00:00Z"
    assert records.wire_timestamp(1_700_000_000.5) == 1_700_000_000.5
    assert records.wire_timestamp("2026-11-21T10:00:00Z") == "2026-11-21T10:00:00Z"


def test_a_missing_time_is_now_in_utc() -> None:
    before = datetime.now(UTC)
    stamped = records.status_record("s1", "agent", "thinking")["at"]

    parsed = datetime.fromisoformat(stamped)
    assert stamped.endswith("Z")
    assert before <= parsed <= datetime.now(UTC)


def test_an_event_span_id_defaults_to_its_record_id() -> None:
    record = records.event_record("s1", "llm", "openai.chat", started_at=AT, model="gpt-4o")

    assert record["span_id"] == record["id"]
    assert record["kind"] == "llm"
    assert record["model"] == "gpt-4o"
    assert "ended_at" not in record
    assert "attributes" not in record


def test_an_event_keeps_every_field_it_is_given() -> None:
    record = records.event_record(
        "s1",
        "tool",
        "search",
        started_at=AT,
        ended_at=AT + timedelta(seconds=1),
        span_id="t1",
        parent_span_id="a1",
        agent_id="attacker",
        status="error",
        prompt_tokens=0,
        cost=0.0,
        params={"q": "x"},
        error_type="TimeoutError",
        error_message="timed out",
        stack_trace="Traceback ...",
        attributes={"attempt": 2},
        record_id="r1",
    )

    assert record == {
        "type": "event",
        "id": "r1",
        "session_id": "s1",
        "span_id": "t1",
        "parent_span_id": "a1",
        "kind": "tool",
        "name": "search",
        "agent_id": "attacker",
        "started_at": "2026-11-21T10:00:00Z",
        "ended_at": "2026-11-21T10:00:01Z",
        "status": "error",
        "prompt_tokens": 0,
        "cost": 0.0,
        "params": {"q": "x"},
        "error_type": "TimeoutError",
        "error_message": "timed out",
        "stack_trace": "Traceback ...",
        "attributes": {"attempt": 2},
    }


def test_an_unknown_event_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind must be one of action, llm, tool, error"):
        records.event_record("s1", "thought", "x")


def test_an_unknown_event_field_is_refused() -> None:
    with pytest.raises(TypeError, match="unknown event fields: tokens"):
        records.event_record("s1", "llm", "x", tokens=3)  # type: ignore[call-arg]


def test_a_status_line_refuses_a_conversation_role() -> None:
    with pytest.raises(ValueError, match="role must be one of agent, llm, tool"):
        records.status_record("s1", "assistant", "hello")


def test_a_message_refuses_a_status_role() -> None:
    with pytest.raises(ValueError, match="role must be one of user, assistant, system"):
        records.message_record("s1", "tool", "hello")


def test_a_metric_without_a_session_has_no_session_id() -> None:
    record = records.metric_record("memory_mb", 512.5, unit="MB", at=AT)

    assert record == {
        "type": "metric",
        "id": record["id"],
        "name": "memory_mb",
        "value": 512.5,
        "unit": "MB",
        "at": "2026-11-21T10:00:00Z",
    }


def test_agent_records_carry_their_init_params() -> None:
    created = records.agent_created_record(
        "s1", "target", name="target", role="defender", init_params={"model": "gpt-4o"}, at=AT
    )
    terminated = records.agent_terminated_record("s1", "target", reason="done", at=AT)

    assert created["init_params"] == {"model": "gpt-4o"}
    assert created["type"] == "agent.created"
    assert terminated["reason"] == "done"
    assert terminated["type"] == "agent.terminated"


def test_a_session_update_carries_only_the_fields_given() -> None:
    record = records.session_update_record("s1", metadata={"score": 3})

    assert set(record) == {"type", "id", "session_id", "metadata"}


def test_encoding_turns_datetimes_into_utc_strings() -> None:
    encoded = encode_record({"type": "message", "at": AT, "tags": ("a",)})

    assert encoded == b'{"type":"message","at":"2026-11-21T10:00:00Z","tags":["a"]}'


def test_a_batch_body_wraps_encoded_records() -> None:
    assert batch_body([b'{"a":1}', b'{"b":2}']) == b'{"records":[{"a":1},{"b":2}]}'


def test_backoff_grows_exponentially_up_to_the_cap_with_jitter() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(attempt, base=0.5, cap=8, rng=rng) for attempt in range(7)]

    ceilings = [0.5, 1, 2, 4, 8, 8, 8]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)
