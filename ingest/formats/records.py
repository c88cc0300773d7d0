"""The one internal shape every wire format parses into; the store only knows these. Pure.

Records are read-only by convention (dataclasses.replace makes a changed copy) but not frozen:
a frozen dataclass sets every field through object.__setattr__, four times the cost of a
slotted one, and ingest builds one or more per span."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import Any, TypeVar


@dataclass(slots=True)
class RecordError:
    """Why one record was refused: its position in the batch, the field path and a message."""

    index: int | None
    field: str
    message: str
    record_type: str = ""
    raw: Any = None


@dataclass(slots=True)
class SessionRecord:
    """session.start / session.update / session.end. None means "not said by this record"."""

    record_id: str
    session_id: str
    action: str  # "start" | "update" | "end"
    name: str | None = None
    # The start of the root span a name is taken from (OTLP orphan roots): the earliest wins, so
    # a session of several traces has one name whatever order they came in. None: a name the
    # client gave, which no root's replaces.
    name_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    end_state: str | None = None
    end_state_reason: str | None = None
    tags: tuple[str, ...] | None = None
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    user_query: str | None = None
    parent_session_id: str | None = None
    group_key: str | None = None


@dataclass(slots=True)
class AgentRecord:
    """agent.created / agent.terminated."""

    record_id: str
    session_id: str
    agent_id: str
    action: str  # "created" | "terminated"
    at: datetime | None = None
    name: str | None = None
    role: str | None = None
    init_params: dict[str, Any] | None = None
    reason: str | None = None


# The attribute that keeps a span's detailed kind (workflow, agent, task, …) when it says more
# than its kind: written by the OTLP and agentops parsers, read by the waterfall, span page and API.
DETAILED_KIND_KEY = "observatory.kind"


@dataclass(slots=True)
class SpanRecord:
    """One event/span. Later records with the same (session_id, span_id) are merged into it."""

    record_id: str
    session_id: str
    span_id: str
    kind: str
    name: str
    started_at: datetime
    parent_span_id: str = ""
    agent_id: str = ""
    ended_at: datetime | None = None
    status: str = "unset"
    model: str = ""
    provider: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    error_type: str = ""
    error_message: str = ""
    stack_trace: str = ""
    params: Any = None
    returns: Any = None
    prompt: Any = None
    completion: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    # OTLP: the trace the span came from (hex), and the attribute keys no mapping understood;
    # they are shown in the span's "unmapped attributes" panel, never dropped.
    trace_id: str = ""
    unmapped_keys: tuple[str, ...] = ()

    @property
    def is_cost_missing(self) -> bool:
        """An LLM call with tokens and a model but no cost of its own: ingest prices it from the
        model price table (ingest/pricing.py: estimated_costs), and marks it estimated."""
        return (
            self.kind == "llm"
            and self.cost is None
            and bool(self.model)
            and bool(self.prompt_tokens or self.completion_tokens)
        )


@dataclass(slots=True)
class TraceLinkRecord:
    """OTLP: the spans of trace_id belong to session_id (a session that spans several traces,
    e.g. one TaskWeaver round per trace). Without a link a trace is its own session, keyed by
    its hex trace id. round_index orders the rounds when the client says it (else start time).

    With follows_trace, session_id is another trace's id (a span link points there): the trace
    is in whatever session that trace is in, which the store resolves
    (store.traces._batch_links)."""

    record_id: str
    trace_id: str
    session_id: str
    round_index: int | None = None
    reason: str = ""  # why the trace is in this session, shown beside its round
    follows_trace: bool = False
    # AutoGen: the trace only creates this agent (a create_agent span, before any team run,
    # naming no team); session_id is "" and the store finds the run that next uses the agent.
    defined_agent: str = ""
    defined_at: datetime | None = None


@dataclass(slots=True)
class TranscriptRecord:
    """A chat message (user/assistant/system) or a status line (agent/llm/tool)."""

    record_id: str
    session_id: str
    role: str
    text: str
    at: datetime
    agent_id: str = ""
    span_id: str = ""
    trace_id: str = ""


@dataclass(slots=True)
class MetricRecord:
    record_id: str
    name: str
    value: float
    at: datetime
    session_id: str = ""
    unit: str = ""
    agent_id: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ScoreRecord:
    """score: a judgement of a session or a span. Keyed by record_id (the score's client id):
    a later record with the same id replaces the stored score, an identical one changes nothing.
    None for `at`: when it was stored."""

    record_id: str
    session_id: str
    name: str
    data_type: str  # numeric | categorical | boolean
    value: float | None = None  # the number; 1.0 / 0.0 for a boolean
    label: str = ""  # the category, "true"/"false", or a numeric score's label
    span_id: str = ""
    comment: str = ""
    source: str = "api"  # api | human | eval
    author: str = ""
    at: datetime | None = None


@dataclass(slots=True)
class TestRunRecord:
    """test_run.start / test_run.end. None means "not said by this record"."""

    __test__ = False  # pytest: a record, not a test class

    record_id: str
    run_id: str
    action: str  # "start" | "end"
    tier: str | None = None
    suite: str | None = None
    commit: str | None = None
    branch: str | None = None
    environment: str | None = None
    source: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    metadata: dict[str, Any] | None = None


@dataclass(slots=True)
class TestResultRecord:
    """One test's outcome in a run. A later record for the same (run_id, test_id) replaces it."""

    __test__ = False  # pytest: a record, not a test class

    record_id: str
    run_id: str
    test_id: str
    outcome: str  # pass | fail | error | skip | xfail
    name: str = ""
    tier: str = ""
    duration_ms: float | None = None
    started_at: datetime | None = None
    error_message: str = ""
    error_trace: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    session_ids: tuple[str, ...] = ()
    # Judgements of the agent's answer (source eval, author the test id). Their record and
    # session ids are blank: the store gives each linked session its copy.
    scores: tuple[ScoreRecord, ...] = ()


# The lifecycle stages of a message between agents, in the order a message goes through them.
# The one list: Message.Stage, the native parser and the lifecycle merge read it; the SDK (a
# separate package) keeps a copy that tests/ingest/test_vocabularies.py holds to this one.
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


@dataclass(slots=True)
class AgentMessageRecord:
    """agent_message: one lifecycle stage of a message between agents. Records of one message
    (same session_id and message_id) merge in any order; None means "not said by this record"."""

    record_id: str
    session_id: str
    message_id: str
    stage: str  # created | sent | delivered | received | processed | failed | retried | …
    at: datetime
    sender: str | None = None
    receivers: tuple[str, ...] | None = None
    channel: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    content: Any = None
    content_type: str | None = None
    content_size: int | None = None
    metadata: dict[str, Any] | None = None
    attempt: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    agent_id: str = ""  # the agent that reported the stage
    trace_id: str = ""


@dataclass(slots=True)
class WorkflowRecord:
    """workflow.start / workflow.end. None means "not said by this record"."""

    record_id: str
    session_id: str
    workflow_id: str
    action: str  # "start" | "end"
    at: datetime | None = None
    name: str | None = None
    status: str | None = None  # success | fail | cancelled (end)
    result_summary: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(slots=True)
class StepRecord:
    """step.start / step.end of one step of a workflow run; merged by (workflow, step_id)."""

    record_id: str
    session_id: str
    workflow_id: str
    step_id: str
    action: str  # "start" | "end"
    at: datetime | None = None
    name: str | None = None
    agent_id: str | None = None
    depends_on: tuple[str, ...] | None = None
    status: str | None = None  # ok | error | skipped | cancelled (end)
    result_summary: str | None = None
    error_type: str | None = None
    error_message: str | None = None


Record = (
    SessionRecord
    | AgentRecord
    | SpanRecord
    | TranscriptRecord
    | MetricRecord
    | TraceLinkRecord
    | AgentMessageRecord
    | WorkflowRecord
    | StepRecord
    | TestRunRecord
    | TestResultRecord
    | ScoreRecord
)


def session_id_of(record: Record) -> str:
    """The session a record belongs to; "" for test records, which belong to a run instead."""
    return "" if isinstance(record, TestRunRecord | TestResultRecord) else record.session_id


SessionScoped = TypeVar(
    "SessionScoped",
    SessionRecord,
    AgentRecord,
    SpanRecord,
    TranscriptRecord,
    MetricRecord,
    AgentMessageRecord,
    WorkflowRecord,
    StepRecord,
    ScoreRecord,
)


# Each record class's field values in __init__'s order (every field is an init field).
_FIELD_VALUES = {
    cls: attrgetter(*(f.name for f in fields(cls))) for cls in SessionScoped.__constraints__
}


def with_session_id(record: SessionScoped, session_id: str) -> SessionScoped:
    """A copy of `record` in another session: dataclasses.replace(record, session_id=...),
    which the store calls for nearly every record of a linked trace, at a fifth of its cost
    (replace looks the fields up and passes them by keyword on every call)."""
    copy = type(record)(*_FIELD_VALUES[type(record)](record))
    copy.session_id = session_id
    return copy


@dataclass(slots=True)
class ParseResult:
    """Records in batch order with their batch index, plus one error per refused record."""

    records: list[tuple[int, Record]]
    errors: list[RecordError]


class BodyError(Exception):
    """The whole body is unusable (too big, not JSON, wrong shape). Carries an HTTP status."""

    def __init__(self, message: str, *, status: int = 400, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field
