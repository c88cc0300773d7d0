"""OTLP/HTTP traces, metrics and logs (protobuf and OTLP/JSON) parsed into records.py shapes. Pure.

Decoding turns either encoding into small frozen wire dataclasses (hex ids, unix nanoseconds,
attributes as plain JSON-able dicts); mapping turns those into records, using semconv.py for what
a span's attributes mean. A bad span, data point or log record becomes a RecordError naming its
path (e.g. resourceSpans[0].scopeSpans[1].spans[3].traceId); only an undecodable body raises.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.formats import scores
from ingest.formats.otlp_flows import flow_records
from ingest.formats.records import (
    DETAILED_KIND_KEY,
    AgentRecord,
    BodyError,
    MetricRecord,
    ParseResult,
    Record,
    RecordError,
    ScoreRecord,
    SessionRecord,
    SpanRecord,
    TraceLinkRecord,
    TranscriptRecord,
)
from ingest.formats.semconv import (
    BUILTIN_MESSAGE_RULES,
    MessageRule,
    SpanMeaning,
    as_count,
    describe_span,
    first_present,
    parse_tags,
    session_fields,
)

DEFAULT_SESSION_ATTRIBUTES = ("session.id", "session_id", "gen_ai.conversation.id")
CONVERSATION_KEY = "gen_ai.conversation.id"
# AutoGen runtime attributes that carry "<name>_<team uuid>" (agent types, topics, agent ids).
AUTOGEN_TEAM_KEYS = (
    "recipient_agent_type",
    "sender_agent_type",
    "messaging.destination",
    "gen_ai.agent.id",
)
_TEAM_UUID = re.compile(r"_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", re.I)
PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
JSON_TYPES = ("application/json",)

MAX_NAME_CHARS = 300
MAX_SESSION_ID_CHARS = 128
MAX_NESTING = 32
# datetime cannot go past year 9999.
MAX_UINT64 = 2**64 - 1
MAX_UNIX_NANOS = 253402300799 * 10**9
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ZERO_TRACE_ID = bytes(16)
ZERO_SPAN_ID = bytes(8)

STATUS_NAMES = {0: "unset", 1: "ok", 2: "error"}
STATUS_ERROR = 2
SPAN_KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer"}
SPAN_KIND_NAMES[5] = "consumer"
SPAN_KIND_ENUM = {f"SPAN_KIND_{name.upper()}": n for n, name in SPAN_KIND_NAMES.items()}
STATUS_ENUM = {f"STATUS_CODE_{name.upper()}": n for n, name in STATUS_NAMES.items()}
SEVERITY_ENUM = {
    f"SEVERITY_NUMBER_{name}{suffix}": base + offset
    for name, base in (("TRACE", 1), ("DEBUG", 5), ("INFO", 9), ("WARN", 13), ("ERROR", 17))
    for offset, suffix in enumerate(("", "2", "3", "4"))
} | {f"SEVERITY_NUMBER_FATAL{s}": 21 + i for i, s in enumerate(("", "2", "3", "4"))}
SEVERITY_WARN = 13
LOUD_SEVERITY_TEXTS = ("WARN", "WARNING", "ERROR", "FATAL", "CRITICAL")
# Resource attributes copied onto every span as resource.<key>: small and useful for filtering.
RESOURCE_SPAN_KEYS = ("service.name", "service.version", "deployment.environment")
RESOURCE_SPAN_ATTRIBUTES = tuple((key, f"resource.{key}") for key in RESOURCE_SPAN_KEYS)
TASKWEAVER_ROUND_SPAN = "Session.send_message"
NO_SESSION_SPAN_TAG = "no-session-span"


# --- wire shapes ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WireEvent:
    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WireLink:
    """A span link: the span context another span points at (hex ids)."""

    trace_id: str
    span_id: str
    attributes: dict[str, Any]


# Not frozen, unlike the other wire shapes: one is built per span, and a frozen dataclass's
# __init__ sets each of its 18 fields through object.__setattr__ (4x slower). Treat as read-only.
# Built with positional arguments: CPython compiles a call with more than 15 keyword arguments
# to build a dict and unpack it (CALL_FUNCTION_EX), several times the cost of the call itself.
@dataclass(slots=True)
class WireSpan:
    """One decoded span: ids in hex, times in unix nanoseconds, attributes JSON-able."""

    index: int
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    events: tuple[WireEvent, ...]
    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    digest: str  # this version of the span: see _version_key
    truncated: dict[str, int]
    links: tuple[WireLink, ...] = ()


@dataclass(frozen=True, slots=True)
class WireLog:
    index: int
    path: str
    trace_id: str
    span_id: str
    time_ns: int
    observed_ns: int
    severity_number: int
    severity_text: str
    body: Any
    event_name: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    digest: str


@dataclass(frozen=True, slots=True)
class WirePoint:
    """One metric data point reduced to its samples, e.g. (("count", 3.0), ("sum", 1.2))."""

    index: int
    path: str
    name: str
    unit: str
    time_ns: int
    samples: tuple[tuple[str, float], ...]
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WireBatch:
    items: list[Any]
    errors: list[RecordError]


# --- public entry points --------------------------------------------------------------------


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


def _load_protobuf(message_type: Any, body: bytes) -> Any:
    try:
        return message_type.FromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        name = message_type.DESCRIPTOR.name
        raise BodyError(f"Body is not a valid OTLP protobuf {name}: {exc}") from exc


# --- values ---------------------------------------------------------------------------------


def _truncate(text: str, limit: int, key: str, truncated: dict[str, int]) -> str:
    if len(text) <= limit:
        return text
    truncated[key] = len(text)
    return (
        f"{text[:limit]}… [truncated: {len(text)} characters, the limit "
        f"OBSERVATORY_MAX_STRING_CHARS is {limit}]"
    )


def _clean(text: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _pb_attributes(
    kvs: Iterable[Any], limit: int, truncated: dict[str, int], prefix: str = ""
) -> dict[str, Any]:
    """Protobuf KeyValues as a dict. The hot path: a non-empty string (most attributes) costs
    one read and no call; everything else goes through WhichOneof."""
    out: dict[str, Any] = {}
    for kv in kvs:
        key = kv.key
        if "\x00" in key:  # jsonb keys cannot hold NUL either: the request would fail whole
            key = _clean(key)
        value = kv.value
        text = value.string_value
        if text:
            # PostgreSQL text and jsonb cannot hold NUL.
            if len(text) > limit or "\x00" in text:
                text = _clean(_truncate(text, limit, prefix + key, truncated))
            out[key] = text
            continue
        which = value.WhichOneof("value")
        if which == "int_value":  # token counts: the usual non-string, read without a call
            out[key] = value.int_value
        else:
            out[key] = _pb_value(value, which, limit, truncated, prefix + key, 0)
    return out


def _pb_value(
    value: Any, which: str | None, limit: int, truncated: dict[str, int], key: str, depth: int
) -> Any:
    if which == "string_value":
        text = value.string_value
        return _clean(_truncate(text, limit, key, truncated) if len(text) > limit else text)
    if which in ("int_value", "bool_value"):
        return getattr(value, which)
    if which == "double_value":
        return _json_float(value.double_value)
    if which is None:
        return None
    if depth >= MAX_NESTING:
        return "[nested too deep]"
    if which == "array_value":
        return [
            _pb_value(item, item.WhichOneof("value"), limit, truncated, key, depth + 1)
            for item in value.array_value.values
        ]
    if which == "kvlist_value":
        return {
            _clean(kv.key): _pb_value(
                kv.value, kv.value.WhichOneof("value"), limit, truncated, key, depth + 1
            )
            for kv in value.kvlist_value.values
        }
    return base64.b64encode(value.bytes_value).decode()


def _json_float(number: float) -> float | str:
    """JSON cannot hold NaN or infinities; keep them as text."""
    return number if math.isfinite(number) else str(number)


def _jget(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _json_attributes(
    raw: Any, limit: int, truncated: dict[str, int], prefix: str = ""
) -> dict[str, Any]:
    """OTLP/JSON [{"key", "value": AnyValue}] as a dict. Lax: a bare JSON value is accepted and
    entries without a string key are skipped, so an odd attribute never costs the span."""
    out: dict[str, Any] = {}
    if not isinstance(raw, list):
        return out
    for entry in raw:
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            key = _clean(entry["key"])
            out[key] = _json_value(entry.get("value"), limit, truncated, prefix + key, 0)
    return out


def _json_value(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    if isinstance(raw, str):
        return _truncate(raw, limit, key, truncated) if len(raw) > limit else raw
    if not isinstance(raw, dict):
        return raw
    for name, inner in raw.items():
        converter = _JSON_ANY.get(name)
        if converter is not None:
            if depth >= MAX_NESTING:
                return "[nested too deep]"
            return converter(inner, limit, truncated, key, depth)
    return None


def _json_string(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    text = raw if isinstance(raw, str) else str(raw)
    return _truncate(text, limit, key, truncated) if len(text) > limit else text


def _json_int_value(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return raw


def _json_double(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    try:
        return _json_float(float(raw))
    except (TypeError, ValueError):
        return raw


def _json_bool(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    return raw if isinstance(raw, bool) else str(raw).lower() == "true"


def _json_array(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    values = raw.get("values") if isinstance(raw, dict) else raw
    if not isinstance(values, list):
        return []
    return [_json_value(item, limit, truncated, key, depth + 1) for item in values]


def _json_kvlist(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    values = raw.get("values") if isinstance(raw, dict) else raw
    if not isinstance(values, list):
        return {}
    return {
        entry["key"]: _json_value(entry.get("value"), limit, truncated, key, depth + 1)
        for entry in values
        if isinstance(entry, dict) and isinstance(entry.get("key"), str)
    }


_JSON_ANY = {
    "stringValue": _json_string,
    "string_value": _json_string,
    "intValue": _json_int_value,
    "int_value": _json_int_value,
    "doubleValue": _json_double,
    "double_value": _json_double,
    "boolValue": _json_bool,
    "bool_value": _json_bool,
    "arrayValue": _json_array,
    "array_value": _json_array,
    "kvlistValue": _json_kvlist,
    "kvlist_value": _json_kvlist,
    "bytesValue": _json_string,
    "bytes_value": _json_string,
}


def _json_int(raw: Any) -> int | None:
    """int64/uint64 fields: OTLP/JSON writes them as strings, some exporters as numbers. None
    for anything else, a number past 64 bits included (float() of it would overflow)."""
    if raw is None or raw == "":
        return 0
    if isinstance(raw, bool):
        return None
    try:
        number = int(raw)
    except (TypeError, ValueError):
        try:
            as_float = float(raw)
        except (TypeError, ValueError):
            return None
        number = int(as_float) if math.isfinite(as_float) else MAX_UINT64 + 1
    return number if -MAX_UINT64 <= number <= MAX_UINT64 else None


def _json_enum(raw: Any, names: Mapping[str, int]) -> int:
    """Enums arrive as numbers or as their names (e.g. "STATUS_CODE_ERROR")."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        return int(raw) if raw.isdigit() else names.get(raw.upper(), 0)
    return 0


def _json_id(raw: Any, size: int) -> bytes | None:
    """An id from OTLP/JSON: hex as the spec says, or base64 as some exporters send. b"" when
    absent, None when it cannot be read as `size` bytes."""
    if raw is None or raw == "":
        return b""
    if not isinstance(raw, str):
        return None
    if len(raw) == 2 * size:
        try:
            return bytes.fromhex(raw)
        except ValueError:
            pass
    padded = raw + "=" * (-len(raw) % 4)
    for altchars in (None, b"-_"):
        try:
            decoded = base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(decoded) == size:
            return decoded
    return None


def _digest(*parts: str | bytes) -> str:
    """A stable 128-bit hex digest (SHA-256 is hardware-accelerated on current CPUs)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part if isinstance(part, bytes) else part.encode())
        hasher.update(b"\x1f")
    return hasher.hexdigest()[:32]


def _version_key(trace_id: str, span_id: str, content: bytes) -> str:
    """Which version of which span: its hex ids and a CRC-32 of its wire content. The ids make
    it unique; the checksum only has to tell two versions of one span apart, so a cheap one does
    (a cryptographic hash of every span was a tenth of the parse time)."""
    return f"{trace_id}{span_id}:{zlib.crc32(content):08x}"


def _at(nanos: int) -> datetime:
    # timedelta(days, seconds, microseconds) positionally: keywords cost a third more.
    return EPOCH + timedelta(0, 0, nanos // 1000)


# --- span decoding --------------------------------------------------------------------------


def _id_problem(value: bytes | None, size: int, *, required: bool = True) -> str:
    if value is None:
        return f"must be {size} bytes ({2 * size} hex characters)"
    if not value:
        return "is required" if required else ""
    if len(value) != size:
        return f"must be {size} bytes ({2 * size} hex characters), got {len(value)} bytes"
    if not any(value):
        return "must not be all zeros"
    return ""


def _span_problem(
    trace_id: bytes | None,
    span_id: bytes | None,
    parent_id: bytes | None,
    start_ns: int | None,
    end_ns: int | None,
) -> tuple[str, str] | None:
    """(field, message) for the first thing that makes a span unusable, else None."""
    for field, value, size in (("traceId", trace_id, 16), ("spanId", span_id, 8)):
        problem = _id_problem(value, size)
        if problem:
            return field, problem
    if parent_id is None or (parent_id and len(parent_id) != 8):
        return "parentSpanId", "must be empty or 8 bytes (16 hex characters)"
    return _time_problem(start_ns, end_ns)


def _time_problem(start_ns: int | None, end_ns: int | None) -> tuple[str, str] | None:
    if start_ns is None or not 0 < start_ns < MAX_UNIX_NANOS:
        return "startTimeUnixNano", "must be unix nanoseconds after 1970 and before year 10000"
    if end_ns is None or not 0 <= end_ns < MAX_UNIX_NANOS:
        return "endTimeUnixNano", "must be unix nanoseconds before year 10000"
    if end_ns and end_ns < start_ns:
        return "endTimeUnixNano", "is before startTimeUnixNano"
    return None


def _span_error(index: int, path: str, problem: tuple[str, str], raw: Any) -> RecordError:
    field = f"{path}.{problem[0]}" if problem[0] else path
    return RecordError(
        index=index,
        field=field,
        message=f"{field}: {problem[1]}",
        record_type="span",
        raw=raw,
    )


def decode_protobuf_traces(body: bytes, *, max_string_chars: int) -> WireBatch:
    """Protobuf ExportTraceServiceRequest -> WireSpans (bad spans as RecordErrors)."""
    request = _load_protobuf(ExportTraceServiceRequest, body)
    spans: list[WireSpan] = []
    errors: list[RecordError] = []
    for r, resource_spans in enumerate(request.resource_spans):
        resource = _pb_attributes(resource_spans.resource.attributes, max_string_chars, {})
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            scope = (scope_spans.scope.name, scope_spans.scope.version)
            for p, span in enumerate(scope_spans.spans):
                index = len(spans) + len(errors)
                wire = _pb_span(span, index, resource, scope, max_string_chars)
                if wire is not None:
                    spans.append(wire)
                else:
                    path = f"resourceSpans[{r}].scopeSpans[{s}].spans[{p}]"
                    problem = _pb_span_problem(span)
                    errors.append(_span_error(index, path, problem, _pb_raw(span)))
    return WireBatch(items=spans, errors=errors)


def _pb_span_problem(span: Any) -> tuple[str, str]:
    problem = _span_problem(
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
    )
    return problem or ("", "unreadable")


def _pb_span(
    span: Any, index: int, resource: dict[str, Any], scope: tuple[str, str], limit: int
) -> WireSpan | None:
    """The span as a WireSpan, None when _span_problem refuses it. Each field is read once: a
    read builds a new Python object from the protobuf."""
    trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
    start_ns, end_ns = span.start_time_unix_nano, span.end_time_unix_nano
    # The usual span passes this one expression; _span_problem says what is wrong otherwise.
    if not (
        len(trace_id) == 16
        and len(span_id) == 8
        and len(parent_id) in (0, 8)
        and 0 < start_ns <= end_ns < MAX_UNIX_NANOS
        and trace_id != ZERO_TRACE_ID
        and span_id != ZERO_SPAN_ID
    ) and _span_problem(trace_id, span_id, parent_id, start_ns, end_ns):
        return None
    truncated: dict[str, int] = {}
    trace_hex, span_hex = trace_id.hex(), span_id.hex()
    status = span.status
    # Positional, in field order: see WireSpan.
    return WireSpan(
        index,
        trace_hex,
        span_hex,
        parent_id.hex() if parent_id and parent_id != ZERO_SPAN_ID else "",
        _clean(span.name),
        span.kind,
        start_ns,
        end_ns,
        status.code,
        _clean(status.message),
        _pb_attributes(span.attributes, limit, truncated),
        _pb_events(span.events, limit, truncated) if span.events else (),
        resource,
        scope[0],
        scope[1],
        _version_key(trace_hex, span_hex, span.SerializeToString()),
        truncated,
        _pb_links(span.links, limit, truncated) if span.links else (),
    )


def _pb_events(events: Any, limit: int, truncated: dict[str, int]) -> tuple[WireEvent, ...]:
    return tuple(
        WireEvent(
            name=_clean(event.name),
            time_ns=_usable_time(event.time_unix_nano),
            attributes=_pb_attributes(event.attributes, limit, truncated, f"events[{n}]."),
        )
        for n, event in enumerate(events)
    )


def _pb_links(links: Any, limit: int, truncated: dict[str, int]) -> tuple[WireLink, ...]:
    """Span links with usable ids (others are dropped: they point nowhere)."""
    return tuple(
        WireLink(
            trace_id=link.trace_id.hex(),
            span_id=link.span_id.hex(),
            attributes=_pb_attributes(link.attributes, limit, truncated, f"links[{n}]."),
        )
        for n, link in enumerate(links)
        if len(link.trace_id) == 16 and len(link.span_id) == 8
    )


def _usable_time(nanos: int | None) -> int:
    """An event time, or 0 (then the span's end stands in) when it is missing or out of range."""
    return nanos if nanos is not None and 0 < nanos < MAX_UNIX_NANOS else 0


def _pb_raw(message: Any) -> dict[str, Any]:
    """A refused protobuf item as JSON (ids in hex, as OTLP/JSON writes them)."""
    raw: dict[str, Any] = MessageToDict(message)
    for key in ("traceId", "spanId", "parentSpanId"):
        if key in raw:
            raw[key] = base64.b64decode(raw[key]).hex()
    return raw


def decode_json_traces(payload: dict[str, Any], *, max_string_chars: int) -> WireBatch:
    """OTLP/JSON traces -> WireSpans; camelCase or snake_case keys, hex or base64 ids."""
    spans: list[WireSpan] = []
    errors: list[RecordError] = []
    index = 0
    for r, resource_spans in enumerate(_json_top(payload, "resourceSpans", "resource_spans")):
        resource = _json_resource(resource_spans, max_string_chars)
        path = f"resourceSpans[{r}]"
        for s, scope_spans in enumerate(_json_items(resource_spans, "scopeSpans", "scope_spans")):
            scope = _json_scope(scope_spans)
            for p, raw in enumerate(_json_items(scope_spans, "spans", "spans")):
                span_path = f"{path}.scopeSpans[{s}].spans[{p}]"
                item = _json_span(raw, index, span_path, resource, scope, max_string_chars)
                if isinstance(item, RecordError):
                    errors.append(item)
                else:
                    spans.append(item)
                index += 1
    return WireBatch(items=spans, errors=errors)


def _json_top(payload: dict[str, Any], camel: str, snake: str) -> list[Any]:
    items = _jget(payload, camel, snake)
    if items is None:
        return []
    if not isinstance(items, list):
        raise BodyError(f"OTLP/JSON '{camel}' must be a list", field=camel)
    return items


def _json_items(obj: Any, camel: str, snake: str) -> list[Any]:
    """A nested list, or [] when the container is not what OTLP says (lax)."""
    items = _jget(obj, camel, snake) if isinstance(obj, dict) else None
    return items if isinstance(items, list) else []


def _json_resource(obj: Any, limit: int) -> dict[str, Any]:
    resource = obj.get("resource") if isinstance(obj, dict) else None
    if not isinstance(resource, dict):
        return {}
    return _json_attributes(resource.get("attributes"), limit, {})


def _json_scope(obj: Any) -> tuple[str, str]:
    scope = _jget(obj, "scope", "instrumentationLibrary") if isinstance(obj, dict) else None
    if not isinstance(scope, dict):
        return "", ""
    return str(scope.get("name") or ""), str(scope.get("version") or "")


def _json_span(
    raw: Any,
    index: int,
    path: str,
    resource: dict[str, Any],
    scope: tuple[str, str],
    limit: int,
) -> WireSpan | RecordError:
    if not isinstance(raw, dict):
        return _span_error(index, path, ("", "a span must be an object"), raw)
    trace_id = _json_id(_jget(raw, "traceId", "trace_id"), 16)
    span_id = _json_id(_jget(raw, "spanId", "span_id"), 8)
    parent_id = _json_id(_jget(raw, "parentSpanId", "parent_span_id"), 8)
    start_ns = _json_int(_jget(raw, "startTimeUnixNano", "start_time_unix_nano"))
    end_ns = _json_int(_jget(raw, "endTimeUnixNano", "end_time_unix_nano"))
    problem = _span_problem(trace_id, span_id, parent_id, start_ns, end_ns)
    if problem is not None or trace_id is None or span_id is None or parent_id is None:
        return _span_error(index, path, problem or ("", "unreadable"), raw)
    truncated: dict[str, int] = {}
    status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
    trace_hex, span_hex = trace_id.hex(), span_id.hex()
    # Positional, in field order: see WireSpan.
    return WireSpan(
        index,
        trace_hex,
        span_hex,
        parent_id.hex() if parent_id and parent_id != ZERO_SPAN_ID else "",
        _clean(str(raw.get("name") or "")),
        _json_enum(raw.get("kind"), SPAN_KIND_ENUM),
        start_ns or 0,
        end_ns or 0,
        _json_enum(status.get("code"), STATUS_ENUM),
        _clean(str(status.get("message") or "")),
        _json_attributes(raw.get("attributes"), limit, truncated),
        _json_events(raw.get("events"), limit, truncated),
        resource,
        scope[0],
        scope[1],
        _version_key(trace_hex, span_hex, orjson.dumps(raw)),
        truncated,
        _json_links(raw.get("links"), limit, truncated),
    )


def _json_events(raw: Any, limit: int, truncated: dict[str, int]) -> tuple[WireEvent, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        WireEvent(
            name=str(event.get("name") or ""),
            time_ns=_usable_time(_json_int(_jget(event, "timeUnixNano", "time_unix_nano"))),
            attributes=_json_attributes(event.get("attributes"), limit, truncated, f"events[{n}]."),
        )
        for n, event in enumerate(raw)
        if isinstance(event, dict)
    )


def _json_links(raw: Any, limit: int, truncated: dict[str, int]) -> tuple[WireLink, ...]:
    if not isinstance(raw, list):
        return ()
    links = []
    for n, link in enumerate(raw):
        if not isinstance(link, dict):
            continue
        trace_id = _json_id(_jget(link, "traceId", "trace_id"), 16)
        span_id = _json_id(_jget(link, "spanId", "span_id"), 8)
        if trace_id and span_id:
            attributes = _json_attributes(link.get("attributes"), limit, truncated, f"links[{n}].")
            links.append(WireLink(trace_id.hex(), span_id.hex(), attributes))
    return tuple(links)


# --- span mapping ---------------------------------------------------------------------------


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


# --- sessions, links and rounds -------------------------------------------------------------


def _trace_records(
    spans: list[WireSpan], meanings: list[SpanMeaning], names: tuple[str, ...]
) -> list[tuple[int, Record]]:
    by_trace: dict[str, list[int]] = {}
    for i, span in enumerate(spans):
        by_trace.setdefault(span.trace_id, []).append(i)
    records: list[tuple[int, Record]] = []
    for trace_id, positions in by_trace.items():
        members = [spans[i] for i in positions]
        link = _trace_link(trace_id, members, names)
        if link is not None:
            records.append((members[0].index, link))
        for i in positions:
            if not spans[i].parent_span_id:
                records.extend((spans[i].index, r) for r in _root_records(spans[i], meanings[i]))
    return records


def session_value(attribute_maps: Iterable[Mapping[str, Any]], names: tuple[str, ...]) -> str:
    """The first session attribute found (names in order, then maps in order) as a session id."""
    maps = list(attribute_maps)
    for name in names:
        for attributes in maps:
            value = attributes.get(name)
            if value is not None and value != "" and not isinstance(value, list | dict):
                return _session_key(str(value))
    return ""


def _session_key(value: str) -> str:
    if len(value) <= MAX_SESSION_ID_CHARS:
        return value
    # Too long for a session id: keep it readable and unique.
    return f"{value[:95]}~{_digest(value)}"


def _session_attribute(maps: list[Mapping[str, Any]], names: tuple[str, ...]) -> tuple[str, str]:
    """(session id, "name=value") of the first session attribute found, else ("", "")."""
    for name in names:
        value = session_value(maps, (name,))
        if value:
            return value, f"{name}={value}"
    return "", ""


def _autogen_team(members: list[WireSpan]) -> tuple[str, str]:
    """AutoGen's runtime starts a trace at every publish, so one team run is many traces; the
    team's uuid, suffixed to its agent types and topics, is the one token they all carry."""
    for span in members:
        if not span.scope_name.startswith("autogen"):
            continue
        for key in AUTOGEN_TEAM_KEYS:
            value = span.attributes.get(key)
            # The team's output topic has a uuid of its own: not the team's.
            is_team = isinstance(value, str) and not value.startswith("output_topic_")
            match = _TEAM_UUID.search(value) if is_team else None
            if match:
                team = match.group(1).lower()
                return f"autogen-team-{team}", f"AutoGen team {team} (agent types, topics)"
    return "", ""


def _trace_link(
    trace_id: str, members: list[WireSpan], names: tuple[str, ...]
) -> TraceLinkRecord | None:
    """The session a trace belongs to: a session attribute (per-project names first), else a
    framework's run id (AutoGen's team); none: the trace is its own session."""
    maps = [span.attributes for span in members] + [members[0].resource]
    # pydantic-ai gives each agent run (a delegate inside the trace too) its own conversation
    # id: only the root's says which conversation the trace is, whatever request it came in.
    roots = [s.attributes for s in members if not s.parent_span_id] + [members[0].resource]
    session_id, reason = _session_attribute(maps, tuple(n for n in names if n != CONVERSATION_KEY))
    if not session_id and CONVERSATION_KEY in names:
        session_id, reason = _session_attribute(roots, (CONVERSATION_KEY,))
    if not session_id:
        session_id, reason = _autogen_team(members)
    follows = False
    if not session_id:
        session_id, reason = _linked_trace(trace_id, members)
        follows = bool(session_id)
    if not session_id:
        return _autogen_definition(trace_id, members)
    round_index = _round_index(members)
    return TraceLinkRecord(
        record_id=f"otlp-link:{_digest(trace_id, session_id, str(round_index), str(follows))}",
        trace_id=trace_id,
        session_id=session_id,
        round_index=round_index,
        reason=reason,
        follows_trace=follows,
    )


def _autogen_definition(trace_id: str, members: list[WireSpan]) -> TraceLinkRecord | None:
    """AutoGen traces an agent's construction as a root `create_agent <name>` span of its own,
    naming no team (the team comes later and may reuse the agent). The store puts it in the
    team run that next uses an agent of that name (store._batch_links, _adopt_definitions)."""
    if len(members) != 1 or members[0].parent_span_id:
        return None
    span = members[0]
    name = span.attributes.get("gen_ai.agent.name")
    if not (
        span.scope_name.startswith("autogen")
        and span.attributes.get("gen_ai.operation.name") == "create_agent"
        and isinstance(name, str)
        and name
    ):
        return None
    return TraceLinkRecord(
        record_id=f"otlp-link:{_digest(trace_id, 'autogen-definition')}",
        trace_id=trace_id,
        session_id="",
        defined_agent=name[:200],
        defined_at=_at(span.start_ns),
    )


def _linked_trace(trace_id: str, members: list[WireSpan]) -> tuple[str, str]:
    """(trace id, reason) of the other trace a span of this one links to: a consumer that
    starts a trace of its own (AutoGen's runtime at every publish, a queue worker) belongs with
    its producer. The request's earliest linking span decides; once stored, a trace's link is
    not replaced by a span link from a later request (store._batch_links)."""
    linking = [s for s in members if any(link.trace_id != trace_id for link in s.links)]
    if not linking:
        return "", ""
    span = min(linking, key=lambda s: (s.start_ns, s.span_id))
    target = next(link.trace_id for link in span.links if link.trace_id != trace_id)
    return target, f"span link from '{span.name[:120]}' to trace {target}"


def _round_index(members: list[WireSpan]) -> int | None:
    """TaskWeaver puts round_index on the round's inner span and a string round_id on the
    root; a round_id that is a number is accepted too."""
    for key in ("round_index", "round_id"):
        for span in members:
            raw = span.attributes.get(key)  # nearly always absent: no call then
            if raw is not None:
                value = as_count(raw)
                if value is not None:
                    return value
    return None


def _root_records(span: WireSpan, meaning: SpanMeaning) -> list[Record]:
    if meaning.detail == "session":
        records = _session_records(span)
    else:
        # An orphan root (agentops-protocol.md 4.1): the trace is still a session, marked.
        # No started_at: the store widens an inferred session to its earliest span, which also
        # keeps a multi-trace session's start at its first round.
        own_tags = first_present(span.attributes, ("agentops.tags", "tag.tags"))
        tags = (NO_SESSION_SPAN_TAG, *parse_tags(own_tags))
        records = [
            SessionRecord(
                record_id=f"otlp-session:{span.digest}:update",
                session_id=span.trace_id,
                action="update",
                name=(span.name or meaning.name)[:MAX_NAME_CHARS],
                name_at=_at(span.start_ns),
                tags=tuple(dict.fromkeys(tags)),
            )
        ]
        records.extend(_orphan_root_end(span))
    if span.name == TASKWEAVER_ROUND_SPAN:
        records.extend(_round_transcript(span))
    return records


def _orphan_root_end(span: WireSpan) -> list[Record]:
    """A plain OTel root that ended ends its session: failed when the root says ERROR, else
    success (OTel roots rarely set OK). A later round of a multi-trace session ends it again."""
    if not span.end_ns:
        return []
    failed = span.status_code == STATUS_ERROR
    return [
        SessionRecord(
            record_id=f"otlp-session:{span.digest}:end",
            session_id=span.trace_id,
            action="end",
            ended_at=_at(span.end_ns),
            end_state="fail" if failed else "success",
            end_state_reason=span.status_message if failed else "",
        )
    ]


def _session_records(span: WireSpan) -> list[Record]:
    fields = session_fields(span.name, span.attributes, span.resource)
    records: list[Record] = [
        SessionRecord(
            record_id=f"otlp-session:{span.digest}:start",
            session_id=span.trace_id,
            action="start",
            name=fields.name[:MAX_NAME_CHARS],
            started_at=_at(span.start_ns),
            tags=fields.tags,
            metadata=fields.metadata,
        )
    ]
    if span.end_ns:
        records.append(
            SessionRecord(
                record_id=f"otlp-session:{span.digest}:end",
                session_id=span.trace_id,
                action="end",
                ended_at=_at(span.end_ns),
                end_state=fields.end_state,
                end_state_reason=fields.end_state_reason,
            )
        )
    return records


def _round_transcript(span: WireSpan) -> list[Record]:
    """A TaskWeaver round: the user's message at its start, the reply to the user at its end."""
    lines: list[Record] = []
    for role, key, nanos in (
        ("user", "message", span.start_ns),
        ("assistant", "reply_to_user", span.end_ns or span.start_ns),
    ):
        text = span.attributes.get(key)
        if text is None or text == "":
            continue
        lines.append(
            TranscriptRecord(
                record_id=f"otlp-round:{span.digest}:{role}",
                session_id=span.trace_id,
                trace_id=span.trace_id,
                span_id=span.span_id,
                role=role,
                text=str(text),
                at=_at(nanos),
            )
        )
    return lines


# --- logs -----------------------------------------------------------------------------------


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


# --- metrics --------------------------------------------------------------------------------


def decode_protobuf_metrics(body: bytes, *, max_string_chars: int) -> WireBatch:
    request = _load_protobuf(ExportMetricsServiceRequest, body)
    points: list[WirePoint] = []
    for r, resource_metrics in enumerate(request.resource_metrics):
        resource = _pb_attributes(resource_metrics.resource.attributes, max_string_chars, {})
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            for m, metric in enumerate(scope_metrics.metrics):
                path = f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]"
                points.extend(_pb_points(metric, path, len(points), resource, max_string_chars))
    return WireBatch(items=points, errors=[])


def _pb_points(
    metric: Any, path: str, index: int, resource: dict[str, Any], limit: int
) -> list[WirePoint]:
    shape = metric.WhichOneof("data")
    if shape is None:
        return []
    return [
        WirePoint(
            index=index + p,
            path=f"{path}.{_CAMEL[shape]}.dataPoints[{p}]",
            name=metric.name,
            unit=metric.unit,
            time_ns=point.time_unix_nano,
            samples=_pb_samples(shape, point),
            attributes=_pb_attributes(point.attributes, limit, {}),
            resource=resource,
        )
        for p, point in enumerate(getattr(metric, shape).data_points)
    ]


_CAMEL = {
    "gauge": "gauge",
    "sum": "sum",
    "histogram": "histogram",
    "exponential_histogram": "exponentialHistogram",
    "summary": "summary",
}
NO_RECORDED_VALUE = 1


def _pb_samples(shape: str, point: Any) -> tuple[tuple[str, float], ...]:
    if point.flags & NO_RECORDED_VALUE:
        return ()
    if shape in ("gauge", "sum"):
        which = point.WhichOneof("value")
        return (("", float(getattr(point, which))),) if which else ()
    has_sum = shape == "summary" or point.HasField("sum")
    return _distribution_samples(point.count, point.sum if has_sum else None)


def _distribution_samples(count: Any, total: Any) -> tuple[tuple[str, float], ...]:
    """Histogram/summary points: <name>.count, <name>.sum and <name>.avg when count > 0."""
    count_value = as_count(count)
    if count_value is None:
        count_value = _json_int(count) or 0
    samples: list[tuple[str, float]] = [("count", float(count_value))]
    if total is not None:
        samples.append(("sum", float(total)))
        if count_value > 0:
            samples.append(("avg", float(total) / count_value))
    return tuple(samples)


def decode_json_metrics(payload: dict[str, Any], *, max_string_chars: int) -> WireBatch:
    points: list[WirePoint] = []
    errors: list[RecordError] = []
    index = 0
    for r, resource_metrics in enumerate(_json_top(payload, "resourceMetrics", "resource_metrics")):
        resource = _json_resource(resource_metrics, max_string_chars)
        scopes = _json_items(resource_metrics, "scopeMetrics", "scope_metrics")
        for s, scope_metrics in enumerate(scopes):
            for m, metric in enumerate(_json_items(scope_metrics, "metrics", "metrics")):
                path = f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]"
                for point in _json_metric_points(metric, path, index, resource, max_string_chars):
                    if isinstance(point, RecordError):
                        errors.append(point)
                    else:
                        points.append(point)
                    index += 1
    return WireBatch(items=points, errors=errors)


def _json_metric_points(
    metric: Any, path: str, index: int, resource: dict[str, Any], limit: int
) -> list[WirePoint | RecordError]:
    if not isinstance(metric, dict):
        return [_metric_error(index, path, "a metric must be an object", metric)]
    for camel, snake in _JSON_SHAPES:
        data = _jget(metric, camel, snake)
        if isinstance(data, dict):
            break
    else:
        return []
    items: list[WirePoint | RecordError] = []
    for p, raw in enumerate(_json_items(data, "dataPoints", "data_points")):
        point_path = f"{path}.{camel}.dataPoints[{p}]"
        if not isinstance(raw, dict):
            items.append(
                _metric_error(index + p, point_path, "a data point must be an object", raw)
            )
            continue
        if camel not in ("gauge", "sum") and _json_int(raw.get("count")) is None:
            message = "count must be an unsigned 64-bit integer"
            items.append(_metric_error(index + p, f"{point_path}.count", message, raw))
            continue
        items.append(
            WirePoint(
                index=index + p,
                path=point_path,
                name=str(metric.get("name") or ""),
                unit=str(metric.get("unit") or ""),
                time_ns=_json_int(_jget(raw, "timeUnixNano", "time_unix_nano")) or 0,
                samples=_json_samples(camel, raw),
                attributes=_json_attributes(raw.get("attributes"), limit, {}),
                resource=resource,
            )
        )
    return items


_JSON_SHAPES = (
    ("gauge", "gauge"),
    ("sum", "sum"),
    ("histogram", "histogram"),
    ("exponentialHistogram", "exponential_histogram"),
    ("summary", "summary"),
)


def _json_samples(shape: str, raw: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    if (_json_int(raw.get("flags")) or 0) & NO_RECORDED_VALUE:
        return ()
    if shape in ("gauge", "sum"):
        value = _jget(raw, "asDouble", "as_double")
        if value is None:
            value = _jget(raw, "asInt", "as_int")
        number = _float_or_none(value)
        return (("", number),) if number is not None else ()
    return _distribution_samples(raw.get("count"), _float_or_none(raw.get("sum")))


def _float_or_none(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _metric_error(index: int, path: str, message: str, raw: Any) -> RecordError:
    return RecordError(
        index=index, field=path, message=f"{path}: {message}", record_type="metric", raw=raw
    )


def map_points(
    points: list[WirePoint],
    errors: list[RecordError],
    *,
    session_attributes: tuple[str, ...] = DEFAULT_SESSION_ATTRIBUTES,
) -> ParseResult:
    names = tuple(dict.fromkeys((*session_attributes, *DEFAULT_SESSION_ATTRIBUTES)))
    records: list[tuple[int, Record]] = []
    errors = list(errors)
    for point in points:
        problem = _point_problem(point)
        if problem:
            errors.append(_metric_error(point.index, point.path, problem, _point_raw(point)))
            continue
        session_id = session_value((point.attributes, point.resource), names)
        for suffix, value in point.samples:
            records.append((point.index, _metric_record(point, suffix, value, session_id)))
    return ParseResult(records=records, errors=errors)


def _point_problem(point: WirePoint) -> str:
    if not point.name:
        return "metric has no name"
    if not 0 < point.time_ns < MAX_UNIX_NANOS:
        return "timeUnixNano must be unix nanoseconds after 1970 and before year 10000"
    if any(not math.isfinite(value) for _, value in point.samples):
        return "value must be a finite number"
    return ""


def _point_raw(point: WirePoint) -> dict[str, Any]:
    return {
        "name": point.name,
        "timeUnixNano": str(point.time_ns),
        "samples": [[suffix, str(value)] for suffix, value in point.samples],
        "attributes": point.attributes,
    }


def _metric_record(point: WirePoint, suffix: str, value: float, session_id: str) -> MetricRecord:
    name = f"{point.name}.{suffix}" if suffix else point.name
    attributes = dict(point.attributes)
    service = point.resource.get("service.name")
    if service is not None:
        attributes["resource.service.name"] = service
    dimensions = orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS, default=str)
    return MetricRecord(
        record_id=f"otlp-metric:{_digest(name, dimensions, str(point.time_ns), repr(value))}",
        name=name[:200],
        value=value,
        at=_at(point.time_ns),
        session_id=session_id,
        unit="" if suffix == "count" else point.unit[:50],
        attributes=attributes,
    )
