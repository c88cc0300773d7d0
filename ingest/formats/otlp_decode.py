"""Decoding an OTLP trace request (protobuf or OTLP/JSON) into wire spans; a bad span becomes a
RecordError naming its path. Pure.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.formats.otlp_values import (
    _clean,
    _jget,
    _json_attributes,
    _json_enum,
    _json_id,
    _json_int,
    _pb_attributes,
    _version_key,
)
from ingest.formats.otlp_wire import (
    MAX_UNIX_NANOS,
    SPAN_KIND_ENUM,
    STATUS_ENUM,
    ZERO_SPAN_ID,
    ZERO_TRACE_ID,
    WireBatch,
    WireEvent,
    WireLink,
    WireSpan,
)
from ingest.formats.records import BodyError, RecordError


def _load_protobuf(message_type: Any, body: bytes) -> Any:
    try:
        return message_type.FromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        name = message_type.DESCRIPTOR.name
        raise BodyError(f"Body is not a valid OTLP protobuf {name}: {exc}") from exc


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
    raw_status = raw.get("status")
    status = raw_status if isinstance(raw_status, dict) else {}
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
