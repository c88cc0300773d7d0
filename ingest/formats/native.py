"""The native JSON batch format (docs/ingest-api.md) parsed into records.py shapes. Pure.

Lax in what it reads (numbers as strings, Unix or ISO timestamps, naive ISO read as UTC), strict in
what it keeps: every refused record becomes a RecordError naming its field path, never an exception.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from ingest.formats.native_multiagent import _agent_message, _step, _workflow
from ingest.formats.native_reader import (
    MAX_NAME_CHARS,
    _common,
    _epoch_unknown,
    _FieldError,
    _Reader,
)
from ingest.formats.native_testruns import _score, _test_result, _test_run
from ingest.formats.records import (
    AgentRecord,
    BodyError,
    MetricRecord,
    ParseResult,
    Record,
    RecordError,
    SessionRecord,
    SpanRecord,
    TranscriptRecord,
)

SPAN_KINDS = ("action", "llm", "tool", "error")


SPAN_STATUSES = ("ok", "error", "unset")


STATUS_ROLES = ("agent", "llm", "tool")


MESSAGE_ROLES = ("user", "assistant", "system")


END_STATES = ("success", "fail", "indeterminate")


def decode_body(body: bytes, content_encoding: str, *, max_bytes: int) -> bytes:
    """Undo gzip/deflate, refusing anything over max_bytes before or after decompression."""
    if len(body) > max_bytes:
        raise BodyError(
            f"Body is {len(body)} bytes; the limit OBSERVATORY_MAX_BATCH_BYTES is {max_bytes}",
            status=413,
        )
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise BodyError(
            f"Unsupported Content-Encoding {encoding!r}; use gzip or deflate", status=415
        )
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    parts: list[bytes] = []
    size = 0
    rest = body
    # A gzip body may hold several members one after another (`cat a.gz b.gz`, or a client
    # that compresses chunk by chunk): read them all, never only the first.
    while rest:
        decompressor = zlib.decompressobj(wbits)
        try:
            # max_length bounds the output so a small "zip bomb" cannot exhaust memory.
            part = decompressor.decompress(rest, max_bytes + 1 - size)
        except zlib.error as exc:
            raise BodyError(f"Body is not valid {encoding}: {exc}") from exc
        size += len(part)
        if size > max_bytes or decompressor.unconsumed_tail:
            raise BodyError(
                f"Decompressed body exceeds OBSERVATORY_MAX_BATCH_BYTES ({max_bytes} bytes)",
                status=413,
            )
        if not decompressor.eof:
            raise BodyError(f"Body is not valid {encoding}: the compressed stream is cut short")
        parts.append(part)
        rest = decompressor.unused_data
        if rest and encoding == "deflate":
            raise BodyError("Body is not valid deflate: data after the end of the stream")
    return b"".join(parts)


def load_batch(data: bytes, *, max_records: int) -> list[Any]:
    """The list of raw records in a batch body, or BodyError for a body that is not a batch."""
    try:
        # PostgreSQL text and jsonb cannot hold NUL; an escaped one would fail the whole batch.
        payload = orjson.loads(data.replace(b"\\u0000", b"\\ufffd"))
    except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise BodyError(f"Body is not valid JSON: {exc}") from exc
    if isinstance(payload, dict):
        if "records" not in payload:
            raise BodyError("Body must be an object with a 'records' list", field="records")
        payload = payload["records"]
    if not isinstance(payload, list):
        raise BodyError("'records' must be a list of record objects", field="records")
    if len(payload) > max_records:
        raise BodyError(
            f"Batch has {len(payload)} records; the limit OBSERVATORY_MAX_BATCH_RECORDS is "
            f"{max_records}",
            status=413,
            field="records",
        )
    return payload


def parse_native(
    body: bytes, *, max_records: int, max_string_chars: int, first_index: int = 0
) -> ParseResult:
    """Parse a native batch body. Raises BodyError only when the body as a whole is unusable."""
    raws = load_batch(body, max_records=max_records)
    return parse_records(
        raws,
        max_string_chars=max_string_chars,
        first_index=first_index,
        # No value in a body can be longer than the body: skip re-encoding objects to measure them.
        check_sizes=len(body) > max_string_chars,
    )


def parse_records(
    raws: list[Any], *, max_string_chars: int, first_index: int = 0, check_sizes: bool = True
) -> ParseResult:
    """Parse already-decoded raw records; each bad one becomes a RecordError carrying the raw."""
    records: list[tuple[int, Record]] = []
    errors: list[RecordError] = []
    for offset, raw in enumerate(raws):
        index = first_index + offset
        try:
            reader = _Reader(raw, f"records[{index}]", max_string_chars, check_sizes=check_sizes)
            records.append((index, _parse_one(reader)))
        except _FieldError as exc:
            record_type = raw.get("type", "") if isinstance(raw, dict) else ""
            errors.append(
                RecordError(
                    index=index,
                    field=exc.field,
                    message=f"{exc.field}: {exc.message}",
                    record_type=str(record_type)[:50],
                    raw=raw,
                )
            )
    return ParseResult(records=records, errors=errors)


def _parse_one(reader: _Reader) -> Record:
    record_type = reader.text("type", required=True, limit=50) or ""
    parser = _PARSERS.get(record_type)
    if parser is None:
        raise reader.fail(
            "type", f"unknown record type {record_type!r}; expected one of {', '.join(_PARSERS)}"
        )
    return parser(reader)


def _session_start(reader: _Reader) -> SessionRecord:
    return _session(reader, "start", started_at=reader.when("started_at", required=True))


def _session_update(reader: _Reader) -> SessionRecord:
    return _session(reader, "update", started_at=reader.when("started_at"))


def _session(reader: _Reader, action: str, *, started_at: datetime | None) -> SessionRecord:
    record_id, session_id = _common(reader)
    return SessionRecord(
        record_id=record_id,
        session_id=session_id,
        action=action,
        name=reader.text("name", limit=MAX_NAME_CHARS),
        started_at=started_at,
        tags=reader.tags("tags"),
        metadata=reader.mapping("metadata"),
        config=reader.mapping("config"),
        user_query=reader.text("user_query"),
        parent_session_id=reader.ident("parent_session_id", required=False),
        group_key=reader.text("group_key", limit=200),
    )


def _session_end(reader: _Reader) -> SessionRecord:
    record_id, session_id = _common(reader)
    return SessionRecord(
        record_id=record_id,
        session_id=session_id,
        action="end",
        ended_at=reader.when("ended_at", required=True),
        end_state=reader.choice("end_state", END_STATES, default="indeterminate"),
        end_state_reason=reader.text("end_state_reason"),
    )


def _agent(reader: _Reader, action: str) -> AgentRecord:
    record_id, session_id = _common(reader)
    return AgentRecord(
        record_id=record_id,
        session_id=session_id,
        agent_id=reader.ident("agent_id") or "",
        action=action,
        at=reader.when("at") or reader.when("created_at"),
        name=reader.text("name", limit=200),
        role=reader.text("role", limit=200),
        init_params=reader.mapping("init_params"),
        reason=reader.text("reason"),
    )


def _event(reader: _Reader) -> SpanRecord:
    record_id, session_id = _common(reader)
    started_at = reader.when("started_at", required=True) or _epoch_unknown()
    ended_at = reader.when("ended_at")
    if ended_at is not None and ended_at < started_at:
        raise reader.fail("ended_at", "is before started_at")
    return SpanRecord(
        record_id=record_id,
        session_id=session_id,
        span_id=reader.ident("span_id", required=False) or record_id,
        parent_span_id=reader.ident("parent_span_id", required=False) or "",
        kind=reader.choice("kind", SPAN_KINDS),
        name=reader.text("name", required=True, limit=MAX_NAME_CHARS) or "",
        agent_id=reader.ident("agent_id", required=False) or "",
        started_at=started_at,
        ended_at=ended_at,
        status=reader.choice("status", SPAN_STATUSES, default="unset"),
        model=reader.text("model", limit=200) or "",
        provider=reader.text("provider", limit=100) or "",
        prompt_tokens=reader.count("prompt_tokens"),
        completion_tokens=reader.count("completion_tokens"),
        cost=reader.number("cost"),
        error_type=reader.text("error_type", limit=200) or "",
        error_message=reader.text("error_message") or "",
        stack_trace=reader.text("stack_trace") or "",
        params=reader.json_value("params"),
        returns=reader.json_value("returns"),
        prompt=reader.json_value("prompt"),
        completion=reader.json_value("completion"),
        attributes=reader.mapping("attributes") or {},
    )


def _status(reader: _Reader) -> TranscriptRecord:
    record_id, session_id = _common(reader)
    return TranscriptRecord(
        record_id=record_id,
        session_id=session_id,
        role=reader.choice("role", STATUS_ROLES),
        text=reader.text("text", required=True) or "",
        at=reader.when("at", required=True) or _epoch_unknown(),
        agent_id=reader.ident("agent_id", required=False) or "",
        span_id=reader.ident("span_id", required=False) or "",
    )


def _message(reader: _Reader) -> TranscriptRecord:
    record_id, session_id = _common(reader)
    return TranscriptRecord(
        record_id=record_id,
        session_id=session_id,
        role=reader.choice("role", MESSAGE_ROLES),
        text=reader.text("content", required=True) or "",
        at=reader.when("at", required=True) or _epoch_unknown(),
        agent_id=reader.ident("agent_id", required=False) or "",
    )


def _metric(reader: _Reader) -> MetricRecord:
    record_id, session_id = _common(reader, session_required=False)
    value = reader.number("value", required=True) or 0.0
    return MetricRecord(
        record_id=record_id,
        session_id=session_id,
        name=reader.text("name", required=True, limit=200) or "",
        value=value,
        unit=reader.text("unit", limit=50) or "",
        agent_id=reader.ident("agent_id", required=False) or "",
        at=reader.when("at", required=True) or _epoch_unknown(),
    )


_PARSERS: dict[str, Callable[[_Reader], Record]] = {
    "session.start": _session_start,
    "session.update": _session_update,
    "session.end": _session_end,
    "agent.created": lambda reader: _agent(reader, "created"),
    "agent.terminated": lambda reader: _agent(reader, "terminated"),
    "event": _event,
    "status": _status,
    "message": _message,
    "metric": _metric,
    "agent_message": _agent_message,
    "workflow.start": lambda reader: _workflow(reader, "start"),
    "workflow.end": lambda reader: _workflow(reader, "end"),
    "step.start": lambda reader: _step(reader, "start"),
    "step.end": lambda reader: _step(reader, "end"),
    "test_run.start": lambda reader: _test_run(reader, "start"),
    "test_run.end": lambda reader: _test_run(reader, "end"),
    "test_result": _test_result,
    "score": _score,
}
