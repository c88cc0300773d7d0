"""POST /v1/traces over the same spans more than once: retried requests, spans re-sent in other
requests, and a late retry of an older version of a span."""

from __future__ import annotations

from django.test import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from ingest.models import Project, Session, Step
from ingest.models import Span as SpanRow
from tests.builders import attrs

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
START = 1_795_286_852_000_000_000
SECOND = 1_000_000_000


def span(
    number: int, *, parent: int = 0, kind: str = "tool", error: bool = False, **extra: str
) -> Span:
    """Span `number` of TRACE (ids 00..01, 00..02, ...), with agentops attributes."""
    attributes = {"agentops.span.kind": kind, "operation.name": f"step{number}", **extra}
    return Span(
        trace_id=TRACE,
        span_id=number.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=f"step{number}.{kind}",
        start_time_unix_nano=START + number * SECOND,
        end_time_unix_nano=START + number * SECOND + SECOND // 2,
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items()],
        status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_OK),
    )


def body(*spans: Span) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])]
    )
    return request.SerializeToString()


def post(client: Client, key: str, data: bytes) -> None:
    answer = client.post(
        "/v1/traces", data, content_type="application/x-protobuf", headers={"X-API-Key": key}
    )
    assert answer.status_code == 200, answer.content


def test_a_retried_request_stores_nothing_twice(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    request = body(span(1, kind="workflow"), span(2, parent=1, kind="task"), span(3, parent=2))
    post(client, key, request)
    post(client, key, request)
    assert SpanRow.objects.count() == 3
    assert Session.objects.count() == 1
    assert Step.objects.count() == 1


def test_spans_resent_in_another_request_merge_into_the_same_rows(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    post(client, key, body(span(1, kind="workflow"), span(2, parent=1, kind="task"), span(3)))
    # Another request: the same spans (the task now failed) and a new one.
    post(
        client,
        key,
        body(
            span(1, kind="workflow"), span(2, parent=1, kind="task", error=True), span(3), span(4)
        ),
    )
    rows = {row.span_id: row for row in SpanRow.objects.exclude(kind=SpanRow.Kind.ERROR)}
    assert sorted(rows) == [f"{n:016x}" for n in (1, 2, 3, 4)]
    assert rows[f"{2:016x}"].status == "error"
    assert SpanRow.objects.filter(kind=SpanRow.Kind.ERROR).count() == 1
    step = Step.objects.get()
    assert step.status == Step.Status.ERROR


def test_a_late_retry_of_an_older_request_does_not_undo_a_newer_one(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    first = body(span(1, **attrs({"agentops.tool.output": "partial"})))
    post(client, key, first)
    post(client, key, body(span(1, error=True, **attrs({"agentops.tool.output": "final"}))))
    post(client, key, first)  # the exporter never saw the first answer and retried
    row = SpanRow.objects.select_related("payload").exclude(kind=SpanRow.Kind.ERROR).get()
    assert row.status == "error"
    assert "final" in str(row.payload.returns)


def test_an_attribute_key_with_a_nul_byte_is_stored_not_a_500(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    """PostgreSQL jsonb refuses NUL in keys as in values; an exporter drops a 500's whole batch."""
    _, key = project_with_key
    odd = span(1, kind="tool", **attrs({"tool\x00name": "x", "plain": "y"}))
    odd.attributes.add(key="nested").value.kvlist_value.values.add(key="a\x00b").value.int_value = 1

    post(client, key, body(odd, span(2, parent=1)))

    assert SpanRow.objects.count() == 2
    attributes = SpanRow.objects.get(span_id=f"{1:016x}").payload.attributes
    assert attributes["tool\ufffdname"] == "x"
    assert attributes["nested"] == {"a\ufffdb": 1}
