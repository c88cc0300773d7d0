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

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ingest.formats.records import AgentMessageRecord, Record, StepRecord, WorkflowRecord
from ingest.formats.semconv import SpanMeaning, bare_agent_type
from ingest.formats.semconv_rules import MessageRule
from ingest.formats.semconv_values import as_count

if TYPE_CHECKING:
    from ingest.formats.otlp_wire import WireLink, WireSpan

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATUS_ERROR = 2
PRODUCER_STAGES = {"create": "created", "publish": "sent", "send": "sent"}
CONSUMER_OPERATIONS = ("receive", "process", "deliver", "settle")
AGENT_NAME_KEYS = ("gen_ai.agent.name", "agent.name")
MAX_ID_CHARS = 128
# AutoGen's runtime names both ends of a delivery on its process spans, by agent type.
SENDER_TYPE_KEY = "sender_agent_type"
RECIPIENT_TYPE_KEY = "recipient_agent_type"
# OpenAI Agents (openinference) records a hand-off as a tool span "handoff to <agent>" whose
# input is the agent handing off and whose output the agent handed to.
HANDOFF_PREFIX = "handoff to "
# The span whose agent, once stored, is the message's sender / receiver (agent_pending).
SENDER_SPAN_KEY = "observatory.sender_span"
RECEIVER_SPAN_KEY = "observatory.receiver_span"
CREWAI_DELEGATION_TOOLS = ("Delegate work to coworker", "Ask question to coworker")


def _at(nanos: int) -> datetime:
    # timedelta(days, seconds, microseconds) positionally: keywords cost a third more.
    return EPOCH + timedelta(0, 0, nanos // 1000)


def _text(value: Any, limit: int = MAX_ID_CHARS) -> str:
    return "" if value is None else str(value)[:limit]


class SpanIndex:
    """Positions of the request's spans, their parents and their agents' names."""

    def __init__(
        self,
        spans: Sequence[WireSpan],
        meanings: Sequence[SpanMeaning],
        agents: Sequence[str],
        position: dict[tuple[str, str], int],
        parents: Sequence[int | None],
    ) -> None:
        self.spans = spans
        self.meanings = meanings
        self.position = position
        self.parents = parents
        self.agents = agents

    def agent_name(self, i: int, *, service_fallback: bool = True) -> str:
        """The span's own gen_ai.agent.name, else its agent ancestor's name, else the service.
        AutoGen's runtime spans: only what the span says (its ancestors are other requests' when
        exported one span at a time, and the result must not depend on that). When the agent
        ancestor may be in another request, see agent_pending."""
        span = self.spans[i]
        for key in AGENT_NAME_KEYS:
            if span.attributes.get(key):
                return _text(span.attributes[key])
        if span.scope_name.startswith("autogen"):
            return bare_agent_type(_text(span.attributes.get(SENDER_TYPE_KEY)))
        agent = self.position.get((span.trace_id, self.agents[i])) if self.agents[i] else None
        if agent is not None:
            return _text(self.meanings[agent].name)
        return _text(span.resource.get("service.name")) if service_fallback else ""

    def agent_pending(self, i: int) -> bool:
        """Span i names no agent and none of its ancestors in this request is one, but its
        ancestry goes on in another request: the store names its agent once that part is
        stored (store.agents._fill_pending_ends), so the result does not depend on the split."""
        if self.spans[i].scope_name.startswith("autogen") or self.agent_name(
            i, service_fallback=False
        ):
            return False
        current, seen, parent = i, 0, self.parents[i]
        while parent is not None and seen <= len(self.spans):
            current, seen, parent = parent, seen + 1, self.parents[parent]
        return bool(self.spans[current].parent_span_id)

    def nearest_agent_name(self, i: int) -> str:
        """The name of the span's nearest agent ancestor in the request, else ""."""
        agent = (
            self.position.get((self.spans[i].trace_id, self.agents[i])) if self.agents[i] else None
        )
        return _text(self.meanings[agent].name) if agent is not None else ""

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
    tree: tuple[dict[tuple[str, str], int], Sequence[int | None]] | None = None,
) -> list[tuple[int, Record]]:
    """Message, workflow and step records for the request's spans (see the module docstring).
    `tree`: each span's position by (trace id, span id) and its parent's position (None: not in
    the request), when the caller has worked them out (otlp.map_spans does)."""
    if tree is None:
        position = {(s.trace_id, s.span_id): i for i, s in enumerate(spans)}
        parents = [
            position.get((s.trace_id, s.parent_span_id)) if s.parent_span_id else None
            for s in spans
        ]
        tree = position, parents
    index = SpanIndex(spans, meanings, agents, tree[0], tree[1])
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
        records += [(span.index, r) for r in _handoff_records(index, i)]
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
            # No service fallback for a step: a service is not an agent, and a step whose
            # agent is in another request gets it from the store (_fill_pending_ends).
            agent_id=index.agent_name(i, service_fallback=False) or None,
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
    """The messaging operation in either generation of the conventions (`messaging.operation`
    and `messaging.destination` are the older keys AutoGen still sends)."""
    operation = attributes.get("messaging.operation.type") or attributes.get("messaging.operation")
    if not isinstance(operation, str) or not (
        attributes.get("messaging.system")
        or attributes.get("messaging.destination.name")
        or attributes.get("messaging.destination")
    ):
        return ""
    operation = operation.lower()
    return operation if operation in PRODUCER_STAGES or operation in CONSUMER_OPERATIONS else ""


def _message_fields(span: WireSpan) -> dict[str, Any]:
    attributes = span.attributes
    return {
        "channel": _text(
            attributes.get("messaging.destination.name") or attributes.get("messaging.destination"),
            200,
        )
        or None,
        "correlation_id": _text(attributes.get("messaging.message.conversation_id")) or None,
        "content_size": as_count(attributes.get("messaging.message.body.size")),
    }


def _messaging_records(index: SpanIndex, i: int, operation: str) -> list[Record]:
    span = index.spans[i]
    own_id = _text(span.attributes.get("messaging.message.id"))
    agent = index.agent_name(i)
    base = f"otlp-msg:{span.digest}"
    pending = index.agent_pending(i)
    if operation in PRODUCER_STAGES:
        message = AgentMessageRecord(
            record_id=f"{base}:{operation}",
            session_id=span.trace_id,
            message_id=own_id or span.span_id,
            stage=PRODUCER_STAGES[operation],
            at=_at(span.start_ns),
            sender=agent or None,
            metadata={SENDER_SPAN_KEY: span.span_id} if pending else None,
            agent_id=agent,
            trace_id=span.trace_id,
            **_message_fields(span),
        )
        return [message, *_failure(span, message, agent)]
    # A consumer span names its messages by id, or links to the spans that produced them.
    targets = [own_id] if own_id else [index.linked_message_id(link) for link in span.links]
    sender = bare_agent_type(_text(span.attributes.get(SENDER_TYPE_KEY)))
    recipient = bare_agent_type(_text(span.attributes.get(RECIPIENT_TYPE_KEY)))
    if recipient:
        # One published message reaches several recipients (a group topic), each with its own
        # process span: one message per recipient, so no delivery overwrites another's receiver.
        agent = recipient
        targets = [f"{t}>{recipient}"[:MAX_ID_CHARS] for t in targets if t]
        pending = False
    records: list[Record] = []
    for n, message_id in enumerate(t for t in targets if t):
        records += _consumer_records(
            span,
            f"{base}:{n}",
            message_id,
            operation,
            agent,
            sender=sender,
            metadata={RECEIVER_SPAN_KEY: span.span_id} if pending else None,
        )
    return records


def _consumer_records(
    span: WireSpan,
    base: str,
    message_id: str,
    operation: str,
    agent: str,
    *,
    sender: str = "",
    metadata: dict[str, Any] | None = None,
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
        sender=sender if sender and sender != "None" else None,
        receivers=(agent,) if agent else None,
        content=span.attributes.get("message") if sender else None,
        metadata=metadata,
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


# --- hand-offs --------------------------------------------------------------------------------


def _handoff_records(index: SpanIndex, i: int) -> list[Record]:
    """A hand-off between agents that one span states (so it never depends on what else came
    in the request):

    - recorded: OpenAI Agents' "handoff to <agent>" tool span (from its input, to its output);
    - recorded: CrewAI's delegation tool spans ("Delegate work to coworker", "Ask question to
      coworker"), to the coworker its input names, from the agent using the tool: named here
      when that agent's span is in the request, else by the store once it is
      (store.agents._fill_pending_ends);
    - inferred: an OpenInference agent span whose graph.node.parent_id names another agent and
      that has no agent.name (CrewAI: the previous task's agent hands its result on). OpenAI
      Agents also set graph.node.parent_id, but record the hand-off itself (above).

    Delegations that only the span tree shows (an agent span under another agent's span) are
    found by the store over the whole stored trace (store.agents._trace_messages).
    """
    span, meaning = index.spans[i], index.meanings[i]
    attributes = span.attributes
    if meaning.kind == "tool" and span.name.startswith(HANDOFF_PREFIX):
        sender = _text(attributes.get("input.value"))
        receiver = _text(attributes.get("output.value")) or span.name[len(HANDOFF_PREFIX) :]
        return _handoff(span, sender, receiver, rule="openai-agents handoff span", inferred=False)
    if meaning.kind == "tool" and attributes.get("tool.name") in CREWAI_DELEGATION_TOOLS:
        coworker = _coworker(attributes.get("input.value"))
        sender = index.nearest_agent_name(i)
        # The tool returns the coworker's answer: its end is the delegated work done.
        return _handoff(
            span,
            sender,
            coworker,
            rule="crewai delegation tool",
            inferred=False,
            need_sender=False,
            done="processed",
        )
    parent = attributes.get("graph.node.parent_id")
    if meaning.detail == "agent" and parent and not attributes.get("agent.name"):
        receiver = meaning.name
        if str(parent) != receiver:
            return _handoff(
                span, _text(parent), receiver, rule="graph.node.parent_id", inferred=True
            )
    return []


def _coworker(raw: Any) -> str:
    """The coworker a CrewAI delegation tool's JSON input names."""
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return ""
    return _text(arguments.get("coworker")) if isinstance(arguments, dict) else ""


def _handoff(
    span: WireSpan,
    sender: str,
    receiver: str,
    *,
    rule: str,
    inferred: bool,
    need_sender: bool = True,
    done: str = "received",
) -> list[Record]:
    if not receiver or (need_sender and not sender):
        return []
    sent = AgentMessageRecord(
        record_id=f"otlp-handoff:{span.digest}:sent",
        session_id=span.trace_id,
        message_id=f"handoff:{span.span_id}",
        stage="sent",
        at=_at(span.start_ns),
        sender=sender or None,
        receivers=(receiver,),
        channel="handoff",
        metadata={"observatory.inferred": inferred, "observatory.rule": rule},
        agent_id=sender,
        trace_id=span.trace_id,
    )
    records: list[Record] = [sent, *_failure(span, sent, receiver)]
    if span.end_ns and span.status_code != STATUS_ERROR:
        record_id = f"otlp-handoff:{span.digest}:processed"
        records.append(_stage(sent, done, _at(span.end_ns), record_id, agent=receiver))
    return records


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
