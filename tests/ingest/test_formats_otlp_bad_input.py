"""OTLP/HTTP parsing of bad input (ingest/formats/otlp.py), tested without a database: every
bad body or value gets a clear error with its path, and the good spans beside it are kept.
"""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.formats.otlp import (
    parse_otlp_traces,
)
from ingest.formats.records import (
    BodyError,
    ParseResult,
    SpanRecord,
)
from tests.ingest.otlp_fixtures import (
    JSON,
    LIMIT,
    PROTOBUF,
    parse_fixture,
    raw_body,
    records_of,
    span_named,
)

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
