"""GET /api/v1/events/, /events/<pk>/ and /sessions/<id>/events/: lists without payloads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from ingest.models import Agent, Span, SpanPayload
from tests.builders import T0, make_project, make_session

pytestmark = pytest.mark.django_db

EVENTS = reverse("api:event-list")
TRACE, OTHER_TRACE = "ab" * 16, "cd" * 16


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


@pytest.fixture
def client(key_client: Callable[[str], APIClient]) -> APIClient:
    project, raw_key = make_project(name="Acme")
    client = key_client(raw_key)
    client.project = project  # type: ignore[attr-defined]
    return client


def test_it_lists_events_newest_first_without_payload_fields(client: APIClient) -> None:
    make_session(client.project, external_id="s1", spans=3, failed=1)  # type: ignore[attr-defined]

    response = client.get(EVENTS)

    assert names(response) == ["step-2", "step-1", "openai.chat"]
    first = response.json()["results"][2]
    assert first == {
        "id": first["id"],
        "session_id": "s1",
        "project": "acme",
        "span_id": "span-0",
        "parent_span_id": "",
        "trace_id": "",
        "kind": "llm",
        "name": "openai.chat",
        "agent_id": "agent-1",
        "started_at": "2026-11-21T10:00:00Z",
        "ended_at": "2026-11-21T10:00:00.500000Z",
        "duration_ms": 500.0,
        "status": "ok",
        "model": "gpt-4o",
        "provider": "",
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "cost": 0.001,
        "is_cost_estimated": False,
        "error_type": "",
        "error_message": "",
    }


def test_the_list_never_selects_the_payload_table(client: APIClient) -> None:
    make_session(client.project, spans=3)  # type: ignore[attr-defined]

    with CaptureQueriesContext(connection) as captured:
        assert client.get(EVENTS).status_code == 200
        assert client.get(EVENTS, {"format": "csv"}).getvalue()

    assert captured.captured_queries
    assert not [q for q in captured.captured_queries if "spanpayload" in q["sql"].lower()]


def test_detail_includes_the_payload(client: APIClient) -> None:
    make_session(client.project, spans=2, failed=1)  # type: ignore[attr-defined]
    llm = Span.objects.get(kind=Span.Kind.LLM)

    response = client.get(reverse("api:event-detail", args=[llm.pk]))

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "openai.chat"
    assert body["params"] == {"query": "openai.chat"}
    assert body["returns"] == {"ok": True}
    assert body["prompt"] == [{"role": "user", "content": "hi"}]
    assert body["completion"] == "hello"
    assert body["stack_trace"] == ""
    assert body["attributes"] == {"span.index": 0}
    assert body["unmapped_keys"] == []
    assert body["detailed_kind"] is None


def test_detail_has_the_otlp_fields_trace_id_estimated_cost_unmapped_keys_and_detailed_kind(
    client: APIClient,
) -> None:
    make_session(client.project, spans=1)  # type: ignore[attr-defined]
    span = Span.objects.get()
    Span.objects.filter(pk=span.pk).update(trace_id=TRACE, is_cost_estimated=True)
    SpanPayload.objects.filter(span=span).update(
        attributes={"observatory.kind": "embedding", "vendor.x": "<b>1</b>"},
        unmapped_keys=["vendor.x"],
    )

    body = client.get(reverse("api:event-detail", args=[span.pk])).json()
    listed = client.get(EVENTS).json()["results"][0]

    assert (body["trace_id"], body["is_cost_estimated"]) == (TRACE, True)
    assert body["detailed_kind"] == "embedding"
    assert body["unmapped_keys"] == ["vendor.x"]
    assert body["attributes"]["vendor.x"] == "<b>1</b>"
    assert (listed["trace_id"], listed["is_cost_estimated"]) == (TRACE, True)
    assert "unmapped_keys" not in listed and "detailed_kind" not in listed


def test_trace_id_filters_events_in_lists_and_in_a_sessions_events(client: APIClient) -> None:
    project = client.project  # type: ignore[attr-defined]
    make_session(project, external_id="multi", spans=4, trace_ids=(TRACE, OTHER_TRACE))
    make_session(project, external_id="plain", spans=2)

    assert names(client.get(EVENTS, {"trace_id": TRACE})) == ["step-1", "openai.chat"]
    assert names(client.get(EVENTS, {"trace_id": OTHER_TRACE.upper()})) == ["step-3", "step-2"]
    session_events = reverse("api:session-event-list", args=["multi"])
    assert names(client.get(session_events, {"trace_id": OTHER_TRACE})) == ["step-2", "step-3"]
    assert names(client.get(EVENTS, {"trace_id": "f" * 32})) == []


def test_detail_of_a_span_without_payload_has_null_payload_fields(client: APIClient) -> None:
    make_session(client.project, spans=1)  # type: ignore[attr-defined]
    span = Span.objects.get()
    span.payload.delete()

    body = client.get(reverse("api:event-detail", args=[span.pk])).json()

    assert body["params"] is None
    assert body["stack_trace"] is None
    assert body["unmapped_keys"] is None
    assert body["detailed_kind"] is None


def test_a_sessions_events_come_in_time_order(client: APIClient) -> None:
    project = client.project  # type: ignore[attr-defined]
    make_session(project, external_id="mine", spans=3)
    make_session(project, external_id="other", spans=2)

    response = client.get(reverse("api:session-event-list", args=["mine"]))

    assert names(response) == ["openai.chat", "step-1", "step-2"]
    assert {row["session_id"] for row in response.json()["results"]} == {"mine"}


def test_event_filters(client: APIClient) -> None:
    project = client.project  # type: ignore[attr-defined]
    make_session(project, external_id="a", spans=3, failed=1, model="claude-sonnet")
    make_session(project, external_id="b", spans=2, started_at=T0 + timedelta(hours=1))

    assert len(names(client.get(EVENTS, {"session": "a"}))) == 3
    assert names(client.get(EVENTS, {"kind": "tool"})) == ["step-1", "step-1"]
    assert names(client.get(EVENTS, {"kind": "action", "session": "a"})) == ["step-2"]
    assert names(client.get(EVENTS, {"status": "error"})) == ["step-2"]
    assert names(client.get(EVENTS, {"has_error": "true"})) == ["step-2"]
    assert len(names(client.get(EVENTS, {"has_error": "false"}))) == 4
    assert len(names(client.get(EVENTS, {"model": "claude-sonnet"}))) == 1
    assert names(client.get(EVENTS, {"name": "step-2"})) == ["step-2"]
    assert names(client.get(EVENTS, {"started_after": "2026-11-21T11:00:00Z"})) == [
        "step-1",
        "openai.chat",
    ]
    assert len(names(client.get(EVENTS, {"started_before": "2026-11-21T11:00:00Z"}))) == 3
    assert names(client.get(EVENTS, {"ordering": "started_at"}))[0] == "openai.chat"


def test_agent_matches_an_agent_id_or_its_name(client: APIClient) -> None:
    project = client.project  # type: ignore[attr-defined]
    make_session(project, external_id="a", spans=2, agents=("planner",))
    make_session(project, external_id="b", spans=1, agents=("critic",))
    Agent.objects.filter(session__external_id="b").update(external_id="agent-9")

    assert len(names(client.get(EVENTS, {"agent": "agent-1"}))) == 3
    assert len(names(client.get(EVENTS, {"agent": "planner"}))) == 2
    assert names(client.get(EVENTS, {"agent": "critic"})) == []


def test_a_bad_kind_is_a_400_naming_it(client: APIClient) -> None:
    response = client.get(EVENTS, {"kind": "dance"})

    assert response.status_code == 400
    assert response.json()["field"] == "kind"


def test_the_list_costs_the_same_queries_for_few_rows_or_many(
    client: APIClient, django_assert_num_queries: Any, settings: Any
) -> None:
    settings.OBSERVATORY_API_KEY_CACHE_SECONDS = 60
    project = client.project  # type: ignore[attr-defined]
    client.get(EVENTS)  # the key's first use reads it and writes last_used_at; later ones do not
    make_session(project, spans=2)

    with django_assert_num_queries(1):
        assert len(names(client.get(EVENTS, {"agent": "planner"}))) == 2
    make_session(project, spans=60)
    with django_assert_num_queries(1):
        assert len(names(client.get(EVENTS, {"agent": "planner"}))) == 62
