"""OTLP evaluations become scores: GenAI `gen_ai.evaluation.result` span events and log
records, spans that carry evaluation attributes, and OpenInference EVALUATOR spans. Pure.

The payloads are written by hand after the conventions' text (semantic-conventions-genai,
model/gen-ai/events.yaml: event gen_ai.evaluation.result)."""

from __future__ import annotations

import json
from typing import Any

from ingest.formats.otlp import parse_otlp_logs, parse_otlp_traces
from ingest.formats.records import ScoreRecord, SpanRecord, TranscriptRecord

TRACE = "0af7651916cd43dd8448eb211c80319c"
LLM_SPAN = "b7ad6b7169203331"
ROOT = "00f067aa0ba902b7"
T0 = 1_763_719_200_000_000_000  # 2025-11-21T10:00:00Z


def attrs(values: dict[str, Any]) -> list[dict[str, Any]]:
    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, float):
            return {"doubleValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        return {"stringValue": v}

    return [{"key": k, "value": value(v)} for k, v in values.items()]


def span(span_id: str, name: str, parent: str = "", **fields: Any) -> dict[str, Any]:
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(T0),
        "endTimeUnixNano": str(T0 + 2_000_000_000),
        **fields,
    }


def traces(*spans: dict[str, Any]) -> bytes:
    resource = {"attributes": attrs({"service.name": "support-bot"})}
    return json.dumps(
        {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": list(spans)}]}]}
    ).encode()


def scores_of(body: bytes) -> list[ScoreRecord]:
    parsed = parse_otlp_traces(body, "application/json", max_string_chars=10_000)
    assert parsed.errors == []
    return [r for _, r in parsed.records if isinstance(r, ScoreRecord)]


def test_an_evaluation_event_scores_the_span_it_is_on() -> None:
    event = {
        "name": "gen_ai.evaluation.result",
        "timeUnixNano": str(T0 + 3_000_000_000),
        "attributes": attrs(
            {
                "gen_ai.evaluation.name": "Relevance",
                "gen_ai.evaluation.score.value": 4.0,
                "gen_ai.evaluation.score.label": "relevant",
                "gen_ai.evaluation.explanation": "It answers the question.",
            }
        ),
    }
    llm = span(LLM_SPAN, "chat gpt-4o", ROOT, attributes=attrs({"gen_ai.operation.name": "chat"}))
    [found] = scores_of(traces(span(ROOT, "agent run"), {**llm, "events": [event]}))
    assert (found.session_id, found.span_id, found.name) == (TRACE, LLM_SPAN, "Relevance")
    assert (found.data_type, found.value, found.label) == ("numeric", 4.0, "relevant")
    assert (found.comment, found.source, found.author) == (
        "It answers the question.",
        "eval",
        "support-bot",
    )
    assert found.at is not None and found.at.second == 3


def test_the_same_span_sent_again_gives_the_same_score_id_so_a_change_updates_it() -> None:
    def with_score(value: float) -> bytes:
        event = {
            "name": "gen_ai.evaluation.result",
            "attributes": attrs(
                {"gen_ai.evaluation.name": "judge", "gen_ai.evaluation.score.value": value}
            ),
        }
        return traces(span(LLM_SPAN, "chat", events=[event]))

    assert scores_of(with_score(0.2))[0].record_id == scores_of(with_score(0.9))[0].record_id


def test_a_span_carrying_evaluation_attributes_scores_its_parent() -> None:
    judge = span(
        "c1c1c1c1c1c1c1c1",
        "score",
        LLM_SPAN,
        attributes=attrs(
            {"gen_ai.evaluation.name": "toxicity", "gen_ai.evaluation.score.label": "clean"}
        ),
    )
    parsed = parse_otlp_traces(
        traces(span(LLM_SPAN, "chat"), judge), "application/json", max_string_chars=10_000
    )
    [found] = [r for _, r in parsed.records if isinstance(r, ScoreRecord)]
    assert (found.span_id, found.data_type, found.label) == (LLM_SPAN, "categorical", "clean")
    judge_span = next(
        r for _, r in parsed.records if isinstance(r, SpanRecord) and r.name == "score"
    )
    assert "gen_ai.evaluation.name" not in judge_span.unmapped_keys  # understood, not unmapped


def test_an_openinference_evaluator_span_scores_its_parent() -> None:
    evaluator = span(
        "d2d2d2d2d2d2d2d2",
        "hallucination eval",
        LLM_SPAN,
        attributes=attrs(
            {
                "openinference.span.kind": "EVALUATOR",
                "eval.name": "hallucination",
                "eval.score": 1.0,
                "eval.label": "hallucinated",
                "eval.explanation": "invents a refund policy",
            }
        ),
    )
    [found] = scores_of(traces(span(LLM_SPAN, "chat"), evaluator))
    assert (found.name, found.value, found.label, found.span_id) == (
        "hallucination",
        1.0,
        "hallucinated",
        LLM_SPAN,
    )


def test_an_evaluation_without_a_score_or_label_is_no_score() -> None:
    event = {
        "name": "gen_ai.evaluation.result",
        "attributes": attrs({"gen_ai.evaluation.name": "x"}),
    }
    assert scores_of(traces(span(LLM_SPAN, "chat", events=[event]))) == []


def test_an_evaluation_log_record_scores_the_span_of_its_context() -> None:
    log = {
        "timeUnixNano": str(T0),
        "traceId": TRACE,
        "spanId": LLM_SPAN,
        "eventName": "gen_ai.evaluation.result",
        "attributes": attrs(
            {"gen_ai.evaluation.name": "correct", "gen_ai.evaluation.score.value": True}
        ),
    }
    other = {"timeUnixNano": str(T0), "traceId": TRACE, "body": {"stringValue": "hello"}}
    body = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [log, other]}]}]}).encode()
    parsed = parse_otlp_logs(body, "application/json", max_string_chars=10_000)
    kinds = [type(r) for _, r in parsed.records]
    assert kinds == [ScoreRecord, TranscriptRecord]
    found = parsed.records[0][1]
    assert isinstance(found, ScoreRecord)
    assert (found.session_id, found.span_id, found.data_type, found.label) == (
        TRACE,
        LLM_SPAN,
        "boolean",
        "true",
    )
