"""seed_demo against the stand-in ingest server: everything goes through the SDK, nothing to the DB.

These tests take no `db` fixture, so pytest-django fails them if the command touches the database.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from demo.arena import llm_cost, load_factor, plan_sessions
from ingest.formats.native import parse_records
from tests.sdk.conftest import Answer, FakeIngest

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def seed(fake_ingest: FakeIngest, *, sessions: int = 20, seed_value: int = 7) -> str:
    out = StringIO()
    call_command(
        "seed_demo",
        url=fake_ingest.url,
        api_key="obs_test",
        sessions=sessions,
        days=2,
        seed=seed_value,
        stdout=out,
    )
    return out.getvalue()


def test_it_sends_every_session_through_the_ingest_api(fake_ingest: FakeIngest) -> None:
    output = seed(fake_ingest)

    records = fake_ingest.records
    types = Counter(record["type"] for record in records)
    assert types["session.start"] == 20
    assert 0 < types["session.end"] < 20  # A few are left running.
    assert {"agent.created", "event", "status", "message", "metric", "score"} <= set(types)
    assert f"Seeded 20 sessions: {len(records)} records sent" in output
    assert "0 rejected, 0 failed batches" in output


def test_every_record_it_sends_parses_as_a_native_record(fake_ingest: FakeIngest) -> None:
    seed(fake_ingest)

    parsed = parse_records(fake_ingest.records, max_string_chars=1_000_000)

    assert parsed.errors == []


def test_it_sends_the_script_message_that_escaping_tests_look_for(fake_ingest: FakeIngest) -> None:
    seed(fake_ingest, sessions=3)

    messages = [record for record in fake_ingest.records if record["type"] == "message"]
    assert "<script>alert(1)</script>" in [message["content"] for message in messages]


def test_tool_and_llm_events_nest_under_agent_action_spans(fake_ingest: FakeIngest) -> None:
    seed(fake_ingest)

    events = [record for record in fake_ingest.records if record["type"] == "event"]
    actions = {event["span_id"] for event in events if event["kind"] == "action"}
    children = [event for event in events if event["kind"] in ("tool", "llm")]
    assert children
    assert all(event["parent_span_id"] in actions for event in children)
    assert all(
        event["cost"] > 0
        for event in children
        if event.get("status") == "ok" and event["kind"] == "llm"
    )


def story(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What happened, without the ids and times that differ between runs."""
    fields = ("type", "kind", "name", "role", "text", "content", "model", "prompt_tokens", "value")
    return [tuple(record.get(field) for field in fields) for record in records]


def test_the_same_seed_tells_the_same_story_with_fresh_ids(fake_ingest: FakeIngest) -> None:
    seed(fake_ingest, sessions=5)
    first = list(fake_ingest.records)
    fake_ingest.requests.clear()

    seed(fake_ingest, sessions=5)

    second = fake_ingest.records
    assert story(second) == story(first)
    assert not {record["id"] for record in first} & {record["id"] for record in second}


def test_it_fails_when_the_server_rejects_records(fake_ingest: FakeIngest) -> None:
    error = "records[0].type: unknown record type"
    fake_ingest.script = [
        Answer(
            200,
            {
                "accepted": 0,
                "duplicates": 0,
                "rejected": 1,
                "results": [
                    {"index": 0, "status": "error", "field": "records[0].type", "error": error}
                ],
            },
        )
    ]

    with pytest.raises(CommandError, match="did not take everything"):
        seed(fake_ingest, sessions=3)


def test_it_stops_at_once_on_a_refused_api_key(fake_ingest: FakeIngest) -> None:
    fake_ingest.script = [Answer(401, {"error": "Unknown API key", "field": "Authorization"})]

    with pytest.raises(CommandError, match="HTTP 401: Unknown API key"):
        seed(fake_ingest, sessions=50)

    assert {record["session_id"] for record in fake_ingest.records} == {
        fake_ingest.records[0]["session_id"]
    }  # Only the first session was sent.


def test_planned_sessions_are_in_order_with_a_few_running_in_the_last_hour() -> None:
    plans = plan_sessions(random.Random(7), count=120, days=14, now=NOW)

    running = [plan for plan in plans if plan.is_running]
    assert len(running) == 2
    assert all(NOW - timedelta(hours=1) < plan.started_at < NOW for plan in running)
    finished_starts = [plan.started_at for plan in plans if not plan.is_running]
    assert finished_starts == sorted(finished_starts)
    assert all(NOW - timedelta(days=14) <= start <= NOW for start in finished_starts)
    assert any(plan.group_key for plan in plans)
    assert any(plan.parent_session_id for plan in plans)


def test_llm_cost_comes_from_the_price_table() -> None:
    assert llm_cost("gpt-4o", 1_000_000, 0) == 2.50
    assert llm_cost("gpt-4o-mini", 1000, 1000) == pytest.approx(0.00075)


def test_latency_load_peaks_in_the_afternoon_and_bottoms_out_at_night() -> None:
    night = load_factor(NOW.replace(hour=3))
    afternoon = load_factor(NOW.replace(hour=15))

    assert night == pytest.approx(1.0)
    assert afternoon == pytest.approx(1.6)
