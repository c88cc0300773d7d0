"""OTLP spans that describe multi-agent systems: messages and workflows. Pure.

- Spans with the OpenTelemetry messaging conventions (`messaging.operation.type` create, send,
  receive, process, settle; or the older `messaging.operation` publish) become lifecycle records
  of the message `messaging.message.id` names (else the producer span's id; a consumer span finds
  it through its span links, one message per link). The sender is the producer's agent, a
  receiver is the consumer's agent: both said so themselves, nothing is inferred.
- Spans a per-project MessageRule matches (TaskWeaver's post spans carry in.from, in.recipient
  and in.message) become a message sent at the span's start and processed (or failed) at its end.
- Spans of detailed kind workflow become workflow runs; task spans become their steps (of the
  nearest workflow ancestor in the request), run by the nearest agent ancestor, depending on the
  task spans they link to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ingest.formats.records import AgentMessageRecord, Record, StepRecord, WorkflowRecord
from ingest.formats.semconv import MessageRule, SpanMeaning, as_count

if TYPE_CHECKING:
    from ingest.formats.otlp import WireLink, WireSpan

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATUS_ERROR = 2
PRODUCER_STAGES = {"create": "created", "publish": "sent", "send": "sent"}
CONSUMER_OPERATIONS = ("receive", "process", "deliver", "settle")
AGENT_NAME_KEYS = ("gen_ai.agent.name", "agent.name")
MAX_ID_CHARS = 128


def _at(nanos: int) -> datetime:
    # timedelta(days, seconds, microseconds) positionally: keywords cost a third more.
    return EPOCH + timedelta(0, 0, nanos // 1000)


def _text(value: Any, limit: int = MAX_ID_CHARS) -> str:
    return "" if value is None else str(value)[:limit]


class SpanIndex:
    """Positions of the request's spans, their parents and their agents' names."""

    def __init__(
        self, spans: Sequence[WireSpan], meanings: Sequence[SpanMeaning], agents: Sequence[str]
    ) -> None:
        self.spans = spans
        self.meanings = meanings
        self.position = {(s.trace_id, s.span_id): i for i, s in enumerate(spans)}
        self.parents = [
            self.position.get((s.trace_id, s.parent_span_id)) if s.parent_span_id else None
            for s in spans
        ]
        self.agents = agents

    def agent_name(self, i: int) -> str:
        """The span's own gen_ai.agent.name, else its agent ancestor's name, else the service."""
        span = self.spans[i]
        for key in AGENT_NAME_KEYS:
            if span.attributes.get(key):
                return _text(span.attributes[key])
        agent = self.position.get((span.trace_id, self.agents[i])) if self.agents[i] else None
        if agent is not None:
            return _text(self.meanings[agent].name)
        return _text(span.resource.get("service.name"))

    def linked_message_id(self, link: WireLink) -> str:
        """The message a span link points at: the linked producer's messaging.message.id when
        it is in this request, else the linked span's id (what a producer without a message id
        is keyed by)."""
        linked = self.position.get((link.trace_id, link.span_id))
        if linked is not None:
            own = _text(self.spans[linked].attributes.get("messaging.message.id"))
            if own:
                return own
        return link.span_id

    def ancestor(self, i: int, detail: str) -> int | None:
        """The nearest ancestor (within the request) whose detailed kind is `detail`."""
        seen = 0
        current = self.parents[i]
        while current is not None and seen <= len(self.spans):
            if self.meanings[current].detail == detail:
                return current
            current = self.parents[current]
            seen += 1
        return None


def flow_records(
    spans: Sequence[WireSpan],
    meanings: Sequence[SpanMeaning],
    agents: Sequence[str],
    *,
    rules: Sequence[MessageRule] = (),
) -> list[tuple[int, Record]]:
    """Message, workflow and step records for the request's spans (see the module docstring)."""
    index = SpanIndex(spans, meanings, agents)
    records: list[tuple[int, Record]] = []
    implicit_runs: set[str] = set()
    for i, span in enumerate(spans):
        detail = meanings[i].detail
        if detail == "workflow":
            records += [(span.index, r) for r in _workflow_records(span, meanings[i])]
        elif detail == "task":
            workflow = index.ancestor(i, "workflow")
            records += [(span.index, r) for r in _step_records(index, i, workflow)]
            if workflow is None:
                implicit_runs.add(span.trace_id)
        operation = _operation(span.attributes)
        if operation:
            records += [(span.index, r) for r in _messaging_records(index, i, operation)]
        for rule in rules:
            if rule.matches(span.name, span.attributes):
                records += [(span.index, r) for r in _rule_records(span, rule)]
                break
    return records + _implicit_run_bounds(index, implicit_runs)


def _implicit_run_bounds(index: SpanIndex, traces: set[str]) -> list[tuple[int, Record]]:
    """Tasks outside any workflow span form their trace's implicit run (keyed by trace id): it
    spans the trace's root span, so it ends when the root does instead of running forever."""
    records: list[tuple[int, Record]] = []
    for i, span in enumerate(index.spans):
        if span.trace_id not in traces or span.parent_span_id:
            continue
        run = _workflow_records(span, index.meanings[i])
        records += [
            (span.index, replace(r, workflow_id=span.trace_id, record_id=f"{r.record_id}:implicit"))
            for r in run
            if isinstance(r, WorkflowRecord)
        ]
    return records


# --- workflows --------------------------------------------------------------------------------


def _end_status(span: WireSpan, *, ok: str, failed: str) -> str:
    return failed if span.status_code == STATUS_ERROR else ok


def _workflow_records(span: WireSpan, meaning: SpanMeaning) -> list[Record]:
    base = f"otlp-flow:{span.digest}"
    records: list[Record] = [
        WorkflowRecord(
            record_id=f"{base}:start",
            session_id=span.trace_id,
            workflow_id=span.span_id,
            action="start",
            at=_at(span.start_ns),
            name=meaning.name[:300],
        )
    ]
    if span.end_ns:
        records.append(
            WorkflowRecord(
                record_id=f"{base}:end",
                session_id=span.trace_id,
                workflow_id=span.span_id,
                action="end",
                at=_at(span.end_ns),
                status=_end_status(span, ok="success", failed="fail"),
                result_summary=span.status_message or None,
            )
        )
    return records


def _step_records(index: SpanIndex, i: int, workflow: int | None) -> list[Record]:
    """Step records of task span i, a step of the run of workflow span `workflow`."""
    span, meaning = index.spans[i], index.meanings[i]
    # A task outside any workflow span of the request belongs to its trace's implicit run.
    workflow_id = index.spans[workflow].span_id if workflow is not None else span.trace_id
    depends_on = tuple(link.span_id for link in span.links if link.trace_id == span.trace_id)
    base = f"otlp-flow:{span.digest}"
    records: list[Record] = [
        StepRecord(
            record_id=f"{base}:start",
            session_id=span.trace_id,
            workflow_id=workflow_id,
            step_id=span.span_id,
            action="start",
            at=_at(span.start_ns),
            name=meaning.name[:300],
            agent_id=index.agent_name(i) or None,
            depends_on=depends_on or None,
        )
    ]
    if span.end_ns:
        records.append(
            StepRecord(
                record_id=f"{base}:end",
                session_id=span.trace_id,
                workflow_id=workflow_id,
                step_id=span.span_id,
                action="end",
                at=_at(span.end_ns),
                status=_end_status(span, ok="ok", failed="error"),
                error_message=span.status_message or None,
            )
        )
    return records


# --- messaging conventions --------------------------------------------------------------------


def _operation(attributes: dict[str, Any]) -> str:
    operation = attributes.get("messaging.operation.type") or attributes.get("messaging.operation")
    if not isinstance(operation, str) or not (
        attributes.get("messaging.system") or attributes.get("messaging.destination.name")
    ):
        return ""
    operation = operation.lower()
    return operation if operation in PRODUCER_STAGES or operation in CONSUMER_OPERATIONS else ""


def _message_fields(span: WireSpan) -> dict[str, Any]:
    attributes = span.attributes
    return {
        "channel": _text(attributes.get("messaging.destination.name"), 200) or None,
        "correlation_id": _text(attributes.get("messaging.message.conversation_id")) or None,
        "content_size": as_count(attributes.get("messaging.message.body.size")),
    }


def _messaging_records(index: SpanIndex, i: int, operation: str) -> list[Record]:
    span = index.spans[i]
    own_id = _text(span.attributes.get("messaging.message.id"))
    agent = index.agent_name(i)
    base = f"otlp-msg:{span.digest}"
    if operation in PRODUCER_STAGES:
        message = AgentMessageRecord(
            record_id=f"{base}:{operation}",
            session_id=span.trace_id,
            message_id=own_id or span.span_id,
            stage=PRODUCER_STAGES[operation],
            at=_at(span.start_ns),
            sender=agent or None,
            agent_id=agent,
            trace_id=span.trace_id,
            **_message_fields(span),
        )
        return [message, *_failure(span, message, agent)]
    # A consumer span names its messages by id, or links to the spans that produced them.
    targets = [own_id] if own_id else [index.linked_message_id(link) for link in span.links]
    records: list[Record] = []
    for n, message_id in enumerate(t for t in targets if t):
        records += _consumer_records(span, f"{base}:{n}", message_id, operation, agent)
    return records


def _consumer_records(
    span: WireSpan, base: str, message_id: str, operation: str, agent: str
) -> list[Record]:
    stage = {"receive": "received", "deliver": "delivered", "settle": "processed"}.get(
        operation, "received"
    )
    first = AgentMessageRecord(
        record_id=f"{base}:{stage}",
        session_id=span.trace_id,
        message_id=message_id,
        stage=stage,
        at=_at(span.end_ns if operation == "settle" else span.start_ns),
        receivers=(agent,) if agent else None,
        agent_id=agent,
        trace_id=span.trace_id,
        **_message_fields(span),
    )
    records: list[Record] = [first]
    failed = _failure(span, first, agent)
    if operation == "process" and span.end_ns and not failed:
        records.append(_stage(first, "processed", _at(span.end_ns), f"{base}:processed"))
    return records + failed


def _stage(
    record: AgentMessageRecord, stage: str, at: datetime, record_id: str, *, agent: str = ""
) -> Record:
    return AgentMessageRecord(
        record_id=record_id,
        session_id=record.session_id,
        message_id=record.message_id,
        stage=stage,
        at=at,
        agent_id=agent or record.agent_id,
        trace_id=record.trace_id,
    )


def _failure(span: WireSpan, record: AgentMessageRecord, agent: str) -> list[Record]:
    if span.status_code != STATUS_ERROR:
        return []
    error_type = _text(span.attributes.get("error.type"), 200)
    return [
        AgentMessageRecord(
            record_id=f"{record.record_id}:failed",
            session_id=record.session_id,
            message_id=record.message_id,
            stage="failed",
            at=_at(span.end_ns or span.start_ns),
            error_type=error_type or "Error",
            error_message=span.status_message or None,
            agent_id=agent,
            trace_id=span.trace_id,
        )
    ]


# --- per-project rules ------------------------------------------------------------------------


def _rule_records(span: WireSpan, rule: MessageRule) -> list[Record]:
    attributes = span.attributes
    message_id = (
        _text(attributes.get(rule.message_id_attribute)) if rule.message_id_attribute else ""
    )
    sender = _text(attributes.get(rule.sender_attribute))
    receiver = _text(attributes.get(rule.receiver_attribute))
    content = attributes.get(rule.content_attribute) if rule.content_attribute else None
    sent = AgentMessageRecord(
        record_id=f"otlp-rule:{span.digest}:sent",
        session_id=span.trace_id,
        message_id=message_id or span.span_id,
        stage="sent",
        at=_at(span.start_ns),
        sender=sender,
        receivers=(receiver,),
        channel=_text(attributes.get(rule.channel_attribute), 200)
        if rule.channel_attribute
        else None,
        correlation_id=(
            _text(attributes.get(rule.correlation_attribute))
            if rule.correlation_attribute
            else None
        )
        or None,
        content=None if content is None else str(content),
        content_type=None if content is None else "text/plain",
        content_size=None if content is None else len(str(content).encode()),
        metadata={"mapping_rule": rule.name},
        agent_id=sender,
        trace_id=span.trace_id,
    )
    records: list[Record] = [sent, *_failure(span, sent, receiver)]
    if span.end_ns and span.status_code != STATUS_ERROR:
        record_id = f"otlp-rule:{span.digest}:processed"
        processed = _stage(sent, "processed", _at(span.end_ns), record_id, agent=receiver)
        records.append(processed)
    return records
