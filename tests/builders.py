"""Keyword-only builders for read-side tests: rows made directly with the ORM.

make_session also creates the session's agents, spans (with payloads), transcript and trace
links, and fills its summary columns from those spans, the way the summary task would.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.text import slugify

from ingest.models import (
    Agent,
    ApiKey,
    IngestRejection,
    Membership,
    MetricSample,
    Project,
    Session,
    Span,
    SpanPayload,
    TraceLink,
    TranscriptLine,
)

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
PROMPT_TOKENS = 100
COMPLETION_TOKENS = 20
LLM_COST = 0.001
TOOL_THEN_ACTION = (Span.Kind.TOOL, Span.Kind.ACTION)
_ids = itertools.count(1)


def make_user(*, username: str = "alice", password: str = "password", **extra: Any) -> Any:
    """A user who can log in with `password`; `extra` goes to create_user (e.g. is_superuser)."""
    return get_user_model().objects.create_user(username=username, password=password, **extra)


def make_project(
    *, name: str = "Acme", user: Any = None, role: str = Membership.Role.ADMIN
) -> tuple[Project, str]:
    """A project (slug from the name) with one API key; `user` becomes a member. → (project, key)"""
    project = Project.objects.create(name=name, slug=slugify(name))
    if user is not None:
        Membership.objects.create(user=user, project=project, role=role)
    _, raw_key = ApiKey.generate(project)
    return project, raw_key


def make_session(
    project: Project,
    *,
    external_id: str | None = None,
    name: str = "",
    started_at: datetime | None = T0,
    spans: int = 3,
    failed: int = 0,
    llm_spans: int = 1,
    model: str = "gpt-4o",
    tags: Sequence[str] = (),
    agents: Sequence[str] = ("planner",),
    end_state: str = Session.EndState.SUCCESS,
    transcript: Iterable[tuple[str, ...]] = (("user", "hi"),),
    user_query: str = "",
    group_key: str = "",
    parent: str = "",
    metadata: dict[str, Any] | None = None,
    trace_ids: Sequence[str] = (),
) -> Session:
    """A session with `spans` spans: the first `llm_spans` are LLM calls to `model`, the rest
    alternate tool, action…, and the last `failed` have status error. One span a second from
    `started_at`; agents are `agent-1`… named after `agents`; the spans belong to the first.

    `trace_ids` make it a multi-trace session: one TraceLink per id (round_index 0, 1…) and the
    spans split among the traces in order, in equal runs. A transcript line may be
    (role, text, trace_id)."""
    session = Session.objects.create(
        project=project,
        external_id=external_id or f"session-{next(_ids)}",
        name=name,
        started_at=started_at,
        end_state=end_state,
        tags=list(tags),
        metadata=metadata or {},
        user_query=user_query,
        group_key=group_key,
        parent_external_id=parent,
    )
    Agent.objects.bulk_create(
        Agent(
            project=project,
            session=session,
            external_id=f"agent-{i}",
            name=agent_name,
            created_at=started_at,
        )
        for i, agent_name in enumerate(agents, start=1)
    )
    span_rows = _make_spans(session, spans=spans, failed=failed, llm_spans=llm_spans, model=model)
    _make_rounds(session, span_rows, trace_ids)
    _make_transcript(session, transcript)
    _fill_summary(session, span_rows, agents)
    return session


def _make_spans(
    session: Session, *, spans: int, failed: int, llm_spans: int, model: str
) -> list[Span]:
    start = session.started_at or T0
    rows = []
    for i in range(spans):
        kind = Span.Kind.LLM if i < llm_spans else TOOL_THEN_ACTION[(i - llm_spans) % 2]
        is_llm, is_failed = kind == Span.Kind.LLM, i >= spans - failed
        rows.append(
            Span(
                project=session.project,
                session=session,
                span_id=f"span-{i}",
                kind=kind,
                name="openai.chat" if is_llm else f"step-{i}",
                agent_external_id="agent-1",
                started_at=start + timedelta(seconds=i),
                ended_at=start + timedelta(seconds=i, milliseconds=500),
                duration_ms=500.0,
                status=Span.Status.ERROR if is_failed else Span.Status.OK,
                model=model if is_llm else "",
                prompt_tokens=PROMPT_TOKENS if is_llm else None,
                completion_tokens=COMPLETION_TOKENS if is_llm else None,
                cost=LLM_COST if is_llm else None,
                error_type="ValueError" if is_failed else "",
                error_message="it broke" if is_failed else "",
            )
        )
    created = Span.objects.bulk_create(rows)
    SpanPayload.objects.bulk_create(
        SpanPayload(
            span=span,
            params={"query": span.name},
            returns={"ok": span.status == Span.Status.OK},
            prompt=[{"role": "user", "content": "hi"}] if span.kind == Span.Kind.LLM else None,
            completion="hello" if span.kind == Span.Kind.LLM else None,
            stack_trace="Traceback: it broke" if span.error_type else "",
            attributes={"span.index": i},
        )
        for i, span in enumerate(created)
    )
    return created


def _make_rounds(session: Session, spans: list[Span], trace_ids: Sequence[str]) -> None:
    if not trace_ids:
        return
    TraceLink.objects.bulk_create(
        TraceLink(project=session.project, trace_id=trace_id, session=session, round_index=i)
        for i, trace_id in enumerate(trace_ids)
    )
    for i, span in enumerate(spans):
        span.trace_id = trace_ids[i * len(trace_ids) // len(spans)]
    Span.objects.bulk_update(spans, ["trace_id"])


def _make_transcript(session: Session, lines: Iterable[tuple[str, ...]]) -> None:
    start = session.started_at or T0
    TranscriptLine.objects.bulk_create(
        TranscriptLine(
            project=session.project,
            session=session,
            client_id=f"{session.external_id}-line-{i}",
            role=line[0],
            text=line[1],
            trace_id=line[2] if len(line) > 2 else "",
            at=start + timedelta(seconds=i),
        )
        for i, line in enumerate(lines)
    )


def _fill_summary(session: Session, spans: list[Span], agents: Sequence[str]) -> None:
    session.event_count = len(spans)
    session.llm_count = sum(span.kind == Span.Kind.LLM for span in spans)
    session.tool_count = sum(span.kind == Span.Kind.TOOL for span in spans)
    session.error_count = sum(
        span.status == Span.Status.ERROR or span.kind == Span.Kind.ERROR for span in spans
    )
    session.prompt_tokens = sum(span.prompt_tokens or 0 for span in spans)
    session.completion_tokens = sum(span.completion_tokens or 0 for span in spans)
    session.cost = sum(span.cost or 0.0 for span in spans)
    session.has_errors = session.error_count > 0
    session.agent_names = sorted(set(agents))
    session.models_used = sorted({span.model for span in spans if span.model})
    if session.started_at is not None and session.end_state != Session.EndState.RUNNING:
        session.ended_at = session.started_at + timedelta(seconds=len(spans) + 1)
        session.duration_ms = (session.ended_at - session.started_at).total_seconds() * 1000
    session.is_summary_stale = False
    session.save()


def make_metric(
    project: Project,
    *,
    session: Session | None = None,
    name: str = "memory_mb",
    value: float = 1.0,
    at: datetime = T0,
    agent_id: str = "",
    attributes: dict[str, Any] | None = None,
) -> MetricSample:
    return MetricSample.objects.create(
        project=project,
        session=session,
        client_id=f"metric-{next(_ids)}",
        name=name,
        value=value,
        agent_external_id=agent_id,
        attributes=attributes or {},
        at=at,
    )


def make_rejection(
    project: Project,
    *,
    message: str = "records[0].started_at: not a timestamp: 'yesterday'",
    field: str = "records[0].started_at",
    record_type: str = "event",
    raw: str = '{"type": "event", "started_at": "yesterday"}',
) -> IngestRejection:
    return IngestRejection.objects.create(
        project=project,
        message=message,
        field=field,
        record_type=record_type,
        raw=raw,
        fingerprint=IngestRejection.fingerprint_of(message, raw),
    )
