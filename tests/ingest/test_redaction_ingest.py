"""PII redaction at ingest, through the endpoints: what is stored when a project turns it on,
for native batches, OTLP and a refused record."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from ingest.models import (
    IngestRejection,
    Message,
    Project,
    Session,
    SpanPayload,
    TranscriptLine,
    UploadedObject,
)
from ingest.redaction import BUILTIN_NAMES
from tests.builders import make_project

pytestmark = pytest.mark.django_db

BATCH: list[dict[str, Any]] = [
    {
        "type": "session.start",
        "id": "s-start",
        "session_id": "s",
        "started_at": "2026-12-01T10:00:00Z",
        "user_query": "I am dana@example.com, card 4111 1111 1111 1111",
        "metadata": {"user_id": "dana@example.com"},
    },
    {
        "type": "event",
        "id": "s-e1",
        "session_id": "s",
        "kind": "llm",
        "name": "openai.chat",
        "started_at": "2026-12-01T10:00:01Z",
        "prompt": [{"role": "user", "content": "mail dana@example.com from 10.0.0.7"}],
        "completion": "Done, key sk-proj-abcdefghijklmnopqrstuvwx1234 used",
        "params": {"phone": "+1 415 555 0100"},
    },
    {
        "type": "message",
        "id": "s-m1",
        "session_id": "s",
        "role": "user",
        "content": "my IBAN is DE89370400440532013000",
        "at": "2026-12-01T10:00:02Z",
    },
    {
        "type": "agent_message",
        "id": "s-am1",
        "session_id": "s",
        "message_id": "m1",
        "stage": "sent",
        "sender": "planner",
        "receivers": ["coder"],
        "content": {"text": "ping ops@example.com"},
        "at": "2026-12-01T10:00:03Z",
    },
    {"type": "event", "id": "bad", "session_id": "s", "kind": "llm", "name": "x"},
]


def _enable(project: Project, *, detectors: tuple[str, ...] = BUILTIN_NAMES, **extra: Any) -> None:
    project.is_redaction_enabled = True
    project.redaction_detectors = list(detectors)
    for name, value in extra.items():
        setattr(project, name, value)
    project.save()


def _post(key: str, records: list[dict[str, Any]]) -> Any:
    return Client().post(
        "/api/v1/ingest",
        json.dumps({"records": records}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def test_with_redaction_on_nothing_personal_is_stored() -> None:
    project, key = make_project()
    _enable(project)
    bad = dict(BATCH[-1], prompt="from eve@example.com")
    assert _post(key, [*BATCH[:-1], bad]).status_code == 200

    session = Session.objects.get()
    assert session.user_query == "I am [REDACTED:email], card [REDACTED:card]"
    assert session.metadata == {"user_id": "dana@example.com"}  # what an erasure looks up
    payload = SpanPayload.objects.get()
    assert payload.prompt == [
        {"role": "user", "content": "mail [REDACTED:email] from [REDACTED:ipv4]"}
    ]
    assert payload.completion == "Done, key [REDACTED:openai_key] used"
    assert payload.params == {"phone": "[REDACTED:phone]"}
    assert payload.attributes["observatory.redacted"] == 4
    assert TranscriptLine.objects.get().text == "my IBAN is [REDACTED:iban]"
    message = Message.objects.select_related("body").get()
    assert message.body.content == {"text": "ping [REDACTED:email]"}
    rejection = IngestRejection.objects.get()
    assert "eve@example.com" not in rejection.raw
    assert "[REDACTED:email]" in rejection.raw


def test_with_redaction_off_the_text_is_stored_as_sent() -> None:
    _, key = make_project()
    assert _post(key, BATCH[:2]).status_code == 200
    assert Session.objects.get().user_query == BATCH[0]["user_query"]
    assert "observatory.redacted" not in SpanPayload.objects.get().attributes


def test_a_custom_pattern_redacts_with_its_name() -> None:
    project, key = make_project()
    _enable(
        project,
        detectors=(),
        redaction_patterns=[{"name": "ticket", "pattern": "TCK-[0-9]{4}"}],
    )
    line = dict(BATCH[2], content="see TCK-1234 from dana@example.com")
    assert _post(key, [BATCH[0], line]).status_code == 200
    assert TranscriptLine.objects.get().text == "see [REDACTED:ticket] from dana@example.com"


def test_otlp_attribute_values_are_redacted_before_they_are_stored() -> None:
    project, key = make_project()
    _enable(project)
    span = OtlpSpan(
        trace_id=bytes.fromhex("5b8efff798038103d269b633813fc60c"),
        span_id=(1).to_bytes(8, "big"),
        name="chat",
        start_time_unix_nano=1_795_286_852_000_000_000,
        end_time_unix_nano=1_795_286_853_000_000_000,
        attributes=[
            KeyValue(key="gen_ai.prompt.0.content", value=AnyValue(string_value="I am a@b.io")),
            KeyValue(key="enduser.ip", value=AnyValue(string_value="192.168.7.1")),
        ],
    )
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )
    answer = Client().post(
        "/v1/traces",
        request.SerializeToString(),
        content_type="application/x-protobuf",
        headers={"X-API-Key": key},
    )
    assert answer.status_code == 200
    stored = json.dumps(list(SpanPayload.objects.values_list("prompt", "attributes")))
    assert "a@b.io" not in stored and "192.168.7.1" not in stored
    assert "[REDACTED:email]" in stored and "[REDACTED:ipv4]" in stored


def test_a_refused_body_and_an_uploaded_object_are_redacted_too() -> None:
    project, key = make_project()
    _enable(project)
    refused = Client().post(
        "/api/v1/ingest",
        b'{"records": [ "call +1 415 555 0100" ',
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 400
    assert "+1 415 555 0100" not in IngestRejection.objects.get().raw

    uploaded = Client().post(
        "/v4/objects/upload/",
        json.dumps({"body": "log: user eve@example.com signed in"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert uploaded.status_code == 200, uploaded.content
    assert UploadedObject.objects.get().body == "log: user [REDACTED:email] signed in"
