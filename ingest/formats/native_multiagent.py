"""Native multi-agent records: messages between agents, workflow runs and their steps. Pure."""

from __future__ import annotations

import json
from typing import Any

from ingest.formats.native_reader import (
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    _common,
    _epoch_unknown,
    _Reader,
)
from ingest.formats.records import (
    MESSAGE_STAGES,
    AgentMessageRecord,
    StepRecord,
    WorkflowRecord,
)

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
