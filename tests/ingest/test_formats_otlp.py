"""OTLP/HTTP trace parsing (ingest/formats/otlp.py), tested without a database: the golden tests.

They feed the exact protobuf bodies the agentops 0.4.21 SDK sent (tests/fixtures/agentops) and
assert what a user would see. Bad input, other instrumentations, metrics and logs are in the
other test_formats_otlp_*.py modules; their shared readers in tests/ingest/otlp_fixtures.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.formats.otlp import (
    parse_otlp_traces,
)
from ingest.formats.records import (
    AgentRecord,
    ParseResult,
    SessionRecord,
    SpanRecord,
)
from tests.ingest.otlp_fixtures import (
    AGENTOPS,
    FIRST_LLM_SPAN,
    JSON,
    LIMIT,
    PROTOBUF,
    SUCCESS_TRACE,
    TOOL_CALL_SPAN,
    WEATHER_AGENT,
    at,
    parse_raw,
    raw_body,
    records_of,
    session_record,
    span_named,
)

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
    assert llms[2].attributes["observatory.response_id"]
    assert llms[2].unmapped_keys == (
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
