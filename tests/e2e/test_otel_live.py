"""The real OpenTelemetry SDK (1.44) and its OTLP/HTTP exporters post traces, logs and metrics to
the live server; we read them back through the REST API. Then bad bodies, posted raw with
requests, get the status codes the OTLP/HTTP spec asks for and leave nothing half-stored.

The Python SDK has no OTLP/JSON exporter, so JSON bodies are encoded by the SDK's own protobuf
encoder (opentelemetry.exporter.otlp.proto.common) and turned into OTLP/JSON per the spec: proto3
JSON mapping with lowerCamelCase names, enums as integers and ids as hex, not base64.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from google.protobuf.json_format import MessageToDict
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ingest.models import IngestRejection, MetricSample, PendingRequest, Session, TranscriptLine
from ingest.models import Span as SpanRow
from tests.waiting import DEADLINE, wait_until

PROTOBUF = "application/x-protobuf"
# ingest/data/model_prices.json, USD per million tokens for gpt-4o-mini-*.
PROMPT_PRICE, COMPLETION_PRICE = 0.15, 0.60


@dataclass
class Server:
    """The live server as an OTLP endpoint and a REST API, with one project's key."""

    url: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.key}

    def resource(self, service: str) -> Resource:
        return Resource.create({"service.name": service, "deployment.environment": "test"})

    def tracer_provider(
        self, service: str, *, compression: Compression | None = None
    ) -> TracerProvider:
        exporter = OTLPSpanExporter(
            endpoint=f"{self.url}/v1/traces", headers=self.headers, compression=compression
        )
        provider = TracerProvider(resource=self.resource(service))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return provider

    def get(self, path: str) -> Any:
        response = requests.get(
            f"{self.url}/api/v1/{path}",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=DEADLINE,
        )
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def rows(self, path: str) -> list[dict[str, Any]]:
        separator = "&" if "?" in path else "?"
        return list(self.get(f"{path}{separator}page_size=1000")["results"])

    def post(self, path: str, body: bytes, **headers: str) -> requests.Response:
        response = requests.post(
            f"{self.url}{path}",
            data=body,
            headers={"x-api-key": self.key, "Content-Type": PROTOBUF, **headers},
            timeout=DEADLINE,
        )
        landed()
        return response


@pytest.fixture
def server(live_server: Any, project_with_key: tuple[Any, str]) -> Server:
    return Server(url=live_server.url, key=project_with_key[1])


@pytest.fixture
def providers() -> Iterator[list[Any]]:
    """Providers a test made; shut down afterwards so no exporter thread outlives the server."""
    made: list[Any] = []
    yield made
    for provider in made:
        provider.shutdown()


def flush(provider: Any) -> None:
    assert provider.force_flush(10_000), f"{type(provider).__name__} did not flush in 10 s"
    landed()


def landed() -> None:
    """Small requests are answered before they are stored (deferred landing): the live server
    lands them just after the answer, so wait for that before reading what was stored."""
    wait_until(lambda: not PendingRequest.objects.exists(), what="pending requests to land")


def llm_attributes(question: str, answer: str) -> dict[str, Any]:
    """An LLM call in the GenAI conventions, as OpenLLMetry's OpenAI instrumentation sends it."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 256,
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "You are the support bot of an online shop.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": question,
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": answer,
        "gen_ai.completion.0.finish_reason": "stop",
        "gen_ai.usage.input_tokens": 42,
        "gen_ai.usage.output_tokens": 17,
    }


def by_kind(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == kind]


def test_genai_spans_from_the_sdk_exporter_read_back_as_an_llm_call_and_a_tool_call(
    server: Server, providers: list[Any]
) -> None:
    provider = server.tracer_provider("support-bot", compression=Compression.Gzip)
    providers.append(provider)
    tracer = provider.get_tracer("support-bot", "1.0.0")
    answer = "Your order 1042 left the warehouse yesterday and arrives on Friday."
    with tracer.start_as_current_span("support-chat") as root:
        root.set_attribute("gen_ai.agent.name", "SupportBot")
        with tracer.start_as_current_span(
            "execute_tool lookup_order",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "lookup_order",
                "gen_ai.tool.call.arguments": json.dumps({"order_id": 1042}),
                "gen_ai.tool.call.result": json.dumps({"status": "shipped", "eta": "Friday"}),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            attributes=llm_attributes("Where is my order 1042?", answer),
        ):
            pass
    flush(provider)

    (session,) = [s for s in server.rows("sessions/") if s["name"] == "support-chat"]
    assert session["id"] == format(root.get_span_context().trace_id, "032x")
    assert session["end_state"] == "success"
    events = server.rows(f"sessions/{session['id']}/events/")
    (llm,) = by_kind(events, "llm")
    assert (llm["model"], llm["provider"]) == ("gpt-4o-mini-2024-07-18", "openai")
    assert (llm["prompt_tokens"], llm["completion_tokens"]) == (42, 17)
    assert llm["cost"] == pytest.approx((42 * PROMPT_PRICE + 17 * COMPLETION_PRICE) / 1e6)
    detail = server.get(f"events/{llm['id']}/")
    assert detail["prompt"][1] == {"role": "user", "content": "Where is my order 1042?"}
    assert detail["completion"]["content"] == answer
    (tool,) = by_kind(events, "tool")
    tool_detail = server.get(f"events/{tool['id']}/")
    assert tool["name"] == "lookup_order"
    assert tool_detail["params"] == {"order_id": 1042}
    assert tool_detail["returns"] == {"status": "shipped", "eta": "Friday"}


def taskweaver_round(tracer: Any, session_id: str, round_id: str, message: str, reply: str) -> None:
    """One TaskWeaver round: its own trace, rooted at Session.send_message."""
    with tracer.start_as_current_span(
        "Session.send_message",
        attributes={"session_id": session_id, "round_id": round_id, "message": message},
    ) as root:
        with (
            tracer.start_as_current_span("Planner.reply"),
            tracer.start_as_current_span(
                "OpenAIService.chat_completion",
                kind=SpanKind.CLIENT,
                attributes=llm_attributes(message, reply),
            ),
        ):
            pass
        with tracer.start_as_current_span("CodeInterpreter.reply") as code:
            code.set_attribute("code", "df = pd.read_csv('sales.csv')\ndf.sum()")
        root.set_attribute("reply_to_user", reply)


def test_taskweaver_rounds_in_two_traces_are_one_session_with_two_rounds(
    server: Server, providers: list[Any]
) -> None:
    provider = server.tracer_provider("taskweaver")
    providers.append(provider)
    tracer = provider.get_tracer("taskweaver.tracing")
    session_id = f"tw-{uuid.uuid4().hex[:12]}"
    taskweaver_round(tracer, session_id, "round-1a2b", "Load sales.csv", "Loaded 120 rows.")
    flush(provider)  # the second round arrives in a later request, as it would
    taskweaver_round(tracer, session_id, "round-3c4d", "Sum the sales", "The total is 98,310.")
    flush(provider)

    detail = server.get(f"sessions/{session_id}/")
    assert len(detail["rounds"]) == 2
    assert [r["span_count"] for r in detail["rounds"]] == [4, 4]
    trace_ids = [r["trace_id"] for r in detail["rounds"]]
    assert not Session.objects.filter(external_id__in=trace_ids).exists()  # no stray sessions
    chat = server.rows(f"sessions/{session_id}/transcript/?roles=user,assistant")
    assert [(line["role"], line["text"]) for line in chat] == [
        ("user", "Load sales.csv"),
        ("assistant", "Loaded 120 rows."),
        ("user", "Sum the sales"),
        ("assistant", "The total is 98,310."),
    ]
    events = server.rows(f"sessions/{session_id}/events/")
    assert len(by_kind(events, "llm")) == 2


def test_log_records_emitted_inside_a_span_join_that_spans_session(
    server: Server, providers: list[Any]
) -> None:
    tracer_provider = server.tracer_provider("support-bot")
    logger_provider = LoggerProvider(resource=server.resource("support-bot"))
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{server.url}/v1/logs", headers=server.headers)
        )
    )
    providers += [tracer_provider, logger_provider]
    logger = logger_provider.get_logger("support-bot.worker")
    with tracer_provider.get_tracer("support-bot").start_as_current_span("nightly-refunds") as run:
        for level, text in (
            ("INFO", "refund batch started: 3 orders"),
            ("WARN", "order 77 has no payment id, skipped"),
        ):
            logger.emit(
                body=text,
                severity_text=level,
                severity_number=SeverityNumber[level],
                timestamp=time.time_ns(),
            )
    flush(tracer_provider)
    flush(logger_provider)

    trace_id = format(run.get_span_context().trace_id, "032x")
    lines = server.rows(f"sessions/{trace_id}/transcript/?roles=log")
    assert [line["text"] for line in lines] == [
        "refund batch started: 3 orders",
        "WARN: order 77 has no payment id, skipped",
    ]
    assert {line["span_id"] for line in lines} == {format(run.get_span_context().span_id, "016x")}


def test_a_token_usage_histogram_reads_back_from_the_metrics_api(
    server: Server, providers: list[Any]
) -> None:
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{server.url}/v1/metrics", headers=server.headers),
        export_interval_millis=3_600_000,  # exported by force_flush below, not by the timer
    )
    provider = MeterProvider(resource=server.resource("support-bot"), metric_readers=[reader])
    providers.append(provider)
    usage = provider.get_meter("support-bot").create_histogram(
        "gen_ai.client.token.usage", unit="{token}", description="Tokens used per call"
    )
    model = {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.system": "openai"}
    for tokens in (42, 58, 100):
        usage.record(tokens, {**model, "gen_ai.token.type": "input"})
    usage.record(17, {**model, "gen_ai.token.type": "output"})
    flush(provider)

    def values(name: str) -> list[float]:
        return sorted(s["value"] for s in server.rows(f"metrics/?name={name}"))

    # Cumulative histograms, one point per attribute set (input, output): count, sum and avg.
    assert values("gen_ai.client.token.usage.count") == [1.0, 3.0]
    assert values("gen_ai.client.token.usage.sum") == [17.0, 200.0]
    assert values("gen_ai.client.token.usage.avg") == pytest.approx([17.0, 200 / 3])
    units = set(
        MetricSample.objects.filter(name="gen_ai.client.token.usage.sum").values_list(
            "unit", flat=True
        )
    )
    assert units == {"{token}"}


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON per the spec: the proto3 JSON mapping, enums as integers, ids in hex."""
    payload = MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in payload.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(payload).encode()


def test_otlp_json_made_from_sdk_spans_reads_back_like_protobuf(server: Server) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=server.resource("json-client"))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("json-client")
    with (
        tracer.start_as_current_span("json-run") as root,
        tracer.start_as_current_span(
            "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=llm_attributes("Hi?", "Hello!")
        ),
    ):
        pass
    body = otlp_json(encode_spans(memory.get_finished_spans()))

    response = server.post("/v1/traces", body, **{"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json() == {}
    trace_id = format(root.get_span_context().trace_id, "032x")
    session = server.get(f"sessions/{trace_id}/")
    assert session["name"] == "json-run"
    (llm,) = by_kind(server.rows(f"sessions/{trace_id}/events/"), "llm")
    assert (llm["model"], llm["prompt_tokens"], llm["completion_tokens"]) == (
        "gpt-4o-mini-2024-07-18",
        42,
        17,
    )


# --- bad input, posted raw --------------------------------------------------------------------


def kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def raw_trace(name: str, spans: int, *, bad_span_ids: int = 0) -> tuple[str, bytes]:
    """An ExportTraceServiceRequest: one trace with a root and spans - 1 tool spans; the last
    bad_span_ids of them carry a 3-byte span id, which OTLP does not allow."""
    trace_id = uuid.uuid4().bytes
    root_id = uuid.uuid4().bytes[:8]
    start = time.time_ns() - 10**9
    made = [
        Span(
            trace_id=trace_id,
            span_id=root_id,
            name=name,
            start_time_unix_nano=start,
            end_time_unix_nano=start + 900_000_000,
            kind=Span.SPAN_KIND_INTERNAL,
        )
    ]
    for i in range(1, spans):
        span_id = b"bad" if i >= spans - bad_span_ids else uuid.uuid4().bytes[:8]
        made.append(
            Span(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=root_id,
                name=f"search.tool.{i}",
                start_time_unix_nano=start + i * 1_000_000,
                end_time_unix_nano=start + i * 1_000_000 + 500_000,
                kind=Span.SPAN_KIND_INTERNAL,
                attributes=[kv("agentops.span.kind", "tool"), kv("operation.name", f"search_{i}")],
            )
        )
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=ProtoResource(attributes=[kv("service.name", "raw-client")]),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name="raw"), spans=made)],
            )
        ]
    )
    return trace_id.hex(), request.SerializeToString()


def gzip_bomb(size: int) -> bytes:
    """`size` zero bytes, gzip-compressed in chunks (about 1,000:1) without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1024 * 1024)
    parts = [packer.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join([*parts, packer.flush()])


@dataclass(frozen=True)
class Stored:
    spans: int
    sessions: int
    transcript: int
    metrics: int

    @classmethod
    def now(cls) -> Stored:
        return cls(
            spans=SpanRow.objects.count(),
            sessions=Session.objects.count(),
            transcript=TranscriptLine.objects.count(),
            metrics=MetricSample.objects.count(),
        )


def test_bad_bodies_get_the_otlp_status_codes_and_store_nothing_partial(
    server: Server, settings: Any
) -> None:
    good_trace, good_body = raw_trace("good-run", 3)
    assert server.post("/v1/traces", good_body).status_code == 200
    baseline = Stored.now()

    def assert_refused(status: int, response: requests.Response, trace_id: str = "") -> None:
        assert response.status_code == status, response.text
        assert response.json()["error"]
        assert Stored.now() == baseline
        if trace_id:
            assert not SpanRow.objects.filter(trace_id=trace_id).exists()
        events = server.rows(f"sessions/{good_trace}/events/")
        assert sorted(e["name"] for e in events) == ["good-run", "search_1", "search_2"]

    truncated_trace, body = raw_trace("truncated-run", 50)
    assert_refused(400, server.post("/v1/traces", body[: len(body) // 2]), truncated_trace)

    text_trace, body = raw_trace("text-run", 3)
    assert_refused(
        415, server.post("/v1/traces", body, **{"Content-Type": "text/plain"}), text_trace
    )

    anonymous = requests.post(
        f"{server.url}/v1/traces", data=body, headers={"Content-Type": PROTOBUF}, timeout=DEADLINE
    )
    assert_refused(401, anonymous, text_trace)

    # 32 MiB of zeros in 32 KiB: refused while decompressing, at the 10 MiB default limit.
    bomb = gzip_bomb(32 * 1024 * 1024)
    assert len(bomb) < 64 * 1024 < settings.OBSERVATORY_MAX_BATCH_BYTES < 32 * 1024 * 1024
    assert_refused(413, server.post("/v1/traces", bomb, **{"Content-Encoding": "gzip"}))

    # The live server runs in this process, so it reads the overridden setting.
    settings.OBSERVATORY_MAX_BATCH_BYTES = 64 * 1024
    big_trace, body = raw_trace("x" * 200, 600)
    assert len(body) > settings.OBSERVATORY_MAX_BATCH_BYTES
    response = server.post("/v1/traces", body)
    assert_refused(413, response, big_trace)
    assert "OBSERVATORY_MAX_BATCH_BYTES" in response.json()["error"]

    mixed_trace, body = raw_trace("mixed-run", 5, bad_span_ids=2)
    response = server.post("/v1/traces", body)
    assert response.status_code == 200, response.text
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 2
    assert "spanId" in answer.partial_success.error_message
    stored = sorted(SpanRow.objects.filter(trace_id=mixed_trace).values_list("name", flat=True))
    assert stored == ["mixed-run", "search_1", "search_2"]
    assert IngestRejection.objects.filter(source="otlp-traces").count() >= 2
    assert len(server.rows(f"sessions/{good_trace}/events/")) == 3


def test_a_gzip_body_from_a_plain_client_is_accepted(server: Server) -> None:
    trace_id, body = raw_trace("gzipped-run", 4)
    response = server.post("/v1/traces", gzip.compress(body), **{"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert (
        ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 0
    )
    assert SpanRow.objects.filter(trace_id=trace_id).count() == 4


def test_an_evaluation_event_from_the_sdk_reads_back_as_a_score_of_the_llm_call(
    server: Server, providers: list[Any]
) -> None:
    """The GenAI `gen_ai.evaluation.result` event, added to the judged span as the conventions
    ask, becomes an `eval` score of that span in the span's session."""
    provider = server.tracer_provider("support-bot")
    providers.append(provider)
    tracer = provider.get_tracer("support-bot", "1.0.0")
    with (
        tracer.start_as_current_span("support-chat"),
        tracer.start_as_current_span(
            "chat gpt-4o-mini", attributes=llm_attributes("Refund?", "Sure, full refund.")
        ) as llm,
    ):
        llm.add_event(
            "gen_ai.evaluation.result",
            {
                "gen_ai.evaluation.name": "policy_compliance",
                "gen_ai.evaluation.score.value": 0.0,
                "gen_ai.evaluation.score.label": "violates",
                "gen_ai.evaluation.explanation": "promised a refund outside the policy",
            },
        )
    flush(provider)

    trace_id = format(llm.get_span_context().trace_id, "032x")
    (score,) = server.rows(f"scores/?session={trace_id}")
    assert score["span_id"] == format(llm.get_span_context().span_id, "016x")
    assert (score["name"], score["value"], score["label"]) == ("policy_compliance", 0.0, "violates")
    assert (score["source"], score["author"]) == ("eval", "support-bot")
    assert score["comment"] == "promised a refund outside the policy"
    low = server.rows("sessions/?score=policy_compliance:lt:0.5")
    assert [s["id"] for s in low] == [trace_id]
