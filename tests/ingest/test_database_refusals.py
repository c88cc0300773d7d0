"""Records PostgreSQL refuses become ingest problems, never a 500 (issue 14).

The inputs are real ones that reached PostgreSQL and failed the whole request before: a legacy
agentops call naming a session id longer than the column holds (`value too long for type
character varying(128)`), and an OTLP span event whose name holds NUL (jsonb cannot).
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.models import IngestRejection, Session, Span
from tests.builders import make_project

pytestmark = pytest.mark.django_db

LONG_SESSION_ID = "s" * 300


def _v2_events(client: Client, key: str, session_id: str, event_id: str) -> int:
    body = {
        "session_id": session_id,
        "events": [
            {
                "event_type": "actions",
                "id": event_id,
                "action_type": "search",
                "init_timestamp": "2026-01-01T00:00:00Z",
                "end_timestamp": "2026-01-01T00:00:01Z",
            }
        ],
    }
    response = client.post(
        "/v2/create_events",
        json.dumps(body),
        content_type="application/json",
        HTTP_X_AGENTOPS_API_KEY=key,
    )
    return response.status_code


def test_a_record_the_database_refuses_is_kept_as_an_ingest_problem_not_a_500() -> None:
    project, key = make_project()
    client = Client(raise_request_exception=False)

    assert _v2_events(client, key, LONG_SESSION_ID, "e-long") == 200

    (problem,) = IngestRejection.objects.filter(project=project)
    assert problem.source == "agentops-v2"
    assert "The database refused this record: value too long" in problem.message
    assert LONG_SESSION_ID in problem.raw and "e-long" in problem.raw
    assert not Session.objects.filter(project=project).exclude(external_id="").exists()


def test_an_otlp_event_name_with_nul_is_stored_with_a_replacement_character() -> None:
    project, key = make_project()
    client = Client(raise_request_exception=False)
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for n in range(3):
        span = spans.add()
        span.trace_id = bytes([1] * 16)
        span.span_id = bytes([n + 1] * 8)
        span.name = f"step {n}"
        span.start_time_unix_nano = 1_795_000_000_000_000_000 + n
        span.end_time_unix_nano = 1_795_000_000_000_000_100 + n
        event = span.events.add()
        event.name = "note\x00with nul" if n == 1 else "note"
        event.time_unix_nano = span.start_time_unix_nano

    response = client.post(
        "/v1/traces",
        request.SerializeToString(),
        content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )

    assert response.status_code == 200
    assert Span.objects.filter(project=project).count() == 3
    events = Span.objects.get(project=project, name="step 1").payload.attributes
    assert events["observatory.events"][0]["name"] == "note\ufffdwith nul"


def test_a_good_batch_after_a_refused_one_is_stored() -> None:
    project, key = make_project()
    client = Client(raise_request_exception=False)

    assert _v2_events(client, key, LONG_SESSION_ID, "e-long") == 200
    assert _v2_events(client, key, "fine", "e-ok") == 200

    assert Span.objects.filter(project=project, session__external_id="fine").count() == 1
