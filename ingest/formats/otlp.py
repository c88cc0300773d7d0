"""OTLP/HTTP traces, metrics and logs (protobuf and OTLP/JSON) parsed into records.py shapes. Pure.

Decoding turns either encoding into small frozen wire dataclasses (hex ids, unix nanoseconds,
attributes as plain JSON-able dicts); mapping turns those into records, using semconv.py for what
a span's attributes mean. A bad span, data point or log record becomes a RecordError naming its
path (e.g. resourceSpans[0].scopeSpans[1].spans[3].traceId); only an undecodable body raises.
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.formats.otlp_decode import decode_json_traces, decode_protobuf_traces
from ingest.formats.otlp_logs import decode_json_logs, decode_protobuf_logs, map_logs
from ingest.formats.otlp_metrics import decode_json_metrics, decode_protobuf_metrics, map_points
from ingest.formats.otlp_spans import map_spans
from ingest.formats.otlp_wire import DEFAULT_SESSION_ATTRIBUTES, JSON_TYPES, PROTOBUF_TYPES
from ingest.formats.records import BodyError, ParseResult
from ingest.formats.semconv_rules import BUILTIN_MESSAGE_RULES, MessageRule


def parse_otlp_traces(
    body: bytes,
    content_type: str,
    *,
    max_string_chars: int,
    session_attributes: tuple[str, ...] = DEFAULT_SESSION_ATTRIBUTES,
    message_rules: tuple[MessageRule, ...] = BUILTIN_MESSAGE_RULES,
) -> ParseResult:
    """An ExportTraceServiceRequest (already decompressed) as records.

    Idempotent: every record id hashes the span's wire content, so a byte-identical retry yields
    the same ids and a changed re-send yields new ids for the same (trace, span) to merge.
    Raises BodyError 415 for an unsupported content type and 400 for an undecodable body.
    """
    encoding = otlp_encoding(content_type)
    if encoding == "json":
        batch = decode_json_traces(_load_json(body), max_string_chars=max_string_chars)
    else:
        batch = decode_protobuf_traces(body, max_string_chars=max_string_chars)
    records = map_spans(
        batch.items, session_attributes=session_attributes, message_rules=message_rules
    )
    return ParseResult(records=records, errors=batch.errors)


def parse_otlp_metrics(
    body: bytes,
    content_type: str,
    *,
    max_string_chars: int,
    session_attributes: tuple[str, ...] = DEFAULT_SESSION_ATTRIBUTES,
) -> ParseResult:
    """An ExportMetricsServiceRequest as MetricRecords: one per gauge/sum point, count/sum/avg
    per histogram or summary point. Record ids hash (name, attributes, time, value)."""
    encoding = otlp_encoding(content_type)
    if encoding == "json":
        batch = decode_json_metrics(_load_json(body), max_string_chars=max_string_chars)
    else:
        batch = decode_protobuf_metrics(body, max_string_chars=max_string_chars)
    return map_points(batch.items, batch.errors, session_attributes=session_attributes)


def parse_otlp_logs(
    body: bytes,
    content_type: str,
    *,
    max_string_chars: int,
    session_attributes: tuple[str, ...] = DEFAULT_SESSION_ATTRIBUTES,
) -> ParseResult:
    """An ExportLogsServiceRequest as "log" transcript lines in the session of their trace (or
    session attribute). A record with neither becomes a RecordError."""
    encoding = otlp_encoding(content_type)
    if encoding == "json":
        batch = decode_json_logs(_load_json(body), max_string_chars=max_string_chars)
    else:
        batch = decode_protobuf_logs(body, max_string_chars=max_string_chars)
    return map_logs(batch.items, batch.errors, session_attributes=session_attributes)


def otlp_encoding(content_type: str) -> str:
    """The encoding an OTLP/HTTP Content-Type names ("protobuf" or "json"); BodyError 415 for
    anything else. Parameters such as "; charset=utf-8" are ignored."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in PROTOBUF_TYPES:
        return "protobuf"
    if media_type in JSON_TYPES:
        return "json"
    accepted = ", ".join((*PROTOBUF_TYPES, *JSON_TYPES))
    raise BodyError(
        f"Unsupported Content-Type {content_type!r}; OTLP/HTTP accepts {accepted}",
        status=415,
        field="Content-Type",
    )


def _load_json(body: bytes) -> dict[str, Any]:
    try:
        # PostgreSQL text and jsonb cannot hold NUL; an escaped one would fail the whole batch.
        payload = orjson.loads(body.replace(b"\\u0000", b"\\ufffd"))
    except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise BodyError(f"Body is not valid OTLP/JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise BodyError(f"OTLP/JSON body must be an object, got {type(payload).__name__}")
    return payload
