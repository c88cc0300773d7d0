"""OTLP/HTTP parsing (ingest/formats/otlp.py), tested without a database.

The golden tests feed the exact protobuf bodies the agentops 0.4.21 SDK sent (tests/fixtures/agentops)
and assert what a user would see; the OTLP/JSON fixtures in tests/fixtures/otlp are hand-written
from the OpenInference, Traceloop, GenAI and TaskWeaver conventions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.formats.otlp import (
    DEFAULT_SESSION_ATTRIBUTES,
    parse_otlp_logs,
    parse_otlp_metrics,
    parse_otlp_traces,
)
from ingest.formats.records import (
    AgentRecord,
    BodyError,
    MetricRecord,
    ParseResult,
    SessionRecord,
    SpanRecord,
    TraceLinkRecord,
    TranscriptRecord,
)

AGENTOPS = Path(__file__).resolve().parents[1] / "fixtures" / "agentops"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "otlp"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
LIMIT = 10_000

SUCCESS_TRACE = "745e084a12d16fd275ac148b2c76b5b6"
WEATHER_AGENT = "4634be999f279637"
TOOL_CALL_SPAN = "bb9e59938f37edc6"
FIRST_LLM_SPAN = "bac2ef91296d2f79"

T = TypeVar("T")


def raw_body(name: str, folder: str = "raw-main") -> bytes:
    return (AGENTOPS / folder / name).read_bytes()


def parse_raw(name: str, folder: str = "raw-main") -> ParseResult:
    return parse_otlp_traces(raw_body(name, folder), PROTOBUF, max_string_chars=LIMIT)


def parse_fixture(name: str, **options: Any) -> ParseResult:
    body = (FIXTURES / name).read_bytes()
    return parse_otlp_traces(body, JSON, max_string_chars=LIMIT, **options)


def records_of(result: ParseResult, kind: type[T]) -> list[T]:
    return [record for _, record in result.records if isinstance(record, kind)]


def span_named(result: ParseResult, name: str) -> SpanRecord:
    (span,) = [s for s in records_of(result, SpanRecord) if s.name == name and s.kind != "error"]
    return span


def session_record(result: ParseResult, action: str) -> SessionRecord:
    (record,) = [r for r in records_of(result, SessionRecord) if r.action == action]
    return record


def at(nanos: int) -> datetime:
    return datetime.fromtimestamp(nanos // 1000 / 1_000_000, tz=UTC)


# --- golden: the agentops 0.4 SDK -------------------------------------------------------------


def test_the_success_trace_becomes_a_named_session_with_json_string_tags() -> None:
    result = parse_raw("008-POST-v1_traces.bin")

    start = session_record(result, "start")
    end = session_record(result, "end")
    assert start.session_id == SUCCESS_TRACE
    assert start.name == "probe-success"
    assert start.tags == ("x", "y")
    assert start.started_at == at(1795286849501997653)
    assert start.metadata is not None
    assert start.metadata["customer"] == "acme"
    assert start.metadata["attempt"] == 1
    assert start.metadata["end_state_raw"] == "Success"
    assert start.metadata["host_env"] == {
        "imported_libraries": ["asyncio", "agentops"],
        "service.name": "agentops",
    }
    assert end.end_state == "success"
    assert end.ended_at == at(1795286850622000864)
    assert end.end_state_reason is None


@pytest.mark.parametrize(
    ("body", "name", "tags"),
    [
        ("010-POST-v1_traces.bin", "probe-enum-state", ()),
        ("011-POST-v1_traces.bin", "probe-with-block", ("ctx",)),
    ],
)
def test_enum_and_with_block_sessions_end_indeterminate(
    body: str, name: str, tags: tuple[str, ...]
) -> None:
    """The SDK drops agentops.session.end_state whenever an enum was passed."""
    result = parse_raw(body)

    start = session_record(result, "start")
    assert start.name == name
    assert start.tags == tags
    assert start.metadata is not None
    assert "end_state_raw" not in start.metadata
    assert session_record(result, "end").end_state == "indeterminate"


def test_an_error_end_state_fails_the_session_and_dict_tags_become_metadata() -> None:
    result = parse_raw("009-POST-v1_traces.bin")

    start = session_record(result, "start")
    assert start.name == "probe-error"
    assert start.metadata is not None
    assert start.metadata["env"] == "test"
    assert start.metadata["run"] == 2
    assert session_record(result, "end").end_state == "fail"


def test_the_legacy_start_session_trace_carries_host_env_video_and_reason() -> None:
    result = parse_raw("015-POST-v1_traces.bin")

    start = session_record(result, "start")
    assert start.name == "session"
    assert start.tags == ("legacy-session",)
    assert start.metadata is not None
    host_env = start.metadata["host_env"]
    assert host_env["host.name"] == "vm"
    assert host_env["host.system"] == "Linux"
    assert host_env["cpu.count"] == 2
    assert host_env["memory.total"] == 25276510208
    assert host_env["imported_libraries"] == ["asyncio", "agentops"]
    assert start.metadata["video"] == "http://example.invalid/v.mp4"
    assert "end_state_reason" not in start.metadata
    end = session_record(result, "end")
    assert end.end_state == "fail"
    assert end.end_state_reason == "legacy reason"


def test_the_auto_started_trace_ends_indeterminate_with_its_shutdown_state_kept() -> None:
    result = parse_raw("004-POST-v1_traces.bin", folder="raw-auto")

    start = session_record(result, "start")
    assert (start.name, start.tags) == ("default", ("auto",))
    assert start.metadata is not None
    assert start.metadata["end_state_raw"] == "Shutdown"
    assert session_record(result, "end").end_state == "indeterminate"
    assert span_named(result, "get_weather").params == {"args": ["Lisbon"], "kwargs": {}}


def test_the_three_openai_calls_are_llm_spans_with_models_tokens_and_messages() -> None:
    result = parse_raw("008-POST-v1_traces.bin")

    llms = sorted(
        (s for s in records_of(result, SpanRecord) if s.kind == "llm"), key=lambda s: s.started_at
    )
    assert [(s.model, s.prompt_tokens, s.completion_tokens) for s in llms] == [
        ("gpt-4o-mini-2024-07-18", 23, 11),
        ("gpt-4o-mini-2024-07-18", 23, 11),
        ("gpt-4o-mini-2024-07-18", 9, 3),
    ]
    assert {(s.provider, s.status, s.cost, s.is_cost_missing) for s in llms} == {
        ("OpenAI", "ok", None, True)
    }
    assert llms[0].prompt == [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "What's the weather in Paris?"},
    ]
    assert llms[0].params["max_tokens"] == 64
    assert llms[0].params["functions"][0]["parameters"]["required"] == ["city"]
    assert llms[1].prompt[2] == {
        "role": "assistant",
        "tool_calls": [
            {"id": "call_probe_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
        ],
    }
    assert llms[1].prompt[3]["tool_call_id"] == "call_probe_1"
    assert llms[1].completion == {
        "role": "assistant",
        "content": "The weather in Paris is sunny, 21C.",
        "finish_reason": "stop",
    }
    assert llms[2].completion["content"] == "Sunny in Paris."
    assert [e["name"] for e in llms[2].attributes["observatory.events"]] == [
        "first_token_received",
        "stream_completed",
    ]
    assert llms[2].unmapped_keys == (
        "gen_ai.response.id",
        "gen_ai.streaming.time_to_first_token",
        "gen_ai.streaming.time_to_generate",
        "llm.openai.stream.chunk_count",
        "llm.openai.stream.content_length",
        "llm.openai.stream.total_duration",
    )


def test_the_tool_call_request_is_attached_to_its_llm_completion() -> None:
    result = parse_raw("008-POST-v1_traces.bin")

    spans = {s.span_id: s for s in records_of(result, SpanRecord)}
    assert TOOL_CALL_SPAN not in spans
    assert spans[FIRST_LLM_SPAN].completion == {
        "role": "assistant",
        "finish_reason": "tool_calls",
        "tool_calls": [
            {"id": "call_probe_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
        ],
    }


def test_a_tool_call_request_whose_llm_call_is_in_another_request_is_a_tool_span() -> None:
    request = ExportTraceServiceRequest.FromString(raw_body("008-POST-v1_traces.bin"))
    scopes = request.resource_spans[0].scope_spans
    del scopes[1].spans[:]  # the openai scope: the three LLM calls

    result = parse_otlp_traces(request.SerializeToString(), PROTOBUF, max_string_chars=LIMIT)

    spans = {s.span_id: s for s in records_of(result, SpanRecord)}
    request_span = spans[TOOL_CALL_SPAN]
    assert (request_span.kind, request_span.name) == ("tool", "get_weather")
    assert request_span.attributes["observatory.kind"] == "tool_call_request"
    assert request_span.params == {"city": "Paris"}
    assert request_span.parent_span_id == FIRST_LLM_SPAN


def test_tool_spans_carry_params_returns_and_cost() -> None:
    result = parse_raw("008-POST-v1_traces.bin")

    tool = span_named(result, "get_weather")
    assert tool.kind == "tool"
    assert tool.params == {"args": ["Paris"], "kwargs": {}}
    assert tool.returns == {"city": "Paris", "forecast": "sunny", "temp_c": 21}
    assert tool.cost == 0.01
    assert tool.is_cost_missing is False


def test_actions_keep_their_detailed_kind_and_parsed_input_output() -> None:
    result = parse_raw("008-POST-v1_traces.bin")

    workflow = span_named(result, "trip_planning")
    assert workflow.kind == "action"
    assert workflow.attributes["observatory.kind"] == "workflow"
    assert workflow.params == {"args": ["What's the weather in Paris?"], "kwargs": {}}
    assert (
        workflow.returns
        == "Paris: sunny, 21C / The weather in Paris is sunny, 21C. | Sunny in Paris."
    )
    assert span_named(result, "ask_llm").attributes["observatory.kind"] == "task"
    root = span_named(result, "probe-success")
    assert root.attributes["observatory.kind"] == "session"
    assert root.unmapped_keys == ()


def test_an_error_span_is_emitted_once_for_two_identical_exception_events() -> None:
    result = parse_raw("009-POST-v1_traces.bin")

    errors = [s for s in records_of(result, SpanRecord) if s.kind == "error"]
    assert len(errors) == 1
    (error,) = errors
    assert error.span_id == "07782ea469932c44-error-1"
    assert error.parent_span_id == "07782ea469932c44"
    assert error.error_type == "ValueError"
    assert error.error_message == "search backend unavailable for 'paris hotels'"
    assert "Traceback" in error.stack_trace
    assert error.attributes["trigger_kind"] == "tool"
    failed = span_named(result, "flaky_search")
    assert (failed.kind, failed.status, failed.error_type) == ("tool", "error", "ValueError")


def test_agents_are_registered_and_their_descendants_carry_the_agent_id() -> None:
    result = parse_raw("008-POST-v1_traces.bin")

    (agent,) = records_of(result, AgentRecord)
    assert (agent.agent_id, agent.name, agent.session_id) == (
        WEATHER_AGENT,
        "WeatherAgent",
        SUCCESS_TRACE,
    )
    spans = {s.name: s for s in records_of(result, SpanRecord)}
    assert spans["ask_llm"].agent_id == WEATHER_AGENT
    assert spans["openai.chat.completion"].agent_id == WEATHER_AGENT
    assert spans["trip_planning"].agent_id == ""


def test_children_that_arrive_before_their_parents_map_on_their_own() -> None:
    result = parse_raw("003-POST-v1_traces.bin")

    spans = records_of(result, SpanRecord)
    assert [(s.name, s.parent_span_id) for s in spans] == [
        ("get_weather", "0ada47def9ffb289"),
        ("summarize", "0ada47def9ffb289"),
        ("answer", WEATHER_AGENT),
    ]
    assert {s.session_id for s in spans} == {SUCCESS_TRACE}
    assert records_of(result, SessionRecord) == []
    assert result.errors == []


def test_a_trace_whose_root_never_arrives_stores_no_session_record() -> None:
    result = parse_raw("016-POST-v1_traces.bin")

    assert [s.name for s in records_of(result, SpanRecord)] == ["get_weather"]
    assert records_of(result, SessionRecord) == []


def test_an_orphan_root_span_is_a_session_marked_no_session_span() -> None:
    request = ExportTraceServiceRequest.FromString(raw_body("016-POST-v1_traces.bin"))
    request.resource_spans[0].scope_spans[0].spans[0].parent_span_id = b""

    result = parse_otlp_traces(request.SerializeToString(), PROTOBUF, max_string_chars=LIMIT)

    update = session_record(result, "update")
    assert update.session_id == "85aad566d303025916b609c328a7c3e8"
    assert (update.name, update.tags) == ("get_weather.tool", ("no-session-span",))
    assert update.started_at is None


def test_a_decorated_trace_root_keeps_its_input_and_output() -> None:
    result = parse_raw("012-POST-v1_traces.bin")

    root = span_named(result, "decorated_trace")
    assert (root.params, root.returns) == ({"args": [21], "kwargs": {}}, 42)
    assert session_record(result, "start").tags == ("decorated",)


@pytest.mark.parametrize(
    "path",
    sorted(AGENTOPS.glob("raw-*/*-v1_traces.bin")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_captured_trace_body_parses_without_errors(path: Path) -> None:
    result = parse_otlp_traces(path.read_bytes(), PROTOBUF, max_string_chars=LIMIT)

    assert result.errors == []
    spans = records_of(result, SpanRecord)
    assert spans
    assert all(s.session_id == s.trace_id and len(s.trace_id) == 32 for s in spans)
    assert all(s.kind in ("action", "llm", "tool", "error") for s in spans)
    ids = [record.record_id for _, record in result.records]
    assert len(ids) == len(set(ids))
    assert max(len(record_id) for record_id in ids) <= 128  # ReceivedRecord.record_id
    json.dumps([s.attributes for s in spans], allow_nan=False)


def test_a_retried_request_yields_the_same_record_ids() -> None:
    first = parse_raw("008-POST-v1_traces.bin")
    retry = parse_raw("008-POST-v1_traces.bin")

    assert [r.record_id for _, r in first.records] == [r.record_id for _, r in retry.records]


def test_a_changed_resend_of_a_span_gets_a_new_record_id_for_the_same_span() -> None:
    request = ExportTraceServiceRequest.FromString(raw_body("016-POST-v1_traces.bin"))
    first = parse_otlp_traces(request.SerializeToString(), PROTOBUF, max_string_chars=LIMIT)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.add(key="late.attribute").value.string_value = "added"

    changed = parse_otlp_traces(request.SerializeToString(), PROTOBUF, max_string_chars=LIMIT)

    (before,) = records_of(first, SpanRecord)
    (after,) = records_of(changed, SpanRecord)
    assert before.span_id == after.span_id
    assert before.record_id != after.record_id
    assert after.unmapped_keys == ("late.attribute",)


def test_the_json_encoding_of_a_captured_request_maps_like_the_protobuf() -> None:
    """capture-main.jsonl holds the same requests decoded to OTLP/JSON (hex ids, enum names,
    int64 as strings)."""
    lines = [
        json.loads(line) for line in (AGENTOPS / "capture-main.jsonl").read_text().splitlines()
    ]
    (capture,) = [c for c in lines if c.get("raw_file") == "008-POST-v1_traces.bin"]
    body = json.dumps(capture["body"]["otlp"]).encode()

    from_json = parse_otlp_traces(body, JSON, max_string_chars=LIMIT)
    from_protobuf = parse_raw("008-POST-v1_traces.bin")

    def summary(result: ParseResult) -> list[tuple[Any, ...]]:
        return [
            (
                s.span_id,
                s.parent_span_id,
                s.kind,
                s.name,
                s.model,
                s.prompt_tokens,
                s.status,
                s.agent_id,
            )
            for s in records_of(result, SpanRecord)
        ]

    assert summary(from_json) == summary(from_protobuf)
    assert session_record(from_json, "start").tags == ("x", "y")


# --- bad input --------------------------------------------------------------------------------


def test_a_truncated_protobuf_body_is_a_400() -> None:
    with pytest.raises(BodyError) as caught:
        parse_otlp_traces(raw_body("008-POST-v1_traces.bin")[:-9], PROTOBUF, max_string_chars=LIMIT)

    assert caught.value.status == 400
    assert "ExportTraceServiceRequest" in caught.value.message


def test_a_body_that_is_not_json_is_a_400() -> None:
    with pytest.raises(BodyError) as caught:
        parse_otlp_traces(b'{"resourceSpans": [', JSON, max_string_chars=LIMIT)

    assert caught.value.status == 400
    assert "OTLP/JSON" in caught.value.message


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/x-www-form-urlencoded"])
def test_an_unsupported_content_type_is_a_415_naming_the_accepted_ones(content_type: str) -> None:
    with pytest.raises(BodyError) as caught:
        parse_otlp_traces(b"{}", content_type, max_string_chars=LIMIT)

    assert caught.value.status == 415
    assert repr(content_type) in caught.value.message
    assert "application/x-protobuf" in caught.value.message
    assert "application/json" in caught.value.message


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/protobuf"]
)
def test_content_type_parameters_and_aliases_are_accepted(content_type: str) -> None:
    body = b"{}" if "json" in content_type.lower() else b""

    assert parse_otlp_traces(body, content_type, max_string_chars=LIMIT) == ParseResult([], [])


def test_invalid_ids_and_times_are_refused_with_their_path_and_the_other_spans_kept() -> None:
    request = ExportTraceServiceRequest.FromString(raw_body("010-POST-v1_traces.bin"))
    spans = request.resource_spans[0].scope_spans[0].spans
    for _ in range(3):
        spans.add().CopyFrom(spans[0])
    spans[2].trace_id = bytes(8)
    spans[3].span_id = bytes(8)
    spans[4].end_time_unix_nano = spans[4].start_time_unix_nano - 1

    result = parse_otlp_traces(request.SerializeToString(), PROTOBUF, max_string_chars=LIMIT)

    path = "resourceSpans[0].scopeSpans[0].spans"
    assert [(e.index, e.field) for e in result.errors] == [
        (2, f"{path}[2].traceId"),
        (3, f"{path}[3].spanId"),
        (4, f"{path}[4].endTimeUnixNano"),
    ]
    assert "16 bytes" in result.errors[0].message
    assert "all zeros" in result.errors[1].message
    assert result.errors[0].raw["traceId"] == "0000000000000000"
    assert result.errors[0].raw["spanId"] == "782148220a8a8869"
    assert [s.name for s in records_of(result, SpanRecord)] == ["get_weather", "probe-enum-state"]


def test_a_huge_attribute_is_truncated_not_rejected() -> None:
    request = ExportTraceServiceRequest.FromString(raw_body("016-POST-v1_traces.bin"))
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.add(key="agentops.tool.debug").value.string_value = "x" * 50_000

    result = parse_otlp_traces(request.SerializeToString(), PROTOBUF, max_string_chars=1000)

    assert result.errors == []
    (tool,) = records_of(result, SpanRecord)
    value = tool.attributes["agentops.tool.debug"]
    assert value.startswith("x" * 1000)
    assert value.endswith(
        "[truncated: 50000 characters, the limit OBSERVATORY_MAX_STRING_CHARS is 1000]"
    )
    assert tool.attributes["observatory.truncated"] == {"agentops.tool.debug": 50000}
    assert tool.returns == {"city": "Madrid", "forecast": "sunny", "temp_c": 21}


def test_odd_attribute_values_never_hide_a_span() -> None:
    attributes = [
        {"key": "plain", "value": "a bare string"},
        {"key": "nan", "value": {"doubleValue": "NaN"}},
        {"key": "big", "value": {"intValue": "9007199254740993"}},
        {"key": "blob", "value": {"bytesValue": "AAEC"}},
        {
            "key": "nested",
            "value": {
                "kvlistValue": {
                    "values": [
                        {"key": "a", "value": {"arrayValue": {"values": [{"boolValue": True}]}}}
                    ]
                }
            },
        },
        {"key": "empty", "value": {}},
        {"value": {"stringValue": "no key"}},
        "not an attribute",
        {"key": "nul", "value": {"stringValue": "a\u0000b"}},
    ]
    body = json.dumps(
        {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": "0123456789abcdef0123456789abcdef",
                                    "spanId": "0123456789abcdef",
                                    "name": "odd",
                                    "startTimeUnixNano": 1795290000000000000,
                                    "attributes": attributes,
                                }
                            ]
                        }
                    ]
                }
            ]
        }
    ).encode()

    result = parse_otlp_traces(body, JSON, max_string_chars=LIMIT)

    (span,) = records_of(result, SpanRecord)
    assert span.ended_at is None
    assert {
        key: span.attributes[key]
        for key in ("plain", "nan", "big", "blob", "nested", "empty", "nul")
    } == {
        "plain": "a bare string",
        "nan": "nan",
        "big": 9007199254740993,
        "blob": "AAEC",
        "nested": {"a": [True]},
        "empty": None,
        "nul": "a\ufffdb",
    }
    json.dumps(span.attributes, allow_nan=False)


def test_a_token_count_or_cost_too_big_for_a_float_is_left_out_not_a_crash() -> None:
    """OTLP/JSON writes an intValue as a decimal string of any length: float() of such an int
    raised OverflowError, which failed the whole request instead of leaving the value out."""
    too_big = {"intValue": "9" * 400}
    attributes = [
        {"key": "gen_ai.request.model", "value": {"stringValue": "m"}},
        {"key": "gen_ai.usage.prompt_tokens", "value": too_big},
        {"key": "gen_ai.usage.total_cost", "value": too_big},
    ]
    span = {
        "traceId": "0123456789abcdef0123456789abcdef",
        "spanId": "0123456789abcdef",
        "name": "chat",
        "startTimeUnixNano": 1795290000000000000,
        "attributes": attributes,
    }
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()

    result = parse_otlp_traces(body, JSON, max_string_chars=LIMIT)

    (record,) = records_of(result, SpanRecord)
    assert (record.kind, record.prompt_tokens, record.cost) == ("llm", None, None)


def test_json_ids_may_be_base64_and_keys_snake_case() -> None:
    result = parse_fixture("traceloop-workflow.json")

    assert result.errors == []
    workflow = span_named(result, "plan_trip")
    assert workflow.trace_id == "5b8efff798038103d269b633813fc60c"
    assert workflow.span_id == "eee19b7ec3c1b174"
    assert workflow.parent_span_id == ""
    assert span_named(result, "travel_agent").parent_span_id == "eee19b7ec3c1b174"
    assert span_named(result, "openai.chat").attributes["observatory.span_kind"] == "client"


# --- other instrumentations ---------------------------------------------------------------------


def test_openinference_spans_map_to_llm_tool_and_agent() -> None:
    result = parse_fixture("openinference-agent.json")

    assert result.errors == []
    first, tool, second, agent_span = records_of(result, SpanRecord)
    assert (first.kind, first.model, first.provider) == ("llm", "gpt-4o-2024-08-06", "openai")
    assert (first.prompt_tokens, first.completion_tokens, first.is_cost_missing) == (52, 17, True)
    assert first.prompt == [
        {"role": "system", "content": "You answer weather questions."},
        {"role": "user", "content": "What's the weather in Paris?"},
    ]
    assert first.completion == {
        "role": "assistant",
        "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}],
    }
    assert first.params["temperature"] == 0
    assert first.params["tools"] == [{"type": "function", "function": {"name": "get_weather"}}]
    assert first.unmapped_keys == ("llm.openai.organization",)
    assert (tool.kind, tool.name, tool.params, tool.returns) == (
        "tool",
        "get_weather",
        {"city": "Paris"},
        "sunny, 21C",
    )
    assert (second.cost, second.is_cost_missing) == (0.00029, False)
    assert second.prompt == [{"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"}]
    assert (agent_span.kind, agent_span.attributes["observatory.kind"]) == ("action", "agent")
    (agent,) = records_of(result, AgentRecord)
    assert agent.name == "weather-agent"
    assert {first.agent_id, tool.agent_id, second.agent_id} == {agent.agent_id}
    orphan_root = session_record(result, "update")
    assert orphan_root.tags == ("no-session-span", "demo", "weather")


def test_traceloop_spans_map_to_workflow_agent_tool_task_and_llm() -> None:
    result = parse_fixture("traceloop-workflow.json")

    kinds = {
        s.name: (s.kind, s.attributes["observatory.kind"]) for s in records_of(result, SpanRecord)
    }
    assert kinds == {
        "plan_trip": ("action", "workflow"),
        "travel_agent": ("action", "agent"),
        "lookup_weather": ("tool", "tool"),
        "openai.chat": ("llm", "llm"),
        "openai.completion": ("llm", "llm"),
        "summarize": ("action", "task"),
    }
    workflow = span_named(result, "plan_trip")
    assert workflow.params == {"args": ["Lisbon"], "kwargs": {}}
    assert workflow.returns == "Pack sunscreen: Lisbon is sunny."
    tool = span_named(result, "lookup_weather")
    assert (tool.params, tool.returns) == (
        {"args": [], "kwargs": {"city": "Lisbon"}},
        {"forecast": "sunny"},
    )
    chat = span_named(result, "openai.chat")
    assert (chat.model, chat.prompt_tokens, chat.completion_tokens) == (
        "gpt-4o-mini-2024-07-18",
        20,
        10,
    )
    legacy = span_named(result, "openai.completion")
    assert (legacy.model, legacy.prompt_tokens, legacy.completion_tokens) == (
        "gpt-3.5-turbo-instruct",
        8,
        3,
    )
    assert legacy.prompt == [{"role": "user", "content": "Summarise: Pack sunscreen."}]
    assert legacy.completion == {"role": "assistant", "content": "Sunscreen."}
    (agent,) = records_of(result, AgentRecord)
    assert agent.name == "travel_agent"
    assert chat.agent_id == agent.agent_id


def test_genai_new_generation_messages_and_input_output_tokens() -> None:
    result = parse_fixture("genai-messages.json")

    first, second = [s for s in records_of(result, SpanRecord) if s.kind == "llm" and s.completion]
    assert (first.model, first.provider) == ("gpt-4.1-2025-04-14", "openai")
    assert (first.prompt_tokens, first.completion_tokens) == (97, 52)
    assert first.prompt == [
        {"role": "system", "content": "You are a travel agent."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    assert first.completion == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "call_VSPygqKTWdrhaFErNvMV18Yl",
                "name": "get_weather",
                "arguments": {"location": "Paris"},
            }
        ],
        "finish_reason": "tool_call",
    }
    assert second.prompt[2] == {
        "role": "tool",
        "tool_call_id": "call_VSPygqKTWdrhaFErNvMV18Yl",
        "content": '{"temperature_c":21,"sky":"clear"}',
    }
    assert second.completion["content"] == "Clear skies and 21C in Paris."
    assert second.completion["other_choices"] == [
        {"role": "assistant", "content": "Paris: 21C, clear.", "finish_reason": "stop"}
    ]
    tool = span_named(result, "get_weather")
    assert (tool.kind, tool.params, tool.returns) == (
        "tool",
        {"location": "Paris"},
        {"temperature_c": 21, "sky": "clear"},
    )
    (agent,) = records_of(result, AgentRecord)
    assert agent.name == "Travel planner"


def test_an_error_status_without_exception_events_is_one_error_span() -> None:
    result = parse_fixture("genai-messages.json")

    (error,) = [s for s in records_of(result, SpanRecord) if s.kind == "error"]
    assert error.span_id == "4444444444444444-error-1"
    assert (error.error_type, error.error_message) == (
        "RateLimitError",
        "Rate limit reached for gpt-4.1",
    )
    failed = [s for s in records_of(result, SpanRecord) if s.span_id == "4444444444444444"]
    assert failed[0].status == "error"


# --- sessions that span several traces ---------------------------------------------------------


def test_taskweaver_rounds_in_two_traces_link_to_one_session_in_order() -> None:
    first = parse_fixture("taskweaver-round-1.json")
    second = parse_fixture("taskweaver-round-2.json")

    links = records_of(first, TraceLinkRecord) + records_of(second, TraceLinkRecord)
    assert [(link.trace_id, link.session_id, link.round_index) for link in links] == [
        ("6f1c2b3a4d5e6f708192a3b4c5d6e7f8", "20261121-202000-7c1e", 0),
        ("7a2d3c4b5e6f708192a3b4c5d6e7f809", "20261121-202000-7c1e", 1),
    ]
    lines = records_of(first, TranscriptRecord) + records_of(second, TranscriptRecord)
    assert [(line.role, line.text) for line in lines] == [
        ("user", "Plot sales.csv"),
        ("assistant", "Here is the plot of sales.csv."),
        ("user", "Now as a bar chart"),
        ("assistant", "Here is the bar chart."),
    ]
    assert [line.at for line in lines] == sorted(line.at for line in lines)
    assert lines[0].session_id == lines[0].trace_id == "6f1c2b3a4d5e6f708192a3b4c5d6e7f8"
    assert lines[0].span_id == "aa00000000000001"


def test_a_configured_session_attribute_is_checked_before_the_defaults() -> None:
    result = parse_fixture("taskweaver-round-1.json", session_attributes=("round_id",))

    (link,) = records_of(result, TraceLinkRecord)
    assert link.session_id == "round-20261121-202000-9f3c"
    assert DEFAULT_SESSION_ATTRIBUTES == ("session.id", "session_id", "gen_ai.conversation.id")


def test_openinference_and_genai_session_ids_link_their_trace() -> None:
    (openinference,) = records_of(parse_fixture("openinference-agent.json"), TraceLinkRecord)
    (genai,) = records_of(parse_fixture("genai-messages.json"), TraceLinkRecord)

    assert (openinference.session_id, openinference.round_index) == ("conv-42", None)
    assert genai.session_id == "thread-7"


def test_traces_without_a_session_attribute_get_no_link() -> None:
    assert records_of(parse_raw("008-POST-v1_traces.bin"), TraceLinkRecord) == []


# --- metrics ----------------------------------------------------------------------------------


def parse_metrics_fixture(content_type: str = JSON) -> ParseResult:
    body = (FIXTURES / "metrics.json").read_bytes()
    if content_type == PROTOBUF:
        body = ParseDict(json.loads(body), ExportMetricsServiceRequest()).SerializeToString()
    return parse_otlp_metrics(body, content_type, max_string_chars=LIMIT)


def samples(result: ParseResult) -> dict[tuple[str, str], float]:
    return {
        (m.name, str(m.attributes.get("gen_ai.token.type", ""))): m.value
        for m in records_of(result, MetricRecord)
    }


def test_histograms_become_count_sum_and_average_samples() -> None:
    result = parse_metrics_fixture()

    values = samples(result)
    assert values[("gen_ai.client.token.usage.count", "input")] == 3
    assert values[("gen_ai.client.token.usage.sum", "input")] == 600
    assert values[("gen_ai.client.token.usage.avg", "input")] == 200
    assert values[("gen_ai.client.token.usage.avg", "output")] == 30
    assert values[("gen_ai.client.operation.duration.avg", "")] == pytest.approx(1.2)
    total = next(
        m for m in records_of(result, MetricRecord) if m.name == "gen_ai.client.token.usage.sum"
    )
    assert total.unit == "{token}"
    assert total.at == datetime(2026, 11, 21, 19, 41, tzinfo=UTC)
    assert total.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.token.type": "input",
        "resource.service.name": "rag-bot",
    }


def test_a_histogram_point_without_observations_has_no_average() -> None:
    names = [m.name for _, m in parse_metrics_fixture().records if isinstance(m, MetricRecord)]

    assert names.count("gen_ai.client.operation.duration.count") == 2
    assert names.count("gen_ai.client.operation.duration.avg") == 1


def test_gauges_sums_exponential_histograms_and_summaries_are_samples() -> None:
    values = {m.name: m.value for m in records_of(parse_metrics_fixture(), MetricRecord)}

    assert values["agent.tool.calls"] == 7
    assert values["process.memory.usage"] == 52428800
    assert (values["llm.latency.count"], values["llm.latency.avg"]) == (2, 500)
    assert (values["legacy.request.latency.count"], values["legacy.request.latency.sum"]) == (4, 8)


def test_a_point_with_no_recorded_value_is_skipped() -> None:
    memory = [
        m
        for m in records_of(parse_metrics_fixture(), MetricRecord)
        if m.name == "process.memory.usage"
    ]

    assert [m.value for m in memory] == [52428800]


def test_a_metric_point_with_a_session_attribute_belongs_to_that_session() -> None:
    sessions = {m.name: m.session_id for m in records_of(parse_metrics_fixture(), MetricRecord)}

    assert sessions["agent.tool.calls"] == "conv-42"
    assert sessions["process.memory.usage"] == ""


def test_protobuf_metrics_parse_like_json_and_ids_are_stable() -> None:
    from_json = parse_metrics_fixture()
    from_protobuf = parse_metrics_fixture(PROTOBUF)

    assert from_protobuf.errors == []
    assert [r.record_id for _, r in from_json.records] == [
        r.record_id for _, r in from_protobuf.records
    ]
    ids = [r.record_id for _, r in from_json.records]
    assert len(ids) == len(set(ids))


def test_a_metric_point_without_a_time_is_refused_with_its_path() -> None:
    body = json.dumps(
        {
            "resourceMetrics": [
                {
                    "scopeMetrics": [
                        {"metrics": [{"name": "x", "gauge": {"dataPoints": [{"asDouble": 1.0}]}}]}
                    ]
                }
            ]
        }
    ).encode()

    result = parse_otlp_metrics(body, JSON, max_string_chars=LIMIT)

    (error,) = result.errors
    assert error.field == "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0]"
    assert "timeUnixNano" in error.message
    assert result.records == []


def test_a_histogram_count_past_64_bits_is_refused_with_its_path_and_the_rest_kept() -> None:
    """OTLP/JSON writes a count as a decimal string of any length; one past 64 bits made
    float() raise OverflowError and failed the whole request."""
    points = [
        {"timeUnixNano": "1795290000000000000", "count": "9" * 400, "sum": 1.0},
        {"timeUnixNano": "1795290000000000000", "count": "4", "sum": 2.0},
    ]
    metric = {"name": "gen_ai.client.operation.duration", "histogram": {"dataPoints": points}}
    body = json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]}).encode()

    result = parse_otlp_metrics(body, JSON, max_string_chars=LIMIT)

    (error,) = result.errors
    assert error.field.endswith("histogram.dataPoints[0].count")
    assert "64-bit" in error.message
    samples = {r.name: r.value for r in records_of(result, MetricRecord)}
    assert samples["gen_ai.client.operation.duration.count"] == 4.0


# --- logs -------------------------------------------------------------------------------------


def test_logs_join_the_session_of_their_trace_or_session_attribute() -> None:
    result = parse_otlp_logs((FIXTURES / "logs.json").read_bytes(), JSON, max_string_chars=LIMIT)

    lines = records_of(result, TranscriptRecord)
    assert [(line.session_id, line.span_id, line.text) for line in lines] == [
        ("0af7651916cd43dd8448eb211c80319c", "c2d3e4f5a6b70819", "calling tool get_weather"),
        (
            "0af7651916cd43dd8448eb211c80319c",
            "c2d3e4f5a6b70819",
            "ERROR: weather backend timed out",
        ),
        ("0af7651916cd43dd8448eb211c80319c", "", "WARN: retrying with a smaller prompt"),
        ("conv-42", "", '{"content":"What\'s the weather in Paris?"}'),
    ]
    assert {line.role for line in lines} == {"log"}
    assert lines[0].trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert lines[2].at == datetime(2026, 11, 21, 19, 40, 2, tzinfo=UTC)  # observed time


def test_a_log_with_neither_trace_nor_session_is_refused() -> None:
    result = parse_otlp_logs((FIXTURES / "logs.json").read_bytes(), JSON, max_string_chars=LIMIT)

    (error,) = result.errors
    assert error.index == 4
    assert error.field == "resourceLogs[0].scopeLogs[0].logRecords[4]"
    assert "no trace_id or session attribute" in error.message
    assert error.raw["body"] == "cache warm-up finished"


def test_protobuf_logs_carry_their_trace_and_span_ids() -> None:
    request = ExportLogsServiceRequest()
    log = request.resource_logs.add().scope_logs.add().log_records.add()
    log.time_unix_nano = 1795290001000000000
    log.severity_number = 17
    log.body.string_value = "tool failed"
    log.trace_id = bytes.fromhex(SUCCESS_TRACE)
    log.span_id = bytes.fromhex(WEATHER_AGENT)
    body = request.SerializeToString()

    result = parse_otlp_logs(body, PROTOBUF, max_string_chars=LIMIT)
    retry = parse_otlp_logs(body, PROTOBUF, max_string_chars=LIMIT)

    (line,) = records_of(result, TranscriptRecord)
    assert (line.session_id, line.span_id, line.text) == (
        SUCCESS_TRACE,
        WEATHER_AGENT,
        "ERROR: tool failed",
    )
    assert line.record_id == records_of(retry, TranscriptRecord)[0].record_id


def test_an_undecodable_log_body_is_a_400() -> None:
    with pytest.raises(BodyError) as caught:
        parse_otlp_logs(b"\xff\xff\xff", PROTOBUF, max_string_chars=LIMIT)

    assert caught.value.status == 400
