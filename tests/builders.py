"""Keyword-only builders for read-side tests: rows made directly with the ORM.

make_session also creates the session's agents, spans (with payloads), transcript and trace
links, and fills its summary columns from those spans, the way the summary task would.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from django.contrib.auth import get_user_model
from django.utils.text import slugify

from ingest.models import (
    Agent,
    ApiKey,
    IngestRejection,
    Membership,
    Message,
    MessageContent,
    MetricSample,
    Project,
    Session,
    Span,
    SpanPayload,
    Step,
    TestResult,
    TestRun,
    TraceLink,
    TranscriptLine,
    Workflow,
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


# Test runs. A history is one letter per run: P pass, F fail, E error, S skip, X xfail, "." none.
OUTCOME_LETTERS = {"P": "pass", "F": "fail", "E": "error", "S": "skip", "X": "xfail"}


def make_test_history(
    project: Project,
    histories: dict[str, str],
    *,
    commits: Sequence[str] | None = None,
    branch: str = "main",
    tier: str = "unit",
    suite: str = "agents",
    started_at: datetime = T0,
    duration_ms: float = 100.0,
    sessions: dict[str, list[str]] | None = None,
) -> list[TestRun]:
    """Runs an hour apart, one per letter of the histories (all the same length); run j tests
    commit commits[j] (default c0, c1…). Failing results carry an error message and trace;
    `sessions` links session ids to every result of a test."""
    count = len(next(iter(histories.values())))
    runs = TestRun.objects.bulk_create(
        TestRun(
            project=project,
            external_id=f"run-{next(_ids)}",
            tier=tier,
            suite=suite,
            commit=commits[j] if commits else f"c{j}",
            branch=branch,
            started_at=started_at + timedelta(hours=j),
            ended_at=started_at + timedelta(hours=j, minutes=5),
        )
        for j in range(count)
    )
    TestResult.objects.bulk_create(
        TestResult(
            project=project,
            run=run,
            test_id=test_id,
            name=test_id.rsplit("::", 1)[-1],
            outcome=OUTCOME_LETTERS[letter],
            duration_ms=duration_ms,
            error_message="AssertionError: boom" if letter in "FE" else "",
            error_trace="Traceback: boom" if letter in "FE" else "",
            session_ids=(sessions or {}).get(test_id, []),
        )
        for test_id, history in histories.items()
        for run, letter in zip(runs, history, strict=True)
        if letter != "."
    )
    return runs


def result_frame(
    histories: dict[str, str],
    *,
    commits: Sequence[str] | None = None,
    branch: str = "main",
    tier: str = "unit",
    durations: Mapping[str, Sequence[float]] | None = None,
    started_at: datetime = T0,
) -> pd.DataFrame:
    """The same histories as a results frame (analytics.testruns.RESULT_COLUMNS), no database:
    run j has pk j + 1 and starts j hours after `started_at`."""
    rows = [
        {
            "result_pk": 1000 * (j + 1) + i,
            "run_pk": j + 1,
            "run_started_at": started_at + timedelta(hours=j),
            "commit": commits[j] if commits else f"c{j}",
            "branch": branch,
            "suite": "agents",
            "tier": tier,
            "test_id": test_id,
            "name": test_id,
            "outcome": OUTCOME_LETTERS[letter],
            "duration_ms": (durations or {}).get(test_id, [100.0] * len(history))[j],
        }
        for i, (test_id, history) in enumerate(histories.items())
        for j, letter in enumerate(history)
        if letter != "."
    ]
    return pd.DataFrame(rows)


def make_message(
    session: Session,
    *,
    message_id: str | None = None,
    sender: str = "planner",
    receivers: Sequence[str] = ("coder",),
    status: str = Message.Stage.PROCESSED,
    at: datetime = T0,
    delivery_ms: float | None = 250.0,
    content: Any = "do the thing",
    causation_id: str = "",
    correlation_id: str = "",
    channel: str = "",
    error_type: str = "",
) -> Message:
    """A message from `sender` at `at`; failed, dead_lettered and expired ones are open dead
    letters with `error_type` (default "Timeout"); its content goes in MessageContent."""
    is_dead = status in ("failed", "dead_lettered", "expired")
    message = Message.objects.create(
        project=session.project,
        session=session,
        message_id=message_id or f"message-{next(_ids)}",
        sender=sender,
        receivers=list(receivers),
        channel=channel,
        status=status,
        started_at=at,
        sent_at=at,
        delivered_at=at + timedelta(milliseconds=delivery_ms) if delivery_ms else None,
        delivery_ms=delivery_ms,
        preview=str(content)[:200],
        content_type="text/plain",
        content_size=len(str(content)),
        causation_id=causation_id,
        correlation_id=correlation_id,
        attempt_count=1,
        error_type=(error_type or "Timeout") if is_dead else "",
        error_message="no answer" if is_dead else "",
        dead_letter_state=Message.DeadLetterState.OPEN if is_dead else "",
        last_attempt_at=at,
    )
    MessageContent.objects.create(message=message, content=content, metadata={"k": "v"})
    return message


def make_workflow(
    session: Session,
    *,
    name: str = "arena round",
    steps: Sequence[tuple[str, float, float, Sequence[str]]] = (),
    status: str = Workflow.Status.SUCCESS,
    at: datetime = T0,
    agent: str = "planner",
) -> Workflow:
    """A workflow run with steps given as (step_id, start s, end s, depends_on) from `at`."""
    ends = [end for _, _, end, _ in steps] or [0.0]
    workflow = Workflow.objects.create(
        project=session.project,
        session=session,
        workflow_id=f"workflow-{next(_ids)}",
        name=name,
        status=status,
        started_at=at,
        ended_at=at + timedelta(seconds=max(ends)),
        duration_ms=max(ends) * 1000,
    )
    Step.objects.bulk_create(
        Step(
            project=session.project,
            workflow=workflow,
            step_id=step_id,
            name=step_id,
            agent_external_id=agent,
            depends_on=list(depends_on),
            status=Step.Status.OK,
            started_at=at + timedelta(seconds=start),
            ended_at=at + timedelta(seconds=end),
            duration_ms=(end - start) * 1000,
        )
        for step_id, start, end, depends_on in steps
    )
    return workflow


def make_span(
    session: Session,
    *,
    kind: str = Span.Kind.TOOL,
    name: str = "search",
    started_at: datetime | None = None,
    duration_ms: float | None = 100.0,
    status: str = Span.Status.OK,
    agent: str = "agent-1",
    model: str = "",
    parent: str = "",
    error_type: str = "",
    error_message: str = "",
    params: Any = None,
    prompt: Any = None,
    completion: Any = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    cost: float | None = None,
) -> Span:
    """One span (with a payload) added to a session; the summary columns are not updated."""
    start = started_at or session.started_at or T0
    span = Span.objects.create(
        project=session.project,
        session=session,
        span_id=f"extra-{next(_ids)}",
        parent_span_id=parent,
        kind=kind,
        name=name,
        agent_external_id=agent,
        started_at=start,
        ended_at=start + timedelta(milliseconds=duration_ms or 0),
        duration_ms=duration_ms,
        status=status,
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost,
        error_type=error_type,
        error_message=error_message,
    )
    SpanPayload.objects.create(span=span, params=params, prompt=prompt, completion=completion)
    return span


def make_anomaly(
    project: Project,
    *,
    explanation: str = "p95 latency of tool search was 4.1 s, 3.8x its 7-day baseline of 1.1 s",
    subject_type: str = "tool",
    subject: str = "search",
    metric: str = "latency_p95",
    window_start: datetime = T0,
    status: str = "open",
    example_session_ids: Sequence[int] = (),
) -> Any:
    """A stored anomaly flag (analytics.models.Anomaly)."""
    from analytics.models import Anomaly

    return Anomaly.objects.create(
        project=project,
        subject_type=subject_type,
        subject=subject,
        metric=metric,
        window_start=window_start,
        window_end=window_start + timedelta(hours=1),
        observed=4100.0,
        baseline=1080.0,
        score=7.5,
        sample_count=40,
        top_dimension="model=gpt-4o",
        top_share=0.8,
        example_session_ids=list(example_session_ids),
        explanation=explanation,
        status=status,
    )


def make_alert_rule(project: Project, **fields: Any) -> Any:
    """An enabled metric alert rule (analytics.models.AlertRule): error rate > 0.5 over 60 min
    to a webhook, unless `fields` say otherwise."""
    from analytics.models import AlertRule

    values: dict[str, Any] = {
        "name": "Errors",
        "metric": "error_rate",
        "comparator": ">",
        "threshold": 0.5,
        "window_minutes": 60,
        "channel": AlertRule.Channel.WEBHOOK,
        "target": "http://127.0.0.1:9/hook",
        "secret": "s3cret",
    }
    return AlertRule.objects.create(project=project, **(values | fields))


def make_compared_pair(
    project: Project, *, name: str = "arena round", judge_prompt: Any = "Did anyone breach?"
) -> tuple[Session, Session]:
    """Two sessions of one name, A an hour before B: plan (LLM), search, judge (LLM), answer.
    B's first search times out and is retried, and B's judge runs on another model and answers
    otherwise. Summary columns are filled from the spans."""
    sessions = []
    for offset, is_b in ((0, False), (1, True)):
        start = T0 + timedelta(hours=offset)
        session = make_session(project, name=name, started_at=start, spans=0)
        steps: list[dict[str, Any]] = [
            {"kind": Span.Kind.LLM, "name": "plan", "model": "gpt-4o", "prompt": "Plan it"},
            {"kind": Span.Kind.TOOL, "name": "search", "params": {"q": "arena"}},
            {"kind": Span.Kind.LLM, "name": "judge", "model": "gpt-4o", "prompt": judge_prompt},
            {"kind": Span.Kind.LLM, "name": "answer", "model": "gpt-4o", "prompt": "Answer"},
        ]
        steps[2]["completion"] = "No breach" if is_b else "attacker-injection breached"
        if is_b:
            steps[2]["model"] = "gpt-4o-mini"
            timeout = {
                "kind": Span.Kind.TOOL,
                "name": "search",
                "params": {"q": "arena"},
                "status": Span.Status.ERROR,
                "error_type": "TimeoutError",
                "error_message": "search timed out after 30 s",
            }
            steps.insert(1, timeout)
        spans = [
            make_span(session, started_at=start + timedelta(seconds=i), prompt_tokens=100, **step)
            for i, step in enumerate(steps)
        ]
        _fill_summary(session, spans, ["planner"])
        sessions.append(session)
    return sessions[0], sessions[1]


def attrs(values: dict[str, Any]) -> dict[str, Any]:
    """Dotted attribute keys for **: typed Any so mypy does not match them against the named
    parameters of the span builder."""
    return values
