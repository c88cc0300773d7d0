"""The native JSON batch format (docs/ingest-api.md) parsed into records.py shapes. Pure.

Lax in what it reads (numbers as strings, Unix or ISO timestamps, naive ISO read as UTC), strict in
what it keeps: every refused record becomes a RecordError naming its field path, never an exception.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from ingest.formats import scores
from ingest.formats.records import (
    MESSAGE_STAGES,
    AgentMessageRecord,
    AgentRecord,
    BodyError,
    MetricRecord,
    ParseResult,
    Record,
    RecordError,
    ScoreRecord,
    SessionRecord,
    SpanRecord,
    StepRecord,
    TestResultRecord,
    TestRunRecord,
    TranscriptRecord,
    WorkflowRecord,
)

MAX_ID_CHARS = 128
MAX_NAME_CHARS = 300
SPAN_KINDS = ("action", "llm", "tool", "error")
SPAN_STATUSES = ("ok", "error", "unset")
STATUS_ROLES = ("agent", "llm", "tool")
MESSAGE_ROLES = ("user", "assistant", "system")
END_STATES = ("success", "fail", "indeterminate")
TEST_OUTCOMES = ("pass", "fail", "error", "skip", "xfail")
# What test runners call the same outcomes (pytest's report words, JUnit's elements).
TEST_OUTCOME_ALIASES = {
    "passed": "pass",
    "failed": "fail",
    "failure": "fail",
    "errored": "error",
    "skipped": "skip",
    "xfailed": "xfail",
}
MAX_TEST_ID_CHARS = 500
MAX_TIER_CHARS = 50
MAX_LINKED_SESSIONS = 100


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


class _FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class _Reader:
    """Typed, lax access to one raw record's fields; raises _FieldError naming the path."""

    def __init__(self, raw: Any, path: str, max_chars: int, *, check_sizes: bool = True) -> None:
        if not isinstance(raw, dict):
            raise _FieldError(path, f"a record must be an object, got {type(raw).__name__}")
        self.raw: dict[str, Any] = raw
        self.path = path
        self.max_chars = max_chars
        self.check_sizes = check_sizes

    def fail(self, name: str, message: str) -> _FieldError:
        return _FieldError(f"{self.path}.{name}", message)

    def has(self, name: str) -> bool:
        return self.raw.get(name) is not None

    def text(self, name: str, *, required: bool = False, limit: int | None = None) -> str | None:
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise self.fail(name, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(name, f"must be a string, got {type(value).__name__}")
        text = str(value)
        cap = min(limit or self.max_chars, self.max_chars)
        if len(text) > cap:
            setting = "" if limit else " (OBSERVATORY_MAX_STRING_CHARS)"
            raise self.fail(name, f"is {len(text)} characters; the limit{setting} is {cap}")
        return text

    def ident(self, name: str, *, required: bool = True) -> str | None:
        return self.text(name, required=required, limit=MAX_ID_CHARS)

    def choice(self, name: str, options: tuple[str, ...], *, default: str | None = None) -> str:
        value = self.text(name, required=default is None, limit=50)
        if value is None:
            return str(default)
        if value.lower() not in options:
            raise self.fail(name, f"must be one of {', '.join(options)}, got {value!r}")
        return value.lower()

    def number(self, name: str, *, required: bool = False) -> float | None:
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise self.fail(name, "is required")
            return None
        if isinstance(value, bool):
            raise self.fail(name, "must be a number, got a boolean")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self.fail(name, f"must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise self.fail(name, "must be a finite number")
        return number

    def count(self, name: str) -> int | None:
        number = self.number(name)
        if number is None:
            return None
        if number < 0 or number != int(number) or number > 2**31 - 1:
            raise self.fail(name, f"must be a whole number from 0 to {2**31 - 1}, got {number}")
        return int(number)

    def when(self, name: str, *, required: bool = False) -> datetime | None:
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise self.fail(name, "is required")
            return None
        parsed = parse_timestamp(value)
        if parsed is None:
            raise self.fail(name, f"not a timestamp (ISO 8601 or Unix seconds): {value!r}")
        return parsed

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(name, f"must be an object, got {type(value).__name__}")
        self._check_size(name, value)
        return value

    def tags(self, name: str) -> tuple[str, ...] | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(t, str | int) for t in value):
            raise self.fail(name, "must be a list of strings")
        if any(len(str(t)) > 200 for t in value):
            raise self.fail(name, "each tag is limited to 200 characters")
        return tuple(dict.fromkeys(str(t) for t in value))

    def json_value(self, name: str) -> Any:
        value = self.raw.get(name)
        if value is not None:
            self._check_size(name, value)
        return value

    def _check_size(self, name: str, value: Any) -> None:
        if not self.check_sizes:
            return
        size = len(json.dumps(value, default=str))
        if size > self.max_chars:
            raise self.fail(
                name,
                f"is {size} characters as JSON; the limit (OBSERVATORY_MAX_STRING_CHARS) is "
                f"{self.max_chars}",
            )


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 (naive means UTC) or Unix seconds, as an aware UTC datetime; None if unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
        seconds = float(value)
        if not math.isfinite(seconds) or not 0 <= seconds < 32503680000:  # before year 3000
            return None
        return datetime.fromtimestamp(seconds, tz=UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_one(reader: _Reader) -> Record:
    record_type = reader.text("type", required=True, limit=50) or ""
    parser = _PARSERS.get(record_type)
    if parser is None:
        raise reader.fail(
            "type", f"unknown record type {record_type!r}; expected one of {', '.join(_PARSERS)}"
        )
    return parser(reader)


def _common(reader: _Reader, *, session_required: bool = True) -> tuple[str, str]:
    record_id = reader.ident("id") or ""
    session_id = reader.ident("session_id", required=session_required) or ""
    return record_id, session_id


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


def _epoch_unknown() -> datetime:
    # Only reached for a required time, which reader.when() has already refused when missing:
    # it narrows the type without an assert.
    return datetime(1970, 1, 1, tzinfo=UTC)


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


def _test_run(reader: _Reader, action: str) -> TestRunRecord:
    started_at = reader.when("started_at", required=action == "start")
    ended_at = reader.when("ended_at", required=action == "end")
    return TestRunRecord(
        record_id=reader.ident("id") or "",
        run_id=reader.ident("run_id") or "",
        action=action,
        tier=_tier(reader),
        suite=reader.text("suite", limit=200),
        commit=reader.text("commit", limit=64),
        branch=reader.text("branch", limit=200),
        environment=reader.text("environment", limit=100),
        source=reader.text("source", limit=20),
        started_at=started_at,
        ended_at=ended_at,
        metadata=reader.mapping("metadata"),
    )


def _tier(reader: _Reader) -> str | None:
    tier = reader.text("tier", limit=MAX_TIER_CHARS)
    return None if tier is None else tier.strip().lower()


def _test_result(reader: _Reader) -> TestResultRecord:
    outcome = (reader.text("outcome", required=True, limit=20) or "").lower()
    outcome = TEST_OUTCOME_ALIASES.get(outcome, outcome)
    if outcome not in TEST_OUTCOMES:
        raise reader.fail("outcome", f"must be one of {', '.join(TEST_OUTCOMES)}, got {outcome!r}")
    duration = reader.number("duration_ms")
    if duration is not None and duration < 0:
        raise reader.fail("duration_ms", "must not be negative")
    return TestResultRecord(
        record_id=reader.ident("id") or "",
        run_id=reader.ident("run_id") or "",
        test_id=reader.text("test_id", required=True, limit=MAX_TEST_ID_CHARS) or "",
        outcome=outcome,
        name=reader.text("name", limit=MAX_TEST_ID_CHARS) or "",
        tier=_tier(reader) or "",
        duration_ms=duration,
        started_at=reader.when("started_at"),
        error_message=reader.text("error_message") or "",
        error_trace=reader.text("error_trace") or "",
        metrics=_test_metrics(reader),
        session_ids=_session_ids(reader),
        scores=_test_scores(reader),
    )


MAX_TEST_SCORES = 50


def _test_scores(reader: _Reader) -> tuple[ScoreRecord, ...]:
    """`scores`: {name: value} or a list of {name, value, data_type, label, comment}."""
    raw = reader.raw.get("scores")
    if raw is None:
        return ()
    if isinstance(raw, dict):
        raw = [{"name": name, "value": value} for name, value in raw.items()]
    if not isinstance(raw, list):
        raise reader.fail("scores", "must be an object of name: value or a list of scores")
    if len(raw) > MAX_TEST_SCORES:
        raise reader.fail("scores", f"holds {len(raw)} scores; the limit is {MAX_TEST_SCORES}")
    found = []
    for n, item in enumerate(raw):
        sub = _Reader(item, f"{reader.path}.scores[{n}]", reader.max_chars)
        value = _score_value(sub)
        found.append(
            ScoreRecord(
                record_id="",
                session_id="",
                name=sub.text("name", required=True, limit=scores.MAX_SCORE_NAME_CHARS) or "",
                data_type=value.data_type,
                value=value.value,
                label=value.label,
                comment=sub.text("comment", limit=scores.MAX_COMMENT_CHARS) or "",
                source="eval",
            )
        )
    return tuple(found)


def _test_metrics(reader: _Reader) -> dict[str, float]:
    raw = reader.mapping("metrics") or {}
    metrics: dict[str, float] = {}
    sub = _Reader(raw, f"{reader.path}.metrics", reader.max_chars)
    for name in raw:
        number = sub.number(name)
        if number is not None:
            metrics[str(name)[:200]] = number
    return metrics


def _session_ids(reader: _Reader) -> tuple[str, ...]:
    value = reader.raw.get("session_ids")
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise reader.fail("session_ids", "must be a list of session ids (strings)")
    if len(value) > MAX_LINKED_SESSIONS:
        raise reader.fail(
            "session_ids", f"holds {len(value)} ids; the limit is {MAX_LINKED_SESSIONS}"
        )
    if any(len(v) > MAX_ID_CHARS for v in value):
        raise reader.fail("session_ids", f"each id is limited to {MAX_ID_CHARS} characters")
    return tuple(dict.fromkeys(value))


def _score(reader: _Reader) -> ScoreRecord:
    record_id, session_id = _common(reader)
    value = _score_value(reader)
    return ScoreRecord(
        record_id=record_id,
        session_id=session_id,
        span_id=reader.ident("span_id", required=False) or "",
        name=reader.text("name", required=True, limit=scores.MAX_SCORE_NAME_CHARS) or "",
        data_type=value.data_type,
        value=value.value,
        label=value.label,
        comment=reader.text("comment", limit=scores.MAX_COMMENT_CHARS) or "",
        source=reader.choice("source", scores.SOURCES, default="api"),
        author=reader.text("author", limit=scores.MAX_AUTHOR_CHARS) or "",
        at=reader.when("at"),
    )


def _score_value(reader: _Reader) -> scores.ScoreValue:
    data_type = reader.text("data_type", limit=20)
    if data_type is not None and data_type.lower() not in scores.DATA_TYPES:
        raise reader.fail(
            "data_type", f"must be one of {', '.join(scores.DATA_TYPES)}, got {data_type!r}"
        )
    label = reader.text("label", limit=scores.MAX_LABEL_CHARS)
    try:
        return scores.score_value(
            reader.raw.get("value"),
            data_type=data_type.lower() if data_type else None,
            label=label,
        )
    except scores.ScoreValueError as exc:
        raise reader.fail("value", str(exc).removeprefix("value ")) from None


# --- Multi-agent: messages between agents, workflows and steps ------------------------------

WORKFLOW_END_STATES = ("success", "fail", "cancelled")
STEP_END_STATES = ("ok", "error", "skipped", "cancelled")
MAX_LISTED_IDS = 100


def _id_list(reader: _Reader, name: str) -> tuple[str, ...] | None:
    """A list of ids (a single string is a list of one); each at most MAX_ID_CHARS."""
    value = reader.raw.get(name)
    if value is None:
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in value
    ):
        raise reader.fail(name, "must be a list of ids (strings)")
    if len(value) > MAX_LISTED_IDS:
        raise reader.fail(name, f"has {len(value)} ids; the limit is {MAX_LISTED_IDS}")
    for n, item in enumerate(value):
        if not str(item) or len(str(item)) > MAX_ID_CHARS:
            raise reader.fail(f"{name}[{n}]", f"must be 1 to {MAX_ID_CHARS} characters")
    return tuple(dict.fromkeys(str(v) for v in value))


def _content_size(content: Any) -> int | None:
    if content is None:
        return None
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return len(text.encode("utf-8", errors="replace"))


def _agent_message(reader: _Reader) -> AgentMessageRecord:
    record_id, session_id = _common(reader)
    receivers = _id_list(reader, "receivers")
    if receivers is None and reader.has("receiver"):
        receivers = (reader.ident("receiver") or "",)
    content = reader.json_value("content")
    content_type = reader.text("content_type", limit=100)
    if content_type is None and content is not None:
        content_type = "text/plain" if isinstance(content, str) else "application/json"
    return AgentMessageRecord(
        record_id=record_id,
        session_id=session_id,
        message_id=reader.ident("message_id") or "",
        stage=reader.choice("stage", MESSAGE_STAGES),
        at=reader.when("at", required=True) or _epoch_unknown(),
        sender=reader.ident("sender", required=False),
        receivers=receivers,
        channel=reader.text("channel", limit=200),
        correlation_id=reader.ident("correlation_id", required=False),
        causation_id=reader.ident("causation_id", required=False),
        content=content,
        content_type=content_type,
        content_size=reader.count("content_size") or _content_size(content),
        metadata=reader.mapping("metadata"),
        attempt=reader.count("attempt"),
        error_type=reader.text("error_type", limit=200),
        error_message=reader.text("error_message"),
        agent_id=reader.ident("agent_id", required=False) or "",
    )


def _workflow(reader: _Reader, action: str) -> WorkflowRecord:
    record_id, session_id = _common(reader)
    is_end = action == "end"
    return WorkflowRecord(
        record_id=record_id,
        session_id=session_id,
        workflow_id=reader.ident("workflow_id") or "",
        action=action,
        at=reader.when("ended_at" if is_end else "started_at", required=True),
        name=reader.text("name", limit=MAX_NAME_CHARS),
        status=reader.choice("status", WORKFLOW_END_STATES, default="success") if is_end else None,
        result_summary=reader.text("result_summary"),
        metadata=reader.mapping("metadata"),
    )


def _step(reader: _Reader, action: str) -> StepRecord:
    record_id, session_id = _common(reader)
    is_end = action == "end"
    return StepRecord(
        record_id=record_id,
        session_id=session_id,
        workflow_id=reader.ident("workflow_id") or "",
        step_id=reader.ident("step_id") or "",
        action=action,
        at=reader.when("ended_at" if is_end else "started_at", required=True),
        name=reader.text("name", limit=MAX_NAME_CHARS),
        agent_id=reader.ident("agent_id", required=False),
        depends_on=_id_list(reader, "depends_on"),
        status=reader.choice("status", STEP_END_STATES, default="ok") if is_end else None,
        result_summary=reader.text("result_summary"),
        error_type=reader.text("error_type", limit=200),
        error_message=reader.text("error_message"),
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
