"""The agentops SDK's own JSON bodies: the legacy v2 REST API (0.2.x-0.3.x) and the 0.4.x
`/v4/logs/upload/` body, parsed into records.py shapes. Pure. The 0.4.x spans are OTLP (otlp.py).

Every event shape from 0.2.6 to 0.3.26 is accepted (docs/agentops-protocol.md section 6). Oversized
strings are cut with a marker rather than refused: an agent cannot resend an event.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from ingest.formats.native_reader import parse_timestamp
from ingest.formats.records import (
    DETAILED_KIND_KEY,
    AgentMessageRecord,
    AgentRecord,
    BodyError,
    ParseResult,
    Record,
    RecordError,
    SessionRecord,
    SpanRecord,
    TranscriptRecord,
)
from ingest.formats.semconv_sessions import normalize_end_state
from ingest.formats.semconv_values import as_count, as_number

MAX_ID_CHARS = 128
MAX_NAME_CHARS = 300
MAX_TRACE_ID = 2**128 - 1
# "2026-11-21 18:47:29,501 - INFO - text": what agentops 0.4 writes for every print().
LOG_LINE = re.compile(
    r"^(?P<at>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(?P<ms>\d{3})"
    r" - (?P<level>[A-Z]+) - (?P<text>.*)$",
    re.DOTALL,
)
EVENT_KINDS = {"llms": "llm", "tools": "tool", "errors": "error", "actions": "action"}
# CAMEL's RolePlaying system prompts, the only place its agents' roles appear (agentops names
# every CAMEL ChatAgent "ChatAgent"): "Never forget you are a Searcher and I am a Professor."
CAMEL_ROLES = re.compile(
    r"Never forget you are an? (?P<me>[^\n.]{1,100}?) and I am an? (?P<other>[^\n.]{1,100}?)\."
)
MAX_TURN_CHARS = 10_000
# Session.__dict__ internals and values the client dumps but that say nothing about the run.
SESSION_METADATA_KEYS = ("host_env", "video", "event_counts")


class _FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _digest(*parts: str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode())
        hasher.update(b"\x1f")
    return hasher.hexdigest()[:32]


def _canonical(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


def _load(body: bytes) -> Any:
    try:
        # PostgreSQL text and jsonb cannot hold NUL; an escaped one would fail the whole batch.
        return orjson.loads(body.replace(b"\\u0000", b"\\ufffd"))
    except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise BodyError(f"Body is not valid JSON: {exc}") from exc


def _object(body: bytes, key: str | None = None) -> dict[str, Any]:
    """The JSON object of a body, or the object under `key`; BodyError 400 otherwise."""
    payload = _load(body)
    if not isinstance(payload, dict):
        raise BodyError(f"Body must be a JSON object, got {type(payload).__name__}")
    if key is None:
        return payload
    inner = payload.get(key)
    if not isinstance(inner, dict):
        raise BodyError(f"Body must be an object with a {key!r} object", field=key)
    return inner


def _ident(raw: dict[str, Any], name: str, path: str) -> str:
    value = raw.get(name)
    if value is None or value == "" or isinstance(value, bool | dict | list):
        raise _FieldError(f"{path}.{name}" if path else name, "is required (a string id)")
    text = str(value)
    if len(text) > MAX_ID_CHARS:
        raise _FieldError(
            f"{path}.{name}" if path else name,
            f"is {len(text)} characters; ids are limited to {MAX_ID_CHARS}",
        )
    return text


def _error(index: int | None, exc: _FieldError, raw: Any, record_type: str) -> RecordError:
    return RecordError(
        index=index,
        field=exc.field,
        message=f"{exc.field}: {exc.message}",
        record_type=record_type,
        raw=raw,
    )


def _when(raw: dict[str, Any], name: str, path: str) -> datetime | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    parsed = parse_timestamp(value)
    if parsed is None:
        raise _FieldError(f"{path}.{name}", f"not a timestamp (ISO 8601): {value!r}")
    return parsed


class _Cutter:
    """Cuts strings longer than the limit anywhere in a JSON value and remembers where."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.cut: dict[str, int] = {}

    def text(self, value: str, path: str) -> str:
        if len(value) <= self.limit:
            return value
        self.cut[path] = len(value)
        return (
            f"{value[: self.limit]}… [truncated: {len(value)} characters, the limit "
            f"OBSERVATORY_MAX_STRING_CHARS is {self.limit}]"
        )

    def value(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            return self.text(value, path)
        if isinstance(value, dict):
            return {k: self.value(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value


# --- v2 sessions -----------------------------------------------------------------------------


def parse_v2_create_session(body: bytes) -> ParseResult:
    """POST /v2/create_session: a session start (an upsert: 0.3 re-sends it for an inherited
    session), plus its end when the body already carries an end_timestamp."""
    return _session_records(_object(body, "session"), "start")


def parse_v2_update_session(body: bytes) -> ParseResult:
    """POST /v2/update_session: tags and metadata, plus the end once end_timestamp is set."""
    return _session_records(_object(body, "session"), "update")


def _session_records(session: dict[str, Any], action: str) -> ParseResult:
    try:
        session_id = _ident(session, "session_id", "session")
        started_at = _when(session, "init_timestamp", "session")
        ended_at = _when(session, "end_timestamp", "session")
    except _FieldError as exc:
        return ParseResult(records=[], errors=[_error(0, exc, session, "session")])
    content = _canonical(session)
    tags = session.get("tags")
    records: list[tuple[int, Record]] = [
        (
            0,
            SessionRecord(
                record_id=f"v2-session:{_digest(session_id, action, content)}",
                session_id=session_id,
                action=action,
                started_at=started_at,
                tags=_tags(tags) if tags is not None else None,
                metadata=_session_metadata(session),
            ),
        )
    ]
    if ended_at is not None:
        records.append((0, _session_end(session, session_id, ended_at, content)))
    return ParseResult(records=records, errors=[])


def _session_end(
    session: dict[str, Any], session_id: str, ended_at: datetime, content: str
) -> SessionRecord:
    reason = session.get("end_state_reason")
    return SessionRecord(
        record_id=f"v2-session:{_digest(session_id, 'end', content)}",
        session_id=session_id,
        action="end",
        ended_at=ended_at,
        end_state=normalize_end_state(session.get("end_state")),
        end_state_reason=None if reason in (None, "") else str(reason),
    )


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [tag.strip() for tag in value.split(",")]
    if not isinstance(value, list | tuple):
        return ()
    return tuple(dict.fromkeys(str(tag)[:200] for tag in value if tag not in (None, "")))


def _session_metadata(session: dict[str, Any]) -> dict[str, Any] | None:
    metadata = {
        key: session[key] for key in SESSION_METADATA_KEYS if session.get(key) not in (None, "")
    }
    return metadata or None


def parse_v2_reauthorize_jwt(body: bytes) -> str:
    """POST /v2/reauthorize_jwt: the session id the client wants a token for."""
    payload = _object(body)
    try:
        return _ident(payload, "session_id", "")
    except _FieldError as exc:
        raise BodyError(f"{exc.field}: {exc.message}", field=exc.field) from exc


def parse_v2_create_agent(body: bytes, *, session_id: str) -> ParseResult:
    """POST /v2/create_agent {"id", "name"}: an agent of the session the token names."""
    payload = _object(body)
    try:
        agent_id = _ident(payload, "id", "")
    except _FieldError as exc:
        return ParseResult(records=[], errors=[_error(0, exc, payload, "agent")])
    name = payload.get("name")
    record = AgentRecord(
        record_id=f"v2-agent:{_digest(session_id, agent_id, _canonical(payload))}",
        session_id=session_id,
        agent_id=agent_id,
        action="created",
        name=None if name in (None, "") else str(name)[:200],
    )
    return ParseResult(records=[(0, record)], errors=[])


# --- v2 events -------------------------------------------------------------------------------


def parse_v2_create_events(body: bytes, *, session_id: str, max_string_chars: int) -> ParseResult:
    """POST /v2/create_events {"events": [...]}: actions, llms, tools and errors (and apis) as
    spans of the session the token names. Errors link to their trigger event (<= 0.3.18) as its
    child and mark it failed."""
    payload = _object(body)
    events = payload.get("events")
    if not isinstance(events, list):
        raise BodyError("Body must be an object with an 'events' list", field="events")
    failed = _trigger_ids(events)
    records: list[tuple[int, Record]] = []
    errors: list[RecordError] = []
    for index, raw in enumerate(events):
        path = f"events[{index}]"
        try:
            if not isinstance(raw, dict):
                raise _FieldError(path, f"an event must be an object, got {type(raw).__name__}")
            event = _event(raw, path, session_id, _Cutter(max_string_chars), failed)
        except _FieldError as exc:
            record_type = raw.get("event_type", "") if isinstance(raw, dict) else ""
            errors.append(_error(index, exc, raw, str(record_type)[:50]))
            continue
        records.append((index, event))
        records += [(index, r) for r in _role_playing_records(event)]
    return ParseResult(records=records, errors=errors)


def _role_playing_records(event: SpanRecord) -> list[Record]:
    """CAMEL RolePlaying, from one LLM call alone: the calling agent's role (its system prompt
    says "you are a <role> and I am a <other>"), and, when the prompt ends with a user message,
    that message as an inferred turn from <other> to <role>, received when the call starts and
    processed when it ends."""
    prompt = event.prompt
    if event.kind != "llm" or not event.agent_id or not isinstance(prompt, list) or not prompt:
        return []
    first, last = prompt[0], prompt[-1]
    if not (isinstance(first, dict) and first.get("role") == "system"):
        return []
    match = CAMEL_ROLES.search(str(first.get("content") or ""))
    if match is None:
        return []
    me, other = match["me"].strip(), match["other"].strip()
    records: list[Record] = [
        AgentRecord(
            record_id=f"v2-camel-role:{_digest(event.session_id, event.agent_id, me)}",
            session_id=event.session_id,
            agent_id=event.agent_id,
            action="created",
            name=me[:200],
            role=me[:200],
        )
    ]
    if not (isinstance(last, dict) and last.get("role") == "user") or me == other:
        return records
    text = str(last.get("content") or "")[:MAX_TURN_CHARS]
    base = f"v2-camel-turn:{_digest(event.session_id, event.span_id)}"
    sent = AgentMessageRecord(
        record_id=f"{base}:sent",
        session_id=event.session_id,
        message_id=f"camel-turn:{event.span_id}"[:MAX_ID_CHARS],
        stage="sent",
        at=event.started_at,
        sender=other[:128],
        receivers=(me[:128],),
        channel="role-playing",
        content=text,
        content_type="text/plain",
        content_size=len(text.encode()),
        metadata={"observatory.inferred": True, "observatory.rule": "camel role-playing prompt"},
        agent_id=other[:128],
    )
    done = AgentMessageRecord(
        record_id=f"{base}:processed",
        session_id=event.session_id,
        message_id=sent.message_id,
        stage="processed",
        at=event.ended_at or event.started_at,
        agent_id=me[:128],
    )
    return [*records, sent, done]


def _trigger_ids(events: list[Any]) -> set[str]:
    ids = set()
    for raw in events:
        if isinstance(raw, dict) and raw.get("event_type") == "errors":
            trigger = _trigger_id(raw)
            if trigger:
                ids.add(trigger)
    return ids


def _trigger_id(raw: dict[str, Any]) -> str:
    """<= 0.3.18 sends trigger_event_id; a serialised trigger_event object may carry an id."""
    trigger = raw.get("trigger_event_id")
    if not trigger and isinstance(raw.get("trigger_event"), dict):
        trigger = raw["trigger_event"].get("id")
    return "" if trigger in (None, "") else str(trigger)[:MAX_ID_CHARS]


def _event(
    raw: dict[str, Any], path: str, session_id: str, cutter: _Cutter, failed: set[str]
) -> SpanRecord:
    event_type = str(raw.get("event_type") or "")
    kind = EVENT_KINDS.get(event_type, "action")
    started_at = _when(raw, "init_timestamp", path) or _when(raw, "timestamp", path)
    if started_at is None:
        raise _FieldError(f"{path}.init_timestamp", "is required (or timestamp, before 0.3.21)")
    ended_at = _when(raw, "end_timestamp", path) or started_at
    if ended_at < started_at:
        raise _FieldError(f"{path}.end_timestamp", "is before init_timestamp")
    content = _canonical(raw)
    span_id = str(raw.get("id") or "")[:MAX_ID_CHARS] or f"v2-{_digest(session_id, content)}"
    fields = _KIND_FIELDS[kind](raw, path, cutter)
    params = _params(raw.get("params"), f"{path}.params", cutter)
    returns = _value(raw.get("returns"), f"{path}.returns", cutter)
    attributes = {DETAILED_KIND_KEY: _detail_kind(event_type, kind), **fields.pop("attributes")}
    if cutter.cut:
        attributes["observatory.truncated"] = cutter.cut
    return SpanRecord(
        record_id=f"v2-event:{_digest(session_id, content)}",
        session_id=session_id,
        span_id=span_id,
        agent_id=str(raw.get("agent_id") or "")[:MAX_ID_CHARS],
        started_at=started_at,
        ended_at=ended_at,
        status="error" if kind == "error" or span_id in failed else "unset",
        params=params,
        returns=returns,
        attributes=attributes,
        **fields,
    )


def _detail_kind(event_type: str, kind: str) -> str:
    return "api" if event_type == "apis" else kind


def _value(value: Any, path: str, cutter: _Cutter) -> Any:
    """A params/returns value; "" (what filter_unjsonable writes for the unserialisable) is None."""
    return None if value == "" else cutter.value(value, path)


def _params(value: Any, path: str, cutter: _Cutter) -> Any:
    """Recorded arguments; a method's `self` (which the client could only write as "") is
    dropped."""
    if isinstance(value, dict) and value.get("self") == "":
        value = {key: item for key, item in value.items() if key != "self"}
    return _value(value, path, cutter)


def _text(raw: dict[str, Any], name: str, path: str, cutter: _Cutter) -> str:
    value = raw.get(name)
    if value is None or value == "":
        return ""
    text = value if isinstance(value, str) else _canonical(value)
    return cutter.text(text, f"{path}.{name}")


def _action_fields(raw: dict[str, Any], path: str, cutter: _Cutter) -> dict[str, Any]:
    action_type = raw.get("action_type") or raw.get("name") or "action"
    attributes = {"action_type": raw.get("action_type")}
    for key in ("logs", "screenshot"):
        if raw.get(key) not in (None, ""):
            attributes[key] = cutter.value(raw[key], f"{path}.{key}")
    return {"kind": "action", "name": str(action_type)[:MAX_NAME_CHARS], "attributes": attributes}


def _tool_fields(raw: dict[str, Any], path: str, cutter: _Cutter) -> dict[str, Any]:
    name = raw.get("name") or raw.get("tool_name") or "tool"
    attributes = {}
    if raw.get("logs") not in (None, ""):
        attributes["logs"] = cutter.value(raw["logs"], f"{path}.logs")
    return {"kind": "tool", "name": str(name)[:MAX_NAME_CHARS], "attributes": attributes}


def _llm_fields(raw: dict[str, Any], path: str, cutter: _Cutter) -> dict[str, Any]:
    prompt_tokens = as_count(raw.get("prompt_tokens"))
    completion_tokens = as_count(raw.get("completion_tokens"))
    cost = as_number(raw.get("cost"))
    model = str(raw.get("model") or "")[:200]
    attributes = {"thread_id": raw["thread_id"]} if raw.get("thread_id") else {}
    return {
        "kind": "llm",
        "name": model or "llm",
        "model": model,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost": cost,
        "prompt": _prompt(cutter.value(raw.get("prompt"), f"{path}.prompt")),
        "completion": _completion(cutter.value(raw.get("completion"), f"{path}.completion")),
        "attributes": attributes,
    }


def _prompt(value: Any) -> Any:
    """A ChatML list as it is; a plain string prompt as one user message."""
    if isinstance(value, str) and value:
        return [{"role": "user", "content": value}]
    return value if value != "" else None


def _completion(value: Any) -> Any:
    """A ChatML message without the keys the OpenAI client leaves null; a string as a message."""
    if isinstance(value, str) and value:
        return {"role": "assistant", "content": value}
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if item is not None}
    return value if value != "" else None


def _error_fields(raw: dict[str, Any], path: str, cutter: _Cutter) -> dict[str, Any]:
    error_type = str(raw.get("error_type") or "")[:200]
    attributes: dict[str, Any] = {}
    for key in ("code", "trigger_event_type"):
        if raw.get(key) not in (None, ""):
            attributes[key] = raw[key]
    if raw.get("exception") not in (None, ""):
        attributes["exception"] = cutter.value(raw["exception"], f"{path}.exception")
    return {
        "kind": "error",
        "name": (error_type or "error")[:MAX_NAME_CHARS],
        "parent_span_id": _trigger_id(raw),
        "error_type": error_type,
        "error_message": _text(raw, "details", path, cutter),
        "stack_trace": _text(raw, "logs", path, cutter),
        "attributes": attributes,
    }


_KIND_FIELDS: dict[str, Callable[[dict[str, Any], str, _Cutter], dict[str, Any]]] = {
    "action": _action_fields,
    "tool": _tool_fields,
    "llm": _llm_fields,
    "error": _error_fields,
}


# --- /v4/logs/upload/ ------------------------------------------------------------------------


def trace_id_from_header(value: str) -> str:
    """The agentops `Trace-Id` header (the trace id as a decimal integer) as 32 hex characters."""
    text = (value or "").strip()
    if not text or not text.isascii() or not text.isdigit():
        raise BodyError(
            f"Trace-Id header must be the trace id as a decimal integer, got {value!r}",
            field="Trace-Id",
        )
    number = int(text)
    if not 0 < number <= MAX_TRACE_ID:
        raise BodyError(
            "Trace-Id header must be a 128-bit trace id (1 to 2**128-1)", field="Trace-Id"
        )
    return format(number, "032x")


def parse_agentops_log_upload(
    body: bytes,
    trace_id_header: str,
    *,
    max_string_chars: int,
    received_at: datetime | None = None,
) -> ParseResult:
    """POST /v4/logs/upload/ {"body": "<captured print() output>"}: one "log" line per non-empty
    line, at its own timestamp (read as UTC: the agent's zone is unknown), INFO prefix removed.

    Ids hash (trace, line number, line), so a re-upload is a duplicate. A line without a readable
    time takes the nearest one before it (else after it, else received_at); with none at all it
    is refused.
    """
    trace_id = trace_id_from_header(trace_id_header)
    text = _object(body).get("body")
    if not isinstance(text, str):
        raise BodyError("Body must be an object with a 'body' string", field="body")
    lines = [(number, line) for number, line in enumerate(text.splitlines()) if line.strip()]
    parsed = [_log_line(line) for _, line in lines]
    times = _fill_times([at for at, _ in parsed], received_at)
    cutter = _Cutter(max_string_chars)
    records: list[tuple[int, Record]] = []
    errors: list[RecordError] = []
    for (number, line), (_, message), at in zip(lines, parsed, times, strict=True):
        if at is None:
            exc = _FieldError(f"body.lines[{number}]", "log line has no timestamp")
            errors.append(_error(number, exc, line, "log"))
            continue
        record = TranscriptRecord(
            record_id=f"agentops-log:{_digest(trace_id, str(number), line)}",
            session_id=trace_id,
            trace_id=trace_id,
            role="log",
            text=cutter.text(message, f"body.lines[{number}]"),
            at=at,
        )
        records.append((number, record))
    return ParseResult(records=records, errors=errors)


def _log_line(line: str) -> tuple[datetime | None, str]:
    """(time, text) of one line; the level stays in front of the text unless it is INFO."""
    match = LOG_LINE.match(line)
    if match is None:
        return None, line
    at = parse_timestamp(f"{match['at'].replace(' ', 'T')}.{match['ms']}")
    level, message = match["level"], match["text"]
    return at, message if level == "INFO" else f"{level}: {message}"


def _fill_times(times: list[datetime | None], fallback: datetime | None) -> list[datetime | None]:
    filled: list[datetime | None] = []
    last: datetime | None = None
    for at in times:
        last = at or last
        filled.append(last)
    upcoming: datetime | None = None
    for position in range(len(filled) - 1, -1, -1):
        if times[position] is not None:
            upcoming = times[position]
        if filled[position] is None:
            filled[position] = upcoming or fallback
    return filled
