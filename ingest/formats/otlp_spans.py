"""Mapping wire spans onto records: span kinds, LLM and tool payloads, agents, errors, scores
(semconv.py says what the attributes mean). Pure.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingest.formats import scores
from ingest.formats.otlp_flows import flow_records
from ingest.formats.otlp_sessions import _trace_records
from ingest.formats.otlp_values import _at, _digest
from ingest.formats.otlp_wire import (
    DEFAULT_SESSION_ATTRIBUTES,
    MAX_NAME_CHARS,
    RESOURCE_SPAN_ATTRIBUTES,
    SPAN_KIND_NAMES,
    STATUS_ERROR,
    STATUS_NAMES,
    WireSpan,
)
from ingest.formats.records import DETAILED_KIND_KEY, AgentRecord, Record, ScoreRecord, SpanRecord
from ingest.formats.semconv import SpanMeaning, describe_span
from ingest.formats.semconv_rules import BUILTIN_MESSAGE_RULES, MessageRule


@dataclass(frozen=True, slots=True)
class _Failure:
    error_type: str
    message: str
    stack_trace: str
    time_ns: int


def map_spans(
    spans: list[WireSpan],
    *,
    session_attributes: tuple[str, ...] = DEFAULT_SESSION_ATTRIBUTES,
    message_rules: tuple[MessageRule, ...] = BUILTIN_MESSAGE_RULES,
) -> list[tuple[int, Record]]:
    """Records for the spans of one request. Relations (tool-call requests attached to their
    LLM call, agent ancestry, session roots) are resolved within the request only: parents that
    arrive in another request are linked later by (trace, span) ids in the store. Messages,
    workflows and steps come from otlp_flows.py (message_rules map framework attributes)."""
    meanings = [describe_span(span.name, span.attributes) for span in spans]
    positions = {(span.trace_id, span.span_id): i for i, span in enumerate(spans)}
    parents = [
        positions.get((span.trace_id, span.parent_span_id)) if span.parent_span_id else None
        for span in spans
    ]
    calls, attached = _tool_calls_by_parent(spans, meanings, parents)
    agents = _agent_ids(spans, meanings, parents)
    records: list[tuple[int, Record]] = []
    for i, span in enumerate(spans):
        if i not in attached:
            for record in _span_records(span, meanings[i], agents[i], calls.get(i, ())):
                records.append((span.index, record))
    names = tuple(dict.fromkeys((*session_attributes, *DEFAULT_SESSION_ATTRIBUTES)))
    records.extend(_trace_records(spans, meanings, names))
    tree = (positions, parents)
    records.extend(flow_records(spans, meanings, agents, rules=message_rules, tree=tree))
    records.extend(_evaluation_records(spans))
    return records


def _evaluation_records(spans: list[WireSpan]) -> list[tuple[int, Record]]:
    """The scores the spans state (_evaluation_scores), by span index."""
    found: list[tuple[int, Record]] = []
    name_key, kind_key = scores.EVALUATION_NAME, scores.OPENINFERENCE_KIND
    for span in spans:
        # Nearly every span has no evaluation: decide that in the loop, without a call.
        if span.events or name_key in span.attributes or kind_key in span.attributes:
            found.extend((span.index, score) for score in _evaluation_scores(span))
    return found


def _evaluation_scores(span: WireSpan) -> list[ScoreRecord]:
    """The scores a span states: its `gen_ai.evaluation.result` events (of the span itself),
    and, for a span that is itself an evaluation (GenAI evaluation attributes, an OpenInference
    EVALUATOR), a score of the span it evaluates, its parent (the session when it has none).
    Keyed by trace, span and evaluation name, so a re-sent span changes its scores in place."""
    attributes = span.attributes
    is_evaluation = scores.EVALUATION_NAME in attributes or scores.OPENINFERENCE_KIND in attributes
    judged = [e for e in span.events if e.name == scores.EVALUATION_EVENT] if span.events else ()
    if not judged and not is_evaluation:
        return []  # nearly every span: two lookups, and no records
    found: list[ScoreRecord] = []
    names: dict[str, int] = {}
    author = str(span.resource.get("service.name") or span.scope_name or "")
    for event in judged:
        evaluation = scores.evaluation(event.attributes)
        if evaluation is not None:
            at = _at(event.time_ns or span.end_ns or span.start_ns)
            key = _score_key(span.trace_id, span.span_id, evaluation.name, names)
            found.append(_eval_record(evaluation, key, span, span.span_id, at, author))
    evaluation = None
    if is_evaluation:
        evaluation = scores.evaluation(attributes) or scores.openinference_evaluation(
            attributes, span.name
        )
    if evaluation is not None:
        key = _score_key(span.trace_id, span.span_id, evaluation.name, names)
        at = _at(span.end_ns or span.start_ns)
        found.append(_eval_record(evaluation, key, span, span.parent_span_id, at, author))
    return found


def _score_key(trace_id: str, span_id: str, name: str, seen: dict[str, int]) -> str:
    seen[name] = seen.get(name, 0) + 1
    key = f"otlp-eval:{trace_id}:{span_id}:{name}" + (f"#{seen[name]}" if seen[name] > 1 else "")
    return key if len(key) <= 128 else f"otlp-eval:{_digest(key)}"


def _eval_record(
    evaluation: scores.Evaluation,
    key: str,
    span: WireSpan,
    judged_span_id: str,
    at: datetime,
    author: str,
) -> ScoreRecord:
    return scores.evaluation_record(
        evaluation,
        record_id=key,
        session_id=span.trace_id,
        span_id=judged_span_id,
        at=at,
        author=author,
    )


def _tool_calls_by_parent(
    spans: list[WireSpan], meanings: list[SpanMeaning], parents: list[int | None]
) -> tuple[dict[int, list[dict[str, Any]]], set[int]]:
    """Tool-call request spans whose LLM call is in the request: {llm position: [calls]}."""
    found: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    attached: set[int] = set()
    for i, meaning in enumerate(meanings):
        parent = parents[i]
        if meaning.tool_call is None or parent is None or meanings[parent].kind != "llm":
            continue
        found.setdefault(parent, []).append((spans[i].start_ns, meaning.tool_call))
        attached.add(i)
    calls = {
        parent: [call for _, call in sorted(items, key=lambda x: x[0])]
        for parent, items in found.items()
    }
    return calls, attached


def _agent_ids(
    spans: list[WireSpan], meanings: list[SpanMeaning], parents: list[int | None]
) -> list[str]:
    """For each span, the span id of its nearest agent ancestor within the request, or ""."""
    # covering[i]: the agent id that applies to i's descendants (i itself if i is an agent).
    covering: dict[int, str] = {}

    def cover(position: int | None) -> str:
        path: list[int] = []
        while position is not None and position not in covering and len(path) <= len(spans):
            if meanings[position].detail == "agent":
                covering[position] = spans[position].span_id
                break
            path.append(position)
            position = parents[position]
        value = covering.get(position, "") if position is not None else ""
        for step in path:
            covering[step] = value
        return value

    return [cover(parents[i]) for i in range(len(spans))]


def _span_records(
    span: WireSpan, meaning: SpanMeaning, agent_id: str, calls: Sequence[dict[str, Any]]
) -> list[Record]:
    failures = _failures(span) if span.events or span.status_code == STATUS_ERROR else []
    record_id = f"otlp:{span.digest}"
    if agent_id or calls:
        # Both depend on what else came in the request, so they are part of the version.
        call_ids = ",".join(str(call.get("id")) for call in calls) if calls else ""
        context = zlib.crc32(f"{agent_id}|{call_ids}".encode())
        record_id = f"{record_id}:{context:08x}"
    first = failures[0] if failures else None
    # Positional, in field order (a call with more than 15 keyword arguments costs several
    # times more: see WireSpan); each line names its field.
    record = SpanRecord(
        record_id,
        span.trace_id,  # session_id: the trace's own until a trace link says otherwise
        span.span_id,
        meaning.kind,
        (meaning.name or span.name or meaning.detail)[:MAX_NAME_CHARS],  # name
        _at(span.start_ns),  # started_at
        span.parent_span_id,
        agent_id,
        _at(span.end_ns) if span.end_ns else None,  # ended_at
        STATUS_NAMES.get(span.status_code, "unset"),  # status
        meaning.model[:200],
        meaning.provider[:100],
        meaning.prompt_tokens,
        meaning.completion_tokens,
        meaning.cost,
        first.error_type[:200] if first else "",  # error_type
        first.message if first else "",  # error_message
        first.stack_trace if first else "",  # stack_trace
        meaning.params,
        meaning.returns,
        meaning.prompt,
        _with_tool_calls(meaning.completion, calls) if calls else meaning.completion,
        _span_attributes(span, meaning),  # attributes
        span.trace_id,
        meaning.unmapped_keys,
    )
    records: list[Record] = [record]
    if failures:
        records.extend(_error_records(span, meaning, record, failures))
    if meaning.detail == "agent":
        records.append(_agent_record(span, meaning, record_id))
    return records


def _span_attributes(span: WireSpan, meaning: SpanMeaning) -> dict[str, Any]:
    attributes = dict(span.attributes)
    # Deleting the few payload keys from a copy costs less than filtering every key.
    for key in meaning.payload_keys:
        del attributes[key]
    attributes[DETAILED_KIND_KEY] = meaning.detail
    _add_llm_outcome(attributes, meaning)
    attributes["observatory.span_kind"] = SPAN_KIND_NAMES.get(span.kind, "unspecified")
    if span.scope_name:
        attributes["scope.name"] = span.scope_name
    if span.scope_version:
        attributes["scope.version"] = span.scope_version
    resource = span.resource
    for key, name in RESOURCE_SPAN_ATTRIBUTES:
        if key in resource:
            attributes[name] = resource[key]
    others = [event for event in span.events if event.name != "exception"] if span.events else ()
    if others:
        attributes["observatory.events"] = [
            {
                "name": e.name,
                "at": _at(e.time_ns or span.end_ns or span.start_ns).isoformat(),
                "attributes": e.attributes,
            }
            for e in others
        ]
    if span.truncated:
        attributes["observatory.truncated"] = dict(span.truncated)
    return attributes


def _add_llm_outcome(attributes: dict[str, Any], meaning: SpanMeaning) -> None:
    """Why the model stopped and its response id, under one name whatever the convention (the
    detectors read observatory.finish_reasons to tell whether a session answered)."""
    if meaning.finish_reasons:
        attributes["observatory.finish_reasons"] = list(meaning.finish_reasons)
    if meaning.response_id:
        attributes["observatory.response_id"] = meaning.response_id


def _with_tool_calls(completion: Any, calls: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The LLM's answer with the tool calls the model requested (from tool_call.* children);
    calls the completion already lists (same id) are not repeated."""
    message = dict(completion) if isinstance(completion, dict) else {"role": "assistant"}
    if completion is not None and not isinstance(completion, dict):
        message["content"] = completion
    existing = list(message.get("tool_calls") or [])
    known = {call.get("id") for call in existing if isinstance(call, dict)}
    message["tool_calls"] = existing + [
        c for c in calls if c.get("id") not in known or c.get("id") is None
    ]
    return message


def _failures(span: WireSpan) -> list[_Failure]:
    """exception events deduplicated by (type, message) (agentops records each one twice),
    else the ERROR status itself."""
    failures: list[_Failure] = []
    seen: set[tuple[str, str]] = set()
    for event in span.events:
        if event.name != "exception":
            continue
        attributes = event.attributes
        failure = _Failure(
            error_type=str(attributes.get("exception.type") or attributes.get("error.type") or ""),
            message=str(attributes.get("exception.message") or ""),
            stack_trace=str(attributes.get("exception.stacktrace") or ""),
            time_ns=event.time_ns or span.end_ns or span.start_ns,
        )
        if (failure.error_type, failure.message) not in seen:
            seen.add((failure.error_type, failure.message))
            failures.append(failure)
    if not failures and span.status_code == 2:
        failures.append(_status_failure(span))
    return failures


def _status_failure(span: WireSpan) -> _Failure:
    """An ERROR status without exception events: "ValueError: msg" splits into type and text."""
    message = span.status_message
    error_type = str(span.attributes.get("error.type") or "")
    head, sep, rest = message.partition(":")
    if not error_type and sep and head and " " not in head.strip():
        error_type, message = head.strip(), rest.strip()
    return _Failure(
        error_type=error_type or "Error",
        message=message,
        stack_trace="",
        time_ns=span.end_ns or span.start_ns,
    )


def _error_records(
    span: WireSpan, meaning: SpanMeaning, record: SpanRecord, failures: list[_Failure]
) -> list[SpanRecord]:
    errors: list[SpanRecord] = []
    for n, failure in enumerate(failures, start=1):
        at = _at(failure.time_ns)
        errors.append(
            SpanRecord(
                f"{record.record_id}:error:{n}",  # record_id
                span.trace_id,  # session_id
                f"{span.span_id}-error-{n}",  # span_id
                "error",  # kind
                (failure.error_type or "error")[:MAX_NAME_CHARS],  # name
                at,  # started_at; at most 12 keywords follow (see _span_records)
                trace_id=span.trace_id,
                parent_span_id=span.span_id,
                agent_id=record.agent_id,
                ended_at=at,
                status="error",
                error_type=failure.error_type[:200],
                error_message=failure.message,
                stack_trace=failure.stack_trace,
                attributes={
                    DETAILED_KIND_KEY: "error",
                    "trigger_span_id": span.span_id,
                    "trigger_kind": meaning.detail,
                },
            )
        )
    return errors


def _agent_record(span: WireSpan, meaning: SpanMeaning, record_id: str) -> AgentRecord:
    return AgentRecord(
        record_id=f"{record_id}:agent",
        session_id=span.trace_id,
        agent_id=span.span_id,
        action="created",
        at=_at(span.start_ns),
        name=meaning.name[:200],
        init_params=meaning.params if isinstance(meaning.params, dict) else None,
    )
