"""Pure builders for native ingest records (docs/ingest-api.md): plain, JSON-ready dicts.

Every builder gives the record a fresh id (uuid4 hex) unless one is passed, stamps "now" in UTC
when no time is given, and leaves out fields that are None or empty strings.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict, Unpack

Record = dict[str, Any]
Timestamp = datetime | str | float | None

SPAN_KINDS = ("action", "llm", "tool", "error")
SPAN_STATUSES = ("ok", "error", "unset")
STATUS_ROLES = ("agent", "llm", "tool")
MESSAGE_ROLES = ("user", "assistant", "system")
END_STATES = ("success", "fail", "indeterminate")


def new_id() -> str:
    """A random record, session or span id: 32 hex characters."""
    return uuid.uuid4().hex


def wire_timestamp(value: Timestamp = None) -> str | float:
    """ISO 8601 in UTC with a "Z" for datetimes (naive ones are taken as UTC) and now for None.

    Strings and Unix seconds pass through unchanged: the server reads both.
    """
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def _checked(value: str, choices: Sequence[str], field: str) -> str:
    if value not in choices:
        raise ValueError(f"{field} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _record(record_type: str, record_id: str | None, session_id: str, **fields: Any) -> Record:
    record: Record = {"type": record_type, "id": record_id or new_id()}
    if session_id:
        record["session_id"] = session_id
    record.update(
        {key: value for key, value in fields.items() if value is not None and value != ""}
    )
    return record


def _listed(values: Sequence[str] | None) -> list[str] | None:
    return None if values is None else [str(value) for value in values]


def _copied(mapping: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if mapping is None else dict(mapping)


def session_start_record(
    session_id: str,
    *,
    name: str = "",
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    user_query: str = "",
    parent_session_id: str = "",
    group_key: str = "",
    started_at: Timestamp = None,
    record_id: str | None = None,
) -> Record:
    """A session.start record."""
    return _record(
        "session.start",
        record_id,
        session_id,
        started_at=wire_timestamp(started_at),
        name=name,
        tags=_listed(tags),
        metadata=_copied(metadata),
        config=_copied(config),
        user_query=user_query,
        parent_session_id=parent_session_id,
        group_key=group_key,
    )


def session_update_record(
    session_id: str,
    *,
    name: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    user_query: str | None = None,
    parent_session_id: str | None = None,
    group_key: str | None = None,
    record_id: str | None = None,
) -> Record:
    """A session.update record carrying only the fields given (metadata is merged server-side)."""
    return _record(
        "session.update",
        record_id,
        session_id,
        name=name,
        tags=_listed(tags),
        metadata=_copied(metadata),
        config=_copied(config),
        user_query=user_query,
        parent_session_id=parent_session_id,
        group_key=group_key,
    )


def session_end_record(
    session_id: str,
    *,
    end_state: str = "success",
    reason: str = "",
    ended_at: Timestamp = None,
    record_id: str | None = None,
) -> Record:
    """A session.end record. Raises ValueError for an end state the server does not know."""
    return _record(
        "session.end",
        record_id,
        session_id,
        ended_at=wire_timestamp(ended_at),
        end_state=_checked(end_state, END_STATES, "end_state"),
        end_state_reason=reason,
    )


def agent_created_record(
    session_id: str,
    agent_id: str,
    *,
    name: str = "",
    role: str = "",
    init_params: Mapping[str, Any] | None = None,
    at: Timestamp = None,
    record_id: str | None = None,
) -> Record:
    """An agent.created record."""
    return _record(
        "agent.created",
        record_id,
        session_id,
        agent_id=agent_id,
        name=name,
        role=role,
        init_params=_copied(init_params),
        at=wire_timestamp(at),
    )


def agent_terminated_record(
    session_id: str,
    agent_id: str,
    *,
    reason: str = "",
    at: Timestamp = None,
    record_id: str | None = None,
) -> Record:
    """An agent.terminated record."""
    return _record(
        "agent.terminated",
        record_id,
        session_id,
        agent_id=agent_id,
        reason=reason,
        at=wire_timestamp(at),
    )


class EventFields(TypedDict, total=False):
    """The optional fields of an event record, as keyword arguments."""

    started_at: Timestamp
    ended_at: Timestamp
    span_id: str
    parent_span_id: str
    agent_id: str
    status: str
    model: str
    provider: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    params: Any
    returns: Any
    prompt: Any
    completion: Any
    error_type: str
    error_message: str
    stack_trace: str
    attributes: Mapping[str, Any]
    record_id: str


def event_record(session_id: str, kind: str, name: str, **fields: Unpack[EventFields]) -> Record:
    """An event (span) record; started_at defaults to now. The span id defaults to the record id:
    send the same span id again to merge more fields into the span.

    Raises ValueError for an unknown kind or status and TypeError for an unknown field.
    """
    unknown = set(fields) - EventFields.__optional_keys__
    if unknown:
        raise TypeError(f"unknown event fields: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = dict(fields)
    record_id = values.pop("record_id", None) or new_id()
    values["span_id"] = values.get("span_id") or record_id
    values["kind"] = _checked(kind, SPAN_KINDS, "kind")
    values["name"] = name
    values["started_at"] = wire_timestamp(values.get("started_at"))
    if values.get("ended_at") is not None:
        values["ended_at"] = wire_timestamp(values["ended_at"])
    if values.get("status"):
        _checked(values["status"], SPAN_STATUSES, "status")
    values["attributes"] = _copied(values.get("attributes"))
    return _record("event", record_id, session_id, **values)


def status_record(
    session_id: str,
    role: str,
    text: str,
    *,
    agent_id: str = "",
    span_id: str = "",
    at: Timestamp = None,
    record_id: str | None = None,
) -> Record:
    """A status line (role agent, llm or tool). Raises ValueError for any other role."""
    return _record(
        "status",
        record_id,
        session_id,
        role=_checked(role, STATUS_ROLES, "role"),
        text=text,
        at=wire_timestamp(at),
        agent_id=agent_id,
        span_id=span_id,
    )


def message_record(
    session_id: str,
    role: str,
    content: str,
    *,
    agent_id: str = "",
    at: Timestamp = None,
    record_id: str | None = None,
) -> Record:
    """A conversation message (role user, assistant or system). Raises ValueError otherwise."""
    return _record(
        "message",
        record_id,
        session_id,
        role=_checked(role, MESSAGE_ROLES, "role"),
        content=content,
        at=wire_timestamp(at),
        agent_id=agent_id,
    )


def metric_record(
    name: str,
    value: float,
    *,
    unit: str = "",
    session_id: str = "",
    agent_id: str = "",
    at: Timestamp = None,
    record_id: str | None = None,
) -> Record:
    """A metric sample; the session is optional."""
    return _record(
        "metric",
        record_id,
        session_id,
        name=name,
        value=value,
        unit=unit,
        agent_id=agent_id,
        at=wire_timestamp(at),
    )


SCORE_SOURCES = ("api", "human", "eval")
SCORE_DATA_TYPES = ("numeric", "categorical", "boolean")
ScoreValue = float | int | bool | str


def score_record(
    session_id: str,
    name: str,
    value: ScoreValue,
    *,
    span_id: str = "",
    comment: str = "",
    source: str = "api",
    author: str = "",
    data_type: str = "",
    label: str = "",
    at: Timestamp = None,
    score_id: str | None = None,
) -> Record:
    """A score of a session (or of one of its spans): a number, a category (a string) or a
    yes/no (a bool). Its id is the score's: send the same `score_id` again to change it."""
    if not name:
        raise ValueError("a score needs a name")
    return _record(
        "score",
        score_id,
        session_id,
        name=name,
        value=value,
        span_id=span_id,
        comment=comment,
        source=_checked(source, SCORE_SOURCES, "source"),
        author=author,
        data_type=_checked(data_type, SCORE_DATA_TYPES, "data_type") if data_type else "",
        label=label,
        at=wire_timestamp(at),
    )


def result_scores(scores: Mapping[str, ScoreValue] | Sequence[Mapping[str, Any]]) -> list[Any]:
    """A test result's `scores`: {name: value}, or a list of {name, value, comment, ...}."""
    if isinstance(scores, Mapping):
        return [{"name": str(name), "value": value} for name, value in scores.items()]
    return [dict(score) for score in scores]


TEST_OUTCOMES = ("pass", "fail", "error", "skip", "xfail")


def test_run_start_record(
    run_id: str,
    *,
    tier: str = "",
    suite: str = "",
    commit: str = "",
    branch: str = "",
    environment: str = "",
    source: str = "",
    started_at: Timestamp = None,
    metadata: Mapping[str, Any] | None = None,
    record_id: str | None = None,
) -> Record:
    """A test_run.start record: one run of a suite (tier unit, integration, scenario, chaos or
    your own; blank when each result names its tier)."""
    return _record(
        "test_run.start",
        record_id,
        "",
        run_id=run_id,
        tier=tier,
        suite=suite,
        commit=commit,
        branch=branch,
        environment=environment,
        source=source,
        started_at=wire_timestamp(started_at),
        metadata=_copied(metadata),
    )


def test_run_end_record(
    run_id: str,
    *,
    ended_at: Timestamp = None,
    metadata: Mapping[str, Any] | None = None,
    record_id: str | None = None,
) -> Record:
    """A test_run.end record."""
    return _record(
        "test_run.end",
        record_id,
        "",
        run_id=run_id,
        ended_at=wire_timestamp(ended_at),
        metadata=_copied(metadata),
    )


def test_result_record(
    run_id: str,
    test_id: str,
    outcome: str,
    *,
    name: str = "",
    tier: str = "",
    duration_ms: float | None = None,
    started_at: Timestamp = None,
    error_message: str = "",
    error_trace: str = "",
    metrics: Mapping[str, float] | None = None,
    session_ids: Sequence[str] = (),
    scores: Mapping[str, ScoreValue] | Sequence[Mapping[str, Any]] = (),
    record_id: str | None = None,
) -> Record:
    """A test_result record. Raises ValueError for an outcome other than pass, fail, error, skip
    or xfail. `scores` judge the agent's answer; they also become scores of `session_ids`."""
    return _record(
        "test_result",
        record_id,
        "",
        run_id=run_id,
        test_id=test_id,
        outcome=_checked(outcome, TEST_OUTCOMES, "outcome"),
        name=name,
        tier=tier,
        duration_ms=duration_ms,
        started_at=None if started_at is None else wire_timestamp(started_at),
        error_message=error_message,
        error_trace=error_trace,
        metrics=_copied(metrics) or None,
        session_ids=list(session_ids) or None,
        scores=result_scores(scores) or None,
    )


MESSAGE_STAGES = (
    "created",
    "sent",
    "delivered",
    "received",
    "processed",
    "failed",
    "retried",
    "dead_lettered",
    "expired",
)
WORKFLOW_END_STATES = ("success", "fail", "cancelled")
STEP_END_STATES = ("ok", "error", "skipped", "cancelled")


def agent_message_record(
    session_id: str,
    message_id: str,
    stage: str,
    *,
    sender: str = "",
    receivers: Sequence[str] | None = None,
    channel: str = "",
    correlation_id: str = "",
    causation_id: str = "",
    content: Any = None,
    content_type: str = "",
    metadata: Mapping[str, Any] | None = None,
    attempt: int | None = None,
    error_type: str = "",
    error_message: str = "",
    agent_id: str = "",
    at: Timestamp = None,
    record_id: str | None = None,
) -> Record:
    """An agent_message record: one lifecycle stage of a message between agents. Send the
    sender, receivers and content once (usually with created or sent); later stages need only
    the message id. Raises ValueError for an unknown stage."""
    return _record(
        "agent_message",
        record_id,
        session_id,
        message_id=message_id,
        stage=_checked(stage, MESSAGE_STAGES, "stage"),
        at=wire_timestamp(at),
        sender=sender,
        receivers=_listed(receivers),
        channel=channel,
        correlation_id=correlation_id,
        causation_id=causation_id,
        content=content,
        content_type=content_type,
        metadata=_copied(metadata),
        attempt=attempt,
        error_type=error_type,
        error_message=error_message,
        agent_id=agent_id,
    )


def workflow_start_record(
    session_id: str,
    workflow_id: str,
    *,
    name: str = "",
    metadata: Mapping[str, Any] | None = None,
    started_at: Timestamp = None,
    record_id: str | None = None,
) -> Record:
    """A workflow.start record: one run of a named workflow in a session."""
    return _record(
        "workflow.start",
        record_id,
        session_id,
        workflow_id=workflow_id,
        name=name,
        metadata=_copied(metadata),
        started_at=wire_timestamp(started_at),
    )


def workflow_end_record(
    session_id: str,
    workflow_id: str,
    *,
    status: str = "success",
    result_summary: str = "",
    ended_at: Timestamp = None,
    record_id: str | None = None,
) -> Record:
    """A workflow.end record (status success, fail or cancelled)."""
    return _record(
        "workflow.end",
        record_id,
        session_id,
        workflow_id=workflow_id,
        status=_checked(status, WORKFLOW_END_STATES, "status"),
        result_summary=result_summary,
        ended_at=wire_timestamp(ended_at),
    )


def step_start_record(
    session_id: str,
    workflow_id: str,
    step_id: str,
    *,
    name: str = "",
    agent_id: str = "",
    depends_on: Sequence[str] | None = None,
    started_at: Timestamp = None,
    record_id: str | None = None,
) -> Record:
    """A step.start record: which agent runs the step and which steps it waited for."""
    return _record(
        "step.start",
        record_id,
        session_id,
        workflow_id=workflow_id,
        step_id=step_id,
        name=name,
        agent_id=agent_id,
        depends_on=_listed(depends_on),
        started_at=wire_timestamp(started_at),
    )


def step_end_record(
    session_id: str,
    workflow_id: str,
    step_id: str,
    *,
    status: str = "ok",
    result_summary: str = "",
    error_type: str = "",
    error_message: str = "",
    ended_at: Timestamp = None,
    record_id: str | None = None,
) -> Record:
    """A step.end record (status ok, error, skipped or cancelled)."""
    return _record(
        "step.end",
        record_id,
        session_id,
        workflow_id=workflow_id,
        step_id=step_id,
        status=_checked(status, STEP_END_STATES, "status"),
        result_summary=result_summary,
        error_type=error_type,
        error_message=error_message,
        ended_at=wire_timestamp(ended_at),
    )
