"""Reads for comparing two sessions (dashboard/views_compare.py, api/views_compare.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models.fields.json import KeyTextTransform

from analytics.queries.frames import json_contains_text, receiver_list, text_digest
from analytics.session_comparison import (
    MessageItem,
    SessionComparison,
    Totals,
    compare_sessions,
    preview_text,
)
from analytics.session_comparison import Step as ComparedStep
from ingest.formats.records import DETAILED_KIND_KEY
from ingest.models import Agent, Message, Session, Span, TestResult

# A prompt or output is shown on the comparison by its first characters.
COMPARISON_PREVIEW_CHARS = 300


def comparison_steps(session: Session, *, limit: int) -> list[ComparedStep]:
    """The session's first `limit` spans in start order as comparison steps, in one query.

    Reads each span's prompt or params and completion or returns to digest and preview them
    (never kept whole), and the detailed kind from its attributes.
    """
    rows = (
        Span.objects.filter(session=session)
        .annotate(detailed_kind=KeyTextTransform(DETAILED_KIND_KEY, "payload__attributes"))
        .order_by("started_at", "id")
        .values_list(
            "pk",
            "kind",
            "detailed_kind",
            "name",
            "model",
            "status",
            "error_type",
            "error_message",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "duration_ms",
            "payload__prompt",
            "payload__params",
            "payload__completion",
            "payload__returns",
        )[:limit]
    )
    return [_compared_step(row) for row in rows]


def _compared_step(row: tuple[Any, ...]) -> ComparedStep:
    pk, kind, detailed, name, model, status, error_type, error_message, *numbers = row
    prompt_tokens, completion_tokens, cost, duration_ms, prompt, params, completion, returns = (
        numbers
    )
    given = prompt if prompt is not None else params
    said = completion if completion is not None else returns
    return ComparedStep(
        pk=pk,
        kind=detailed or kind,
        name=name,
        model=model,
        status=status,
        error=": ".join(part for part in (error_type, error_message) if part),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost,
        duration_ms=duration_ms,
        prompt_digest=text_digest(given),
        output_digest=text_digest(said),
        prompt_preview=preview_text(given, max_chars=COMPARISON_PREVIEW_CHARS),
        output_preview=preview_text(said, max_chars=COMPARISON_PREVIEW_CHARS),
    )


def comparison_messages(session: Session, *, limit: int) -> list[MessageItem]:
    """The session's first `limit` messages in time order, sender and receivers by agent name
    (agent ids are new in every session, names are not); two queries."""
    names = dict(
        Agent.objects.filter(session=session).exclude(name="").values_list("external_id", "name")
    )
    rows = (
        Message.objects.filter(session=session)
        .order_by("started_at", "id")
        .values_list("pk", "sender", "receivers", "channel", "status", "preview")[:limit]
    )
    return [
        MessageItem(
            pk=pk,
            sender=names.get(sender, sender),
            receivers=tuple(names.get(r, r) for r in receiver_list(receivers)),
            channel=channel,
            status=status,
            preview=preview,
        )
        for pk, sender, receivers, channel, status, preview in rows
    ]


def session_comparison(a: Session, b: Session, *, step_limit: int) -> SessionComparison:
    """Sessions A and B compared (analytics/session_comparison.py): their first `step_limit`
    steps and messages each, and their summary totals; six queries."""
    return compare_sessions(
        (comparison_steps(a, limit=step_limit + 1), comparison_steps(b, limit=step_limit + 1)),
        (
            comparison_messages(a, limit=step_limit + 1),
            comparison_messages(b, limit=step_limit + 1),
        ),
        (_session_totals(a), _session_totals(b)),
        step_limit=step_limit,
    )


def _session_totals(session: Session) -> Totals:
    return Totals(
        duration_ms=session.duration_ms,
        tokens=session.prompt_tokens + session.completion_tokens,
        cost=session.cost,
        errors=session.error_count,
        steps=session.event_count,
    )


def sessions_named_like(session: Session, *, limit: int) -> list[Session]:
    """Other sessions of the session's project with its name (newest first): what it is
    usually compared with. None when it has no name."""
    if not session.name:
        return []
    others = Session.objects.filter(project_id=session.project_id, name=session.name)
    return list(others.exclude(pk=session.pk).order_by("-started_at", "-id")[:limit])


def sessions_of_same_test(session: Session, *, limit: int) -> tuple[str, list[dict[str, Any]]]:
    """(test id, other runs) when a test result names this session: the newest `limit` other
    results of that test that name a received session, as dicts of `session`, `outcome`,
    `commit`, `branch` and `run_started_at`. ("", []) when no test produced it; three queries."""
    test_id = (
        TestResult.objects.filter(project_id=session.project_id)
        .filter(json_contains_text("session_ids", session.external_id))
        .values_list("test_id", flat=True)
        .first()
    )
    if test_id is None:
        return "", []
    results = list(
        TestResult.objects.filter(project_id=session.project_id, test_id=test_id)
        .exclude(session_ids=[])
        .order_by("-run__started_at", "-pk")
        .values("session_ids", "outcome", "run__commit", "run__branch", "run__started_at")[
            : limit + 1
        ]
    )
    first_ids = [row["session_ids"][0] for row in results if row["session_ids"]]
    found = Session.objects.filter(project_id=session.project_id, external_id__in=first_ids)
    by_id = {s.external_id: s for s in found.exclude(pk=session.pk)}
    runs = [
        {
            "session": by_id[row["session_ids"][0]],
            "outcome": row["outcome"],
            "commit": row["run__commit"],
            "branch": row["run__branch"],
            "run_started_at": row["run__started_at"],
        }
        for row in results
        if row["session_ids"] and row["session_ids"][0] in by_id
    ]
    return test_id, runs[:limit]


def last_passing_result(result: TestResult) -> TestResult | None:
    """The newest passing result of the same test on the same branch, in a run that started
    before this result's run: the "last pass" a failing result is compared with."""
    earlier = TestResult.objects.filter(
        project_id=result.project_id,
        test_id=result.test_id,
        outcome=TestResult.Outcome.PASS,
        run__branch=result.run.branch,
    ).exclude(pk=result.pk)
    if result.run.started_at is not None:
        earlier = earlier.filter(run__started_at__lt=result.run.started_at)
    return earlier.select_related("run").order_by("-run__started_at", "-pk").first()


def results_with_sessions(result_pks: Sequence[int]) -> set[int]:
    """Which of these test results name at least one agent session; one query."""
    rows = TestResult.objects.filter(pk__in=result_pks).values_list("pk", "session_ids")
    return {pk for pk, session_ids in rows if session_ids}


def sessions_by_pk(pks: Sequence[int]) -> dict[int, Session]:
    """Sessions (id, external id, name) by pk, to show an anomaly's examples; one query."""
    rows = Session.objects.filter(pk__in=pks).only("pk", "external_id", "name", "project_id")
    return {session.pk: session for session in rows}
