"""Reads of anomalies, incidents and the failure detectors' inputs and flags."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from django.db.models import (
    BooleanField,
    Case,
    ExpressionWrapper,
    F,
    Prefetch,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import MD5, Cast, Coalesce

from analytics.anomalies import EDGE_ARROW, MESSAGE_METRICS
from analytics.detectors import (
    DETECTOR_LINE_COLUMNS,
    DETECTOR_MESSAGE_COLUMNS,
    DETECTOR_SPAN_COLUMNS,
    LLM_CALL_COLUMNS,
    answered_sessions,
)
from analytics.incidents import FlagFacts
from analytics.messaging import FAILURE_STATUSES
from analytics.models import Anomaly, Incident, PendingRefresh, SessionFlag
from analytics.queries.frames import json_contains_text, rows_frame
from analytics.queries.scope import ProjectScope, newest_first
from analytics.span_errors import ERROR_SPANS
from ingest.models import Agent, Message, Score, Session, Span, TranscriptLine


def projects_with_pending_refresh(*, scheduled_before: datetime) -> list[int]:
    """Projects with derived data to refresh and no refresh queued since `scheduled_before`."""
    pending = PendingRefresh.objects.filter(
        Q(dirty_from__isnull=False) | Q(unjudged_from__isnull=False)
    ).filter(Q(is_scheduled=False) | Q(updated_at__lt=scheduled_before))
    return list(pending.values_list("project_id", flat=True))


def example_session_pks(
    project_id: int,
    *,
    subject_type: str,
    subject: str,
    metric: str,
    since: datetime,
    until: datetime,
    limit: int = 3,
) -> list[int]:
    """Sessions that show an anomaly best: the slowest, erroring or biggest calls of the subject in
    the window (the costliest sessions for a project-wide cost anomaly; the sessions of the
    failed or dead-lettered messages for a message anomaly). Distinct, worst first."""
    if metric in MESSAGE_METRICS:
        return _message_example_session_pks(
            project_id,
            subject_type=subject_type,
            subject=subject,
            metric=metric,
            since=since,
            until=until,
            limit=limit,
        )
    if metric == "score_mean":
        lowest = Score.objects.filter(
            project_id=project_id,
            name=subject,
            created_at__gte=since,
            created_at__lt=until,
            value__isnull=False,
        ).order_by("value", "pk")
        return list(dict.fromkeys(lowest.values_list("session_id", flat=True)[: limit * 10]))[
            :limit
        ]
    if metric == "cost_per_session":
        sessions = Session.objects.filter(
            project_id=project_id, started_at__gte=since, started_at__lt=until
        ).order_by("-cost", "pk")
        return list(sessions.values_list("pk", flat=True)[:limit])
    spans = Span.objects.filter(project_id=project_id, started_at__gte=since, started_at__lt=until)
    spans = spans.filter(**_subject_filter(subject_type, subject, metric))
    if subject_type == "agent":
        # Flags name an agent by name (agent_names_by_id); its spans carry instance ids.
        ids = Agent.objects.filter(session__project_id=project_id, name=subject)
        spans = spans.filter(
            Q(agent_external_id=subject) | Q(agent_external_id__in=ids.values("external_id"))
        )
    if metric == "error_rate":
        spans = spans.filter(ERROR_SPANS).order_by("-started_at")
    elif metric == "tokens_per_call":
        spans = spans.annotate(
            tokens=Coalesce("prompt_tokens", 0) + Coalesce("completion_tokens", 0)
        ).order_by("-tokens")
    else:
        spans = spans.exclude(duration_ms__isnull=True).order_by("-duration_ms")
    found: list[int] = []
    for session_pk in spans.values_list("session_id", flat=True)[: limit * 20]:
        if session_pk not in found:
            found.append(session_pk)
        if len(found) == limit:
            break
    return found


def _message_example_session_pks(
    project_id: int,
    *,
    subject_type: str,
    subject: str,
    metric: str,
    since: datetime,
    until: datetime,
    limit: int,
) -> list[int]:
    """The sessions of the newest failed messages of an edge, or of the newest dead letters of
    an agent (the project), in the window (see analytics.anomalies.detect_message_anomalies)."""
    messages = Message.objects.filter(project_id=project_id)
    if metric == "message_failure_rate":
        messages = messages.filter(
            started_at__gte=since, started_at__lt=until, status__in=FAILURE_STATUSES
        )
    else:
        messages = messages.filter(dead_lettered_at__gte=since, dead_lettered_at__lt=until)
    if subject_type == "edge":
        sender, _, receiver = subject.partition(EDGE_ARROW)
        messages = messages.filter(sender="" if sender == "?" else sender)
        if receiver != "?":
            messages = messages.filter(json_contains_text("receivers", receiver))
    elif subject_type == "agent":
        messages = messages.filter(sender="" if subject == "?" else subject)
    found: list[int] = []
    for session_pk in messages.order_by("-started_at").values_list("session_id", flat=True)[
        : limit * 20
    ]:
        if session_pk not in found:
            found.append(session_pk)
        if len(found) == limit:
            break
    return found


def _subject_filter(subject_type: str, subject: str, metric: str) -> dict[str, str]:
    """The spans an anomaly's series was computed from (see analytics.anomalies.SERIES)."""
    kinds = {"tool": Span.Kind.TOOL, "model": Span.Kind.LLM}
    where: dict[str, str] = {}
    if subject_type == "agent":
        if metric != "error_rate":
            where["kind"] = Span.Kind.LLM
    elif subject_type == "tool":
        where["name"] = subject
    elif subject_type == "model":
        where["model"] = subject
    if subject_type in kinds:
        where["kind"] = kinds[subject_type]
    return where


def anomalies_for_projects(projects: ProjectScope) -> QuerySet[Anomaly]:
    """Anomaly flags, newest window first."""
    return newest_first(Anomaly, projects, "window_start", project_slug="project__slug")


def incident_flag_facts(project_id: int, *, since: datetime) -> list[FlagFacts]:
    """The flags to regroup after judging the hours from `since`: those ending after it, and
    every other flag of the incidents they belong to (two queries)."""
    recent = Anomaly.objects.filter(project_id=project_id, window_end__gte=since)
    incidents = recent.exclude(incident__isnull=True).values("incident_id")
    rows = Anomaly.objects.filter(
        Q(pk__in=recent.values("pk")) | Q(incident_id__in=incidents), project_id=project_id
    ).values_list(
        "pk",
        "subject_type",
        "subject",
        "metric",
        "window_start",
        "window_end",
        "observed",
        "baseline",
        "score",
        "top_dimension",
        "explanation",
        "example_session_ids",
        "incident_id",
    )
    return [
        FlagFacts(*row[:11], example_session_ids=tuple(row[11] or ()), incident_key=row[12])
        for row in rows
    ]


def incidents_for_projects(projects: ProjectScope) -> QuerySet[Incident]:
    """Incidents, newest first, each with its project's slug and its flags' pks (prefetched:
    one more query a page)."""
    return (
        Incident.objects.filter(project__in=projects)
        .annotate(project_slug=F("project__slug"))
        .prefetch_related(Prefetch("anomalies", queryset=Anomaly.objects.only("pk", "incident")))
        .order_by("-window_start", "-id")
    )


def anomalies_of_incidents(incident_pks: Sequence[int]) -> dict[int, list[Anomaly]]:
    """The flags of these incidents, by incident pk, highest score first; one query."""
    found: dict[int, list[Anomaly]] = {pk: [] for pk in incident_pks}
    for anomaly in Anomaly.objects.filter(incident_id__in=incident_pks).order_by("-score", "pk"):
        found[anomaly.incident_id or 0].append(anomaly)
    return found


def new_incident_explanations(project_id: int, *, since: datetime, metric: str) -> list[str]:
    """Explanations of incidents first found since `since` (with a flag of `metric` unless
    empty): an incident that grows is not new again, so it alerts once."""
    incidents = Incident.objects.filter(project_id=project_id, opened_at__gte=since)
    if metric:
        incidents = incidents.filter(anomalies__metric=metric).distinct()
    return list(incidents.order_by("opened_at", "pk").values_list("explanation", flat=True))


def anomaly_for_projects(projects: ProjectScope, pk: int) -> Anomaly | None:
    return Anomaly.objects.filter(project__in=projects, pk=pk).first()


def detector_inputs(
    session_pks: Sequence[int],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What the failure detectors read for these sessions, in four queries.

    spans: DETECTOR_SPAN_COLUMNS plus `args_hash` and `prompt_hash`, digests of the span's params
    and prompt taken in the database, so the text never leaves it (reading the JSON out to digest
    it in Python was most of the detectors' cost, bench/README.md). transcript:
    DETECTOR_LINE_COLUMNS (no text but a digest). messages: DETECTOR_MESSAGE_COLUMNS. sessions:
    id, project_id, end_state, has_completion (an LLM call answered: a completion, output
    tokens or a "stop" finish reason, read raw from the span's attributes since content-free
    telemetry has no completion).
    """
    span_rows = list(
        Span.objects.filter(session_id__in=session_pks)
        .alias(params_text=Cast("payload__params", TextField()))
        .alias(prompt_text=Cast("payload__prompt", TextField()))
        .annotate(
            args_hash=_digest("params_text", EMPTY_JSON_TEXTS),
            prompt_hash=_digest("prompt_text", EMPTY_JSON_TEXTS),
            has_completion=ExpressionWrapper(
                Q(payload__completion__isnull=False), output_field=BooleanField()
            ),
            finish_reasons=KeyTransform(FINISH_REASONS_ATTRIBUTE, "payload__attributes"),
        )
        .values_list(*DETECTOR_SPAN_COLUMNS, "args_hash", "prompt_hash", *LLM_CALL_COLUMNS[1:])
    )
    width = len(DETECTOR_SPAN_COLUMNS) + 2
    spans = rows_frame(
        (row[:width] for row in span_rows), [*DETECTOR_SPAN_COLUMNS, "args_hash", "prompt_hash"]
    )
    kind = DETECTOR_SPAN_COLUMNS.index("kind")
    calls = ((row[0], *row[width:]) for row in span_rows if row[kind] == Span.Kind.LLM)
    answered = answered_sessions(rows_frame(calls, LLM_CALL_COLUMNS))
    line_rows = TranscriptLine.objects.filter(session_id__in=session_pks).annotate(
        text_hash=_digest("text", ("",))
    )
    lines = rows_frame(
        line_rows.values_list(*DETECTOR_LINE_COLUMNS, "text_hash"),
        [*DETECTOR_LINE_COLUMNS, "text_hash"],
    )
    message_rows = Message.objects.filter(session_id__in=session_pks).values_list(
        *DETECTOR_MESSAGE_COLUMNS
    )
    messages = rows_frame(message_rows, DETECTOR_MESSAGE_COLUMNS)
    session_rows = Session.objects.filter(pk__in=session_pks).values_list(
        "id", "project_id", "end_state"
    )
    sessions = rows_frame(
        ((*row, row[0] in answered) for row in session_rows),
        ["id", "project_id", "end_state", "has_completion"],
    )
    return spans, lines, messages, sessions


# The OpenTelemetry GenAI attribute of a call's finish reasons (a list of strings).
FINISH_REASONS_ATTRIBUTE = "gen_ai.response.finish_reasons"


# The text of JSON values that mean "nothing given" (PostgreSQL's jsonb text, and Django's
# json.dumps on SQLite, write them alike): their digest is "", as for a missing value.
EMPTY_JSON_TEXTS = ('""', "[]", "{}", "null")


def _digest(text: str, empty: Sequence[str]) -> Coalesce:
    """MD5 of the text expression `text` (an alias or column), "" when it is missing or one of
    `empty`. jsonb's text is canonical (keys in one order), so equal JSON values match."""
    return Coalesce(
        Case(
            When(**{f"{text}__in": list(empty)}, then=Value("")),
            default=MD5(text),
            output_field=TextField(),
        ),
        Value(""),
        output_field=TextField(),
    )


def session_flags_for_projects(projects: ProjectScope) -> QuerySet[SessionFlag]:
    """Detector flags, newest first, with the session's client id."""
    return newest_first(
        SessionFlag,
        projects,
        "detected_at",
        session_external_id="session__external_id",
        project_slug="project__slug",
    )


def flags_by_session(session_pks: Sequence[int]) -> dict[int, list[SessionFlag]]:
    """The detector flags of these sessions, for badges; one query."""
    flags: dict[int, list[SessionFlag]] = {}
    for flag in SessionFlag.objects.filter(session_id__in=session_pks).order_by("detector"):
        flags.setdefault(flag.session_id, []).append(flag)
    return flags


def anomaly_counts_by_session(project_id: int, session_pks: Sequence[int]) -> dict[int, int]:
    """How many unresolved anomalies name each of these sessions as an example; one query."""
    counts: dict[int, int] = {}
    wanted = set(session_pks)
    rows = Anomaly.objects.filter(project_id=project_id).exclude(status=Anomaly.Status.RESOLVED)
    for examples in rows.values_list("example_session_ids", flat=True):
        for pk in examples or []:
            if pk in wanted:
                counts[pk] = counts.get(pk, 0) + 1
    return counts


def open_anomalies(project_id: int, *, limit: int) -> list[Anomaly]:
    """The newest open anomalies of a project (the overview's card)."""
    anomalies = Anomaly.objects.filter(project_id=project_id, status=Anomaly.Status.OPEN)
    return list(anomalies.order_by("-window_start", "-id")[:limit])


def anomalies_naming_session(session: Session) -> list[Anomaly]:
    """Unresolved anomalies that give this session as an example (JSON list membership is
    checked in Python: SQLite has no containment lookup, and a project has few anomalies)."""
    anomalies = Anomaly.objects.filter(project_id=session.project_id).exclude(
        status=Anomaly.Status.RESOLVED
    )
    found = anomalies.order_by("-window_start", "-id")
    return [a for a in found if session.pk in (a.example_session_ids or [])]
