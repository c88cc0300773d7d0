"""OTLP/HTTP metrics and logs parsing (ingest/formats/otlp.py), tested without a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber

from ingest.formats.otlp import (
    parse_otlp_logs,
    parse_otlp_metrics,
)
from ingest.formats.records import (
    BodyError,
    MetricRecord,
    ParseResult,
    TranscriptRecord,
)
from tests.ingest.otlp_fixtures import (
    FIXTURES,
    JSON,
    LIMIT,
    PROTOBUF,
    SUCCESS_TRACE,
    WEATHER_AGENT,
    records_of,
)

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
    log.severity_number = SeverityNumber.SEVERITY_NUMBER_ERROR  # 17
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
