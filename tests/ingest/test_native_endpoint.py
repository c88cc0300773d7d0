"""POST /api/v1/ingest against the database: idempotency, merging, rejections, limits, isolation."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from django.test import Client

from analytics.tasks import summarize_sessions_task
from ingest.models import (
    Agent,
    ApiKey,
    IngestRejection,
    MetricSample,
    Project,
    Session,
    Span,
    TranscriptLine,
)

pytestmark = pytest.mark.django_db


def post(client: Client, key: str, records: Any, **headers: Any) -> Any:
    return client.post(
        "/api/v1/ingest",
        data=json.dumps({"records": records}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}", **headers},
    )


def arena_batch(session_id: str = "s1") -> list[dict[str, Any]]:
    return [
        {
            "type": "session.start",
            "id": f"{session_id}-start",
            "session_id": session_id,
            "name": "arena",
            "started_at": "2026-11-21T10:00:00Z",
            "tags": ["arena"],
            "user_query": "Break the target",
        },
        {
            "type": "agent.created",
            "id": f"{session_id}-a1",
            "session_id": session_id,
            "agent_id": "judge",
            "name": "Judge",
            "init_params": {"model": "gpt-4o"},
            "at": "2026-11-21T10:00:00Z",
        },
        {
            "type": "event",
            "id": f"{session_id}-e1",
            "session_id": session_id,
            "kind": "llm",
            "name": "openai.chat",
            "model": "gpt-4o",
            "started_at": "2026-11-21T10:00:01Z",
            "ended_at": "2026-11-21T10:00:02.5Z",
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "cost": 0.002,
            "prompt": [{"role": "user", "content": "hi"}],
            "status": "ok",
        },
        {
            "type": "event",
            "id": f"{session_id}-e2",
            "session_id": session_id,
            "kind": "tool",
            "name": "search",
            "parent_span_id": f"{session_id}-e1",
            "status": "error",
            "error_type": "Timeout",
            "error_message": "search timed out",
            "started_at": "2026-11-21T10:00:03Z",
            "ended_at": "2026-11-21T10:00:04Z",
        },
        {
            "type": "status",
            "id": f"{session_id}-st",
            "session_id": session_id,
            "role": "agent",
            "text": "Running tool SearchTool",
            "at": "2026-11-21T10:00:03Z",
        },
        {
            "type": "message",
            "id": f"{session_id}-m",
            "session_id": session_id,
            "role": "user",
            "content": "Break the target",
            "at": "2026-11-21T10:00:00.5Z",
        },
        {
            "type": "metric",
            "id": f"{session_id}-mem",
            "session_id": session_id,
            "name": "memory_mb",
            "value": 512,
            "unit": "MB",
            "at": "2026-11-21T10:00:04Z",
        },
        {
            "type": "session.end",
            "id": f"{session_id}-end",
            "session_id": session_id,
            "ended_at": "2026-11-21T10:00:05Z",
            "end_state": "success",
        },
    ]


def test_a_batch_is_stored_and_answered_per_record(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    response = post(client, key, arena_batch())
    assert response.status_code == 200
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (8, 0, 0)
    assert [r["status"] for r in answer["results"]] == ["accepted"] * 8
    session = Session.objects.get(external_id="s1")
    assert (session.name, session.end_state, session.tags) == ("arena", "success", ["arena"])
    assert Span.objects.filter(session=session).count() == 2
    assert Agent.objects.get(session=session).init_params == {"model": "gpt-4o"}
    assert TranscriptLine.objects.filter(session=session).count() == 2
    assert MetricSample.objects.get().session == session


def test_it_accepts_a_retried_batch_without_duplicates(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    post(client, key, arena_batch())
    retry = post(client, key, arena_batch()).json()
    assert (retry["accepted"], retry["duplicates"]) == (0, 8)
    assert Session.objects.count() == 1
    assert Span.objects.count() == 2
    assert TranscriptLine.objects.count() == 2
    assert MetricSample.objects.count() == 1


def test_an_end_before_its_start_is_merged_not_dropped(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    batch = arena_batch()
    end, start = batch[-1], batch[0]
    post(client, key, [end])
    early = Session.objects.get()
    assert early.is_inferred and early.end_state == "success"
    post(client, key, [start])
    session = Session.objects.get()
    assert not session.is_inferred
    assert session.name == "arena"
    assert session.end_state == "success"
    assert session.started_at is not None
    assert session.ended_at is not None
    assert session.started_at.isoformat() == "2026-11-21T10:00:00+00:00"
    assert session.ended_at.isoformat() == "2026-11-21T10:00:05+00:00"


def test_events_before_their_session_create_an_inferred_session(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    post(client, key, arena_batch()[2:4])
    session = Session.objects.get()
    assert session.is_inferred
    assert session.started_at is not None
    assert session.started_at.isoformat() == "2026-11-21T10:00:01+00:00"


def test_two_records_for_one_span_merge_later_fields_winning(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    started = {
        "type": "event",
        "id": "r1",
        "span_id": "llm-1",
        "session_id": "s1",
        "kind": "llm",
        "name": "chat",
        "model": "gpt-4o",
        "started_at": "2026-11-21T10:00:00Z",
        "prompt": ["hello"],
    }
    ended = {
        "type": "event",
        "id": "r2",
        "span_id": "llm-1",
        "session_id": "s1",
        "kind": "llm",
        "name": "chat",
        "started_at": "2026-11-21T10:00:00Z",
        "ended_at": "2026-11-21T10:00:02Z",
        "completion_tokens": 7,
        "status": "ok",
        "completion": "world",
    }
    post(client, key, [started])
    post(client, key, [ended])
    span = Span.objects.select_related("payload").get()
    assert (span.model, span.completion_tokens, span.status) == ("gpt-4o", 7, "ok")
    assert span.duration_ms == 2000
    assert (span.payload.prompt, span.payload.completion) == (["hello"], "world")


def test_bad_record_is_reported_and_good_records_are_kept(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    project, key = project_with_key
    batch = arena_batch()
    batch[2]["started_at"] = "yesterday"
    answer = post(client, key, batch).json()
    assert (answer["accepted"], answer["rejected"]) == (7, 1)
    bad = answer["results"][2]
    assert bad["status"] == "error"
    assert bad["field"] == "records[2].started_at"
    assert "yesterday" in bad["error"]
    assert Span.objects.count() == 1
    rejection = IngestRejection.objects.get(project=project)
    assert rejection.field == "records[2].started_at"
    assert json.loads(rejection.raw)["started_at"] == "yesterday"


def test_a_retried_bad_record_is_kept_once(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    bad = [{"type": "event", "id": "x", "session_id": "s1", "kind": "llm"}]
    post(client, key, bad)
    post(client, key, bad)
    assert IngestRejection.objects.count() == 1


def test_a_body_that_is_not_json_is_refused_and_kept(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    response = client.post(
        "/api/v1/ingest",
        data="{oops",
        content_type="application/json",
        headers={"X-API-Key": key},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    assert IngestRejection.objects.get().raw == "{oops"


def test_gzip_bodies_are_accepted(client: Client, project_with_key: tuple[Project, str]) -> None:
    _, key = project_with_key
    response = client.post(
        "/api/v1/ingest",
        data=gzip.compress(json.dumps({"records": arena_batch()}).encode()),
        content_type="application/json",
        headers={"X-API-Key": key, "Content-Encoding": "gzip"},
    )
    assert response.json()["accepted"] == 8


def test_limits_answer_413_naming_the_limit(
    client: Client, project_with_key: tuple[Project, str], settings: Any
) -> None:
    _, key = project_with_key
    settings.OBSERVATORY_MAX_BATCH_RECORDS = 3
    too_many = post(client, key, arena_batch())
    assert too_many.status_code == 413
    assert "OBSERVATORY_MAX_BATCH_RECORDS is 3" in too_many.json()["error"]
    settings.OBSERVATORY_MAX_BATCH_BYTES = 200
    too_big = post(client, key, arena_batch()[:2])
    assert too_big.status_code == 413
    assert "OBSERVATORY_MAX_BATCH_BYTES" in too_big.json()["error"]
    assert Session.objects.count() == 0


def test_an_over_long_string_rejects_that_record_with_400_detail(
    client: Client, project_with_key: tuple[Project, str], settings: Any
) -> None:
    _, key = project_with_key
    settings.OBSERVATORY_MAX_STRING_CHARS = 50
    batch = arena_batch()
    batch[5]["content"] = "x" * 51
    answer = post(client, key, batch).json()
    assert answer["results"][5]["field"] == "records[5].content"
    assert "OBSERVATORY_MAX_STRING_CHARS" in answer["results"][5]["error"]


@pytest.mark.parametrize(
    ("headers", "words"),
    [({}, "Missing API key"), ({"Authorization": "Bearer nope"}, "Unknown or revoked")],
)
def test_a_missing_or_unknown_key_gets_401(
    client: Client, db: None, headers: dict[str, str], words: str
) -> None:
    response = client.post(
        "/api/v1/ingest", data="[]", content_type="application/json", headers=headers
    )
    assert response.status_code == 401
    assert words in response.json()["error"]
    assert response.json()["field"] == "Authorization"


def test_a_revoked_key_is_refused(client: Client, project_with_key: tuple[Project, str]) -> None:
    project, key = project_with_key
    ApiKey.objects.filter(project=project).update(revoked_at="2026-01-01T00:00:00Z")
    assert post(client, key, arena_batch()).status_code == 401


def test_the_same_ids_in_two_projects_stay_apart(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    first, first_key = project_with_key
    second = Project.objects.create(name="Other", slug="other")
    _, second_key = ApiKey.generate(second)
    post(client, first_key, arena_batch())
    answer = post(client, second_key, arena_batch()).json()
    assert answer["accepted"] == 8
    assert Session.objects.filter(project=first).count() == 1
    assert Session.objects.filter(project=second).count() == 1
    assert Span.objects.filter(project=second).count() == 2


def test_a_batch_costs_the_same_queries_whatever_its_size(
    client: Client,
    project_with_key: tuple[Project, str],
    django_assert_max_num_queries: Any,
    settings: Any,
) -> None:
    """Set-based writes: ten sessions cost no more queries than one. The key stays cached over
    the whole test, however slow the host, so that neither request reads it."""
    settings.OBSERVATORY_API_KEY_CACHE_SECONDS = 600
    _, key = project_with_key
    post(client, key, arena_batch("warm"))
    with django_assert_max_num_queries(25) as small:
        post(client, key, arena_batch("one"))
    big = [record for n in range(10) for record in arena_batch(f"many-{n}")]
    with django_assert_max_num_queries(len(small.captured_queries)):
        post(client, key, big)


def test_the_summary_task_fills_counts_tokens_cost_and_errors(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    post(client, key, arena_batch())
    session = Session.objects.get()
    assert session.is_summary_stale
    summarize_sessions_task([session.pk])
    session.refresh_from_db()
    assert (session.event_count, session.llm_count, session.tool_count) == (2, 1, 1)
    assert (session.prompt_tokens, session.completion_tokens) == (100, 20)
    assert session.cost == pytest.approx(0.002)
    assert session.has_errors and session.error_count == 1
    assert session.duration_ms == 5000
    assert session.agent_names == ["Judge"]
    assert session.models_used == ["gpt-4o"]
    assert not session.is_summary_stale


def test_an_escaped_nul_in_agent_text_does_not_sink_the_batch(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    """PostgreSQL cannot store NUL in text or jsonb; ingest replaces it instead of failing."""
    _, key = project_with_key
    batch = arena_batch()
    batch[5]["content"] = "before\u0000after"
    batch[2]["params"] = {"q": "nul\u0000"}
    answer = post(client, key, batch).json()
    assert answer["accepted"] == 8
    assert TranscriptLine.objects.get(role="user").text == "before\ufffdafter"


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_sent_concurrently_is_stored_once(
    project_with_key: tuple[Project, str],
) -> None:
    """Two retries racing: the ledger and unique constraints keep one copy, and neither
    request fails (a unique violation retries the transaction)."""
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the in-memory SQLite test database locks whole tables; CI runs PostgreSQL")
    _, key = project_with_key
    batch = [record for n in range(20) for record in arena_batch(f"race-{n}")]
    statuses: list[int] = []

    def send() -> None:
        statuses.append(post(Client(), key, batch).status_code)
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200, 200]
    assert Session.objects.count() == 20
    assert Span.objects.count() == 40
    assert TranscriptLine.objects.count() == 40
