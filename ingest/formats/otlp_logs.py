"""OTLP log records into transcript lines (role log) and scores. Pure."""

from __future__ import annotations

from typing import Any

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from ingest.formats import scores
from ingest.formats.otlp_decode import _json_items, _json_resource, _json_top, _load_protobuf
from ingest.formats.otlp_sessions import session_value
from ingest.formats.otlp_spans import _score_key
from ingest.formats.otlp_values import (
    _at,
    _digest,
    _jget,
    _json_attributes,
    _json_enum,
    _json_id,
    _json_int,
    _json_value,
    _pb_attributes,
    _pb_value,
)
from ingest.formats.otlp_wire import (
    DEFAULT_SESSION_ATTRIBUTES,
    LOUD_SEVERITY_TEXTS,
    MAX_UNIX_NANOS,
    SEVERITY_ENUM,
    SEVERITY_WARN,
    WireBatch,
    WireLog,
)
from ingest.formats.records import ParseResult, Record, RecordError, ScoreRecord, TranscriptRecord


def decode_protobuf_logs(body: bytes, *, max_string_chars: int) -> WireBatch:
    request = _load_protobuf(ExportLogsServiceRequest, body)
    logs: list[WireLog] = []
    index = 0
    for r, resource_logs in enumerate(request.resource_logs):
        resource = _pb_attributes(resource_logs.resource.attributes, max_string_chars, {})
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            for n, log in enumerate(scope_logs.log_records):
                path = f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{n}]"
                logs.append(_pb_log(log, index, path, resource, max_string_chars))
                index += 1
    return WireBatch(items=logs, errors=[])


def _pb_log(log: Any, index: int, path: str, resource: dict[str, Any], limit: int) -> WireLog:
    truncated: dict[str, int] = {}
    return WireLog(
        index=index,
        path=path,
        trace_id=_valid_hex(log.trace_id, 16),
        span_id=_valid_hex(log.span_id, 8),
        time_ns=log.time_unix_nano,
        observed_ns=log.observed_time_unix_nano,
        severity_number=log.severity_number,
        severity_text=log.severity_text,
        body=_pb_value(log.body, log.body.WhichOneof("value"), limit, truncated, "body", 0),
        event_name=log.event_name,
        attributes=_pb_attributes(log.attributes, limit, truncated),
        resource=resource,
        digest=_digest(b"log", log.SerializeToString()),
    )


def _valid_hex(value: bytes | None, size: int) -> str:
    """Hex of a usable id; "" when absent, malformed or all zeros (no trace context)."""
    if not value or len(value) != size or not any(value):
        return ""
    return value.hex()


def decode_json_logs(payload: dict[str, Any], *, max_string_chars: int) -> WireBatch:
    logs: list[WireLog] = []
    errors: list[RecordError] = []
    index = 0
    for r, resource_logs in enumerate(_json_top(payload, "resourceLogs", "resource_logs")):
        resource = _json_resource(resource_logs, max_string_chars)
        for s, scope_logs in enumerate(_json_items(resource_logs, "scopeLogs", "scope_logs")):
            for n, raw in enumerate(_json_items(scope_logs, "logRecords", "log_records")):
                path = f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{n}]"
                if isinstance(raw, dict):
                    logs.append(_json_log(raw, index, path, resource, max_string_chars))
                else:
                    errors.append(_log_error(index, path, "a log record must be an object", raw))
                index += 1
    return WireBatch(items=logs, errors=errors)


def _json_log(
    raw: dict[str, Any], index: int, path: str, resource: dict[str, Any], limit: int
) -> WireLog:
    truncated: dict[str, int] = {}
    return WireLog(
        index=index,
        path=path,
        trace_id=_valid_hex(_json_id(_jget(raw, "traceId", "trace_id"), 16), 16),
        span_id=_valid_hex(_json_id(_jget(raw, "spanId", "span_id"), 8), 8),
        time_ns=_json_int(_jget(raw, "timeUnixNano", "time_unix_nano")) or 0,
        observed_ns=_json_int(_jget(raw, "observedTimeUnixNano", "observed_time_unix_nano")) or 0,
        severity_number=_json_enum(_jget(raw, "severityNumber", "severity_number"), SEVERITY_ENUM),
        severity_text=str(_jget(raw, "severityText", "severity_text") or ""),
        body=_json_value(raw.get("body"), limit, truncated, "body", 0),
        event_name=str(_jget(raw, "eventName", "event_name") or ""),
        attributes=_json_attributes(raw.get("attributes"), limit, truncated),
        resource=resource,
        digest=_digest(b"log", orjson.dumps(raw)),
    )


def _log_error(index: int, path: str, message: str, raw: Any) -> RecordError:
    return RecordError(
        index=index, field=path, message=f"{path}: {message}", record_type="log", raw=raw
    )


def map_logs(
    logs: list[WireLog],
    errors: list[RecordError],
    *,
    session_attributes: tuple[str, ...] = DEFAULT_SESSION_ATTRIBUTES,
) -> ParseResult:
    names = tuple(dict.fromkeys((*session_attributes, *DEFAULT_SESSION_ATTRIBUTES)))
    records: list[tuple[int, Record]] = []
    errors = list(errors)
    for log in logs:
        item = _log_record(log, names)
        if isinstance(item, RecordError):
            errors.append(item)
        else:
            records.append((log.index, item))
    return ParseResult(records=records, errors=errors)


def _log_record(
    log: WireLog, names: tuple[str, ...]
) -> TranscriptRecord | ScoreRecord | RecordError:
    session_id = session_value((log.attributes, log.resource), names) or log.trace_id
    raw = _wire_log_raw(log)
    if not session_id:
        return _log_error(
            log.index, log.path, "log record has no trace_id or session attribute", raw
        )
    nanos = log.time_ns or log.observed_ns
    if not 0 < nanos < MAX_UNIX_NANOS:
        return _log_error(
            log.index, f"{log.path}.timeUnixNano", "log record has no usable time", raw
        )
    if scores.EVALUATION_EVENT in (log.event_name, log.attributes.get("event.name")):
        evaluation = scores.evaluation(log.attributes)
        if evaluation is not None:
            # The event, sent as a log record: it judges the span of its span context.
            return scores.evaluation_record(
                evaluation,
                record_id=_score_key(session_id, log.span_id, evaluation.name, {}),
                session_id=session_id,
                span_id=log.span_id,
                at=_at(nanos),
                author=str(log.resource.get("service.name") or ""),
            )
    return TranscriptRecord(
        record_id=f"otlp-log:{log.digest}",
        session_id=session_id,
        trace_id=log.trace_id,
        span_id=log.span_id,
        role="log",
        text=_log_text(log),
        at=_at(nanos),
    )


def _wire_log_raw(log: WireLog) -> dict[str, Any]:
    return {
        "timeUnixNano": str(log.time_ns),
        "severityText": log.severity_text,
        "body": log.body,
        "attributes": log.attributes,
        "traceId": log.trace_id,
        "spanId": log.span_id,
    }


def _log_text(log: WireLog) -> str:
    body = log.body
    if body is None or body == "":
        text = log.event_name or (_json_dumps(log.attributes) if log.attributes else "")
    else:
        text = body if isinstance(body, str) else _json_dumps(body)
    level = _loud_level(log.severity_number, log.severity_text)
    return f"{level}: {text}" if level else text


def _loud_level(number: int, text: str) -> str:
    """The severity to show in front of a line: WARN and above only."""
    label = text.strip().upper()
    if number >= SEVERITY_WARN:
        return label or ("WARN" if number < 17 else "ERROR" if number < 21 else "FATAL")
    return label if label in LOUD_SEVERITY_TEXTS else ""


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()
