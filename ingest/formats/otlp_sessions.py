"""Which session an OTLP trace belongs to: session records of root spans, trace links (session
attributes, conversation ids, AutoGen teams, span links) and TaskWeaver rounds. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ingest.formats.otlp_values import _at, _digest
from ingest.formats.otlp_wire import (
    _TEAM_UUID,
    AUTOGEN_TEAM_KEYS,
    CONVERSATION_KEY,
    MAX_NAME_CHARS,
    MAX_SESSION_ID_CHARS,
    NO_SESSION_SPAN_TAG,
    STATUS_ERROR,
    TASKWEAVER_ROUND_SPAN,
    WireSpan,
)
from ingest.formats.records import Record, SessionRecord, TraceLinkRecord, TranscriptRecord
from ingest.formats.semconv import SpanMeaning
from ingest.formats.semconv_sessions import parse_tags, session_fields
from ingest.formats.semconv_values import as_count, first_present


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


def _session_attribute(
    maps: Sequence[Mapping[str, Any]], names: tuple[str, ...]
) -> tuple[str, str]:
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
            match = _TEAM_UUID.search(value) if is_team and isinstance(value, str) else None
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
    team run that next uses an agent of that name (store.traces._batch_links and
    _adopt_definitions)."""
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
    not replaced by a span link from a later request (store.traces._batch_links)."""
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
