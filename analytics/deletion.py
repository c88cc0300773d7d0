"""Every way telemetry leaves the database: deleting sessions or scores, erasure requests (every
session of an end user id or a tag) and retention (raw telemetry after N days, derived data
after M).

Deletes run in batches of OBSERVATORY_DELETE_BATCH_ROWS rows, each batch its own short
transaction, never one DELETE of everything: a giant DELETE holds its row locks and snapshot for
its whole run, writes all its WAL in one transaction, leaves every dead row to one vacuum, and on
SQLite keeps the single write lock from ingest until it ends. Batches let ingest (and the
analytics refresh) interleave, and a run cut short keeps what it already deleted.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min, Model, Q, QuerySet
from django.utils import timezone

from analytics.models import (
    AgentEdgeRollup,
    AgentNameRollup,
    Anomaly,
    ErrorClusterDay,
    Incident,
    Rollup,
    SearchEntry,
)
from analytics.store import mark_refresh_pending
from config.celery import broker
from ingest import audit
from ingest.landing import land_pending
from ingest.models import (
    AuditEntry,
    ErasureRequest,
    IngestRejection,
    Message,
    MetricSample,
    PendingRequest,
    Project,
    ReceivedRecord,
    Score,
    Session,
    Span,
    TranscriptLine,
)
from ingest.redaction import USER_ID_KEYS

logger = logging.getLogger(__name__)
A = AuditEntry.Action
MAX_RETENTION_DAYS = 36_500
# How long an erasure waits for a landing in flight (normally well under a second).
PENDING_WAIT_SECONDS = 30
# The derived rows that keep example sessions as a plain pk list.
WithExamples = TypeVar("WithExamples", Anomaly, Incident)


def delete_in_batches(queryset: QuerySet[Model], *, batch_rows: int | None = None) -> int:
    """Delete the queryset's rows `batch_rows` at a time, each batch in its own transaction
    (see the module docstring). Related rows go with them as the ORM cascades (a span's
    payload, a message's content and events). Returns how many rows of the model went."""
    size = batch_rows or settings.OBSERVATORY_DELETE_BATCH_ROWS
    model = queryset.model
    total = 0
    while True:
        with transaction.atomic():
            pks = list(queryset.order_by().values_list("pk", flat=True)[:size])
            if not pks:
                return total
            model._default_manager.filter(pk__in=pks).delete()
        total += len(pks)


# --- Sessions ----------------------------------------------------------------------------------

# The session's big tables, emptied batch by batch before the session row itself goes (its
# cascade then has only small tables left: agents, workflows and steps, links, flags).
RAW_BY_SESSION: tuple[type[Model], ...] = (Span, TranscriptLine, Message, MetricSample, SearchEntry)


def delete_sessions(project_id: int, session_pks: Iterable[int]) -> int:
    """Delete these sessions of the project and everything stored under them: spans and their
    payloads, transcript lines, messages (dead letters too) with their contents and events,
    metric samples, agents, workflows and steps, trace links, flags and search entries. The
    days they were in are marked for an analytics refresh, so rollups, clusters and anomalies
    are rebuilt without them (days before the raw retention cutoff keep their rollups: see
    analytics.refresh). Idempotent: a session already gone is skipped. Returns the count."""
    sessions = Session.objects.filter(project_id=project_id, pk__in=list(session_pks))
    pks = list(sessions.values_list("pk", flat=True))
    if not pks:
        return 0
    first = sessions.aggregate(first=Min("started_at"))["first"]
    for start in range(0, len(pks), 100):
        chunk = pks[start : start + 100]
        for model in RAW_BY_SESSION:
            delete_in_batches(model._default_manager.filter(session_id__in=chunk))
        delete_in_batches(Session.objects.filter(pk__in=chunk))
    _forget_examples(project_id, set(pks))
    if first is not None:
        for scheduled in mark_refresh_pending({project_id: first}):
            _queue_refresh(scheduled)
    return len(pks)


def _forget_examples(project_id: int, gone: set[int]) -> None:
    """Drop deleted sessions from the example lists of anomaly flags and incidents (plain pk
    lists, no foreign key): a flag of a day before the raw cutoff is never re-judged, and must
    not link to a session that is gone."""
    _forget_examples_in(Anomaly, project_id, gone)
    _forget_examples_in(Incident, project_id, gone)


def _forget_examples_in(model: type[WithExamples], project_id: int, gone: set[int]) -> None:
    rows = model.objects.filter(project_id=project_id).exclude(example_session_ids=[])
    changed = []
    for row in rows.only("pk", "example_session_ids"):
        if gone.intersection(row.example_session_ids):
            row.example_session_ids = [pk for pk in row.example_session_ids if pk not in gone]
            changed.append(row)
    model.objects.bulk_update(changed, ["example_session_ids"], batch_size=500)


def _queue_refresh(project_id: int) -> None:
    """Queue the project's analytics refresh; if the broker is down the beat sweep runs it."""
    from analytics.tasks import refresh_project_analytics_task  # tasks import this module

    broker.send(
        refresh_project_analytics_task,
        (project_id,),
        left_to=f"the refresh of project {project_id} after a deletion, to the beat sweep",
        countdown=settings.OBSERVATORY_ANALYTICS_DEBOUNCE_SECONDS,
    )


# --- Erasure -----------------------------------------------------------------------------------


def sessions_to_erase(project_id: int, kind: str, value: str) -> list[int]:
    """The pks of the project's sessions of this end user id (session metadata `user_id`,
    `user.id`, `enduser.id` or `userId`) or carrying this tag (exactly, case included)."""
    sessions = Session.objects.filter(project_id=project_id)
    if kind == ErasureRequest.Kind.USER_ID:
        match = Q()
        for key in USER_ID_KEYS:
            match |= Q(**{f"metadata__{key}": value})
        return list(sessions.filter(match).values_list("pk", flat=True))
    if connection.features.supports_json_field_contains:
        return list(sessions.filter(tags__contains=[value]).values_list("pk", flat=True))
    # SQLite has no JSON containment: narrow by the encoded text, then match exactly.
    rows = sessions.filter(tags__icontains=json.dumps(value)).values_list("pk", "tags")
    return [pk for pk, tags in rows if value in (tags or [])]


def request_erasure(project: Project, kind: str, value: str, *, actor: str) -> ErasureRequest:
    """Record an erasure request (pending) with the count of sessions it will delete."""
    return ErasureRequest.objects.create(
        project=project,
        kind=kind,
        value=value,
        value_digest=ErasureRequest.digest_of(value),
        requested_by=actor,
        session_count=len(sessions_to_erase(project.pk, kind, value)),
    )


def run_erasure(request_pk: int, *, is_audited: bool = True) -> ErasureRequest | None:
    """Delete every session the erasure request names, then mark it done and clear its value
    (only the digest stays). Written to the audit log as done in the background, unless the
    caller writes its own entry (`is_audited=False`, the inline run of start_erasure). Idempotent:
    only the run that marks it done writes; a done request is left as it is. None if it does
    not exist."""
    erasure = ErasureRequest.objects.filter(pk=request_pk).first()
    if erasure is None or erasure.status == ErasureRequest.Status.DONE:
        return erasure
    _land_requests_accepted_before(erasure.project, erasure.requested_at)
    pks = sessions_to_erase(erasure.project_id, erasure.kind, erasure.value)
    deleted = delete_sessions(erasure.project_id, pks)
    with transaction.atomic():
        marked = ErasureRequest.objects.filter(
            pk=erasure.pk, status=ErasureRequest.Status.PENDING
        ).update(
            status=ErasureRequest.Status.DONE,
            session_count=deleted,
            value="",
            finished_at=timezone.now(),
        )
        if marked and is_audited:
            target, changes = _erasure_entry(erasure, deleted)
            audit.record_background(
                erasure.requested_by,
                A.ERASURE_DONE,
                project_id=erasure.project_id,
                target=target,
                changes=changes,
            )
    erasure.refresh_from_db()
    return erasure


def _land_requests_accepted_before(project: Project, requested_at: datetime) -> None:
    """An erasure covers everything accepted before it was asked for, including small requests
    answered but not stored yet (pending, ingest/landing.py): land those first, or they would
    bring the erased sessions back after it. A request another process is landing right now is
    waited for (its commit takes the row away), up to PENDING_WAIT_SECONDS."""
    earlier = PendingRequest.objects.filter(project=project, received_at__lt=requested_at)
    deadline = time.monotonic() + PENDING_WAIT_SECONDS
    while earlier.exists():
        if not land_pending(project, received_before=requested_at):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"erasure in project {project.pk}: pending requests still leased after "
                    f"{PENDING_WAIT_SECONDS} s; the erasure is retried by the beat"
                )
            time.sleep(0.2)


def _erasure_entry(erasure: ErasureRequest, sessions: int) -> tuple[str, audit.Changes]:
    """An erasure's audit target and changes: the value only as its digest."""
    target = (
        f"erasure #{erasure.pk}: sessions of {erasure.get_kind_display()} "
        f"sha256:{erasure.value_digest[:16]}"
    )
    return target, {"sessions": [None, sessions]}


def start_erasure(request: Any, project: Project, kind: str, value: str) -> ErasureRequest:
    """Record an erasure request and write its audit entry. A small one runs now (its entry
    counts the sessions deleted); a big one runs on the worker, which writes a second entry
    when done (a task lost with the broker is picked up by the retention beat)."""
    erasure = request_erasure(project, kind, value, actor=audit.actor_of(request))
    if erasure.session_count <= settings.OBSERVATORY_ERASE_INLINE_SESSIONS:
        erasure = run_erasure(erasure.pk, is_audited=False) or erasure
        target, changes = _erasure_entry(erasure, erasure.session_count)
        with transaction.atomic():
            audit.record(
                request, A.ERASURE_REQUEST, project_id=project.pk, target=target, changes=changes
            )
        return erasure
    target, changes = _erasure_entry(erasure, erasure.session_count)
    with transaction.atomic():
        audit.record(
            request, A.ERASURE_REQUEST, project_id=project.pk, target=target, changes=changes
        )
    from analytics.tasks import run_erasure_task  # tasks import this module

    broker.send(run_erasure_task, (erasure.pk,), left_to=f"erasure #{erasure.pk}, to the beat")
    return erasure


def run_pending_erasures(*, older_than: timedelta = timedelta(minutes=10)) -> int:
    """Run erasure requests still pending this long after they were made (their task was lost
    with a broker or a worker). Returns how many were run."""
    cutoff = timezone.now() - older_than
    pending = ErasureRequest.objects.filter(
        status=ErasureRequest.Status.PENDING, requested_at__lt=cutoff
    )
    pks = list(pending.values_list("pk", flat=True))
    for pk in pks:
        run_erasure(pk)
    return len(pks)


def delete_score(request: Any, score: Score) -> bool:
    """Delete one score and write its audit entry (what it said and who gave it), in one
    transaction; then mark its day for an analytics refresh, so score drops and alerts are
    judged again without it. False when it was already gone."""
    where = f"span {score.span_id} of " if score.span_id else ""
    external_id = Session.objects.filter(pk=score.session_id).values_list("external_id", flat=True)
    with transaction.atomic():
        deleted, _ = Score.objects.filter(pk=score.pk).delete()
        if not deleted:
            return False
        audit.record(
            request,
            A.SCORE_DELETE,
            project_id=score.project_id,
            target=f"score {score.name} of {where}session {external_id.first()}",
            changes={
                "value": [score.shown_value, None],
                "comment": [score.comment, None],
                "author": [score.author, None],
            },
        )
    for scheduled in mark_refresh_pending({score.project_id: score.created_at}):
        _queue_refresh(scheduled)
    return True


def delete_session(request: Any, session: Session) -> int:
    """Delete one session (delete_sessions) and write its audit entry, with what it held."""
    started = session.started_at
    deleted = delete_sessions(session.project_id, [session.pk])
    if deleted:
        with transaction.atomic():
            audit.record(
                request,
                A.SESSION_DELETE,
                project_id=session.project_id,
                target=f"session {session.external_id}",
                changes={
                    "spans": [session.event_count, None],
                    "started_at": [started.isoformat() if started else None, None],
                },
            )
    return deleted


def erasures_for_project(project_id: int, *, limit: int = 20) -> QuerySet[ErasureRequest]:
    return ErasureRequest.objects.filter(project_id=project_id).order_by("-requested_at")[:limit]


# --- Retention ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """A project's retention in days (0: forever): raw telemetry and derived data."""

    raw_days: int
    derived_days: int


def retention_of(project: Project) -> Retention:
    """The project's own retention, or the server's defaults where it sets none."""
    raw = project.raw_retention_days
    derived = project.derived_retention_days
    return Retention(
        raw_days=settings.OBSERVATORY_RAW_RETENTION_DAYS if raw is None else raw,
        derived_days=settings.OBSERVATORY_DERIVED_RETENTION_DAYS if derived is None else derived,
    )


def retention_cutoffs(
    retention: Retention, *, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """Pure: (raw cutoff, derived cutoff), the times before which each kind of data goes
    (None: kept forever). The derived cutoff is never later than the raw one: derived data
    outlives what it was derived from."""
    raw = now - timedelta(days=retention.raw_days) if retention.raw_days else None
    derived = now - timedelta(days=retention.derived_days) if retention.derived_days else None
    if raw is not None and derived is not None and derived > raw:
        derived = raw
    return raw, derived


def retention_error(raw_days: int, derived_days: int) -> str:
    """Pure: why this retention (in days, 0: forever) is refused ("" when it is fine)."""
    for name, days in (("raw_retention_days", raw_days), ("derived_retention_days", derived_days)):
        if not 0 <= days <= MAX_RETENTION_DAYS:
            return f"{name}: give 0 (forever) to {MAX_RETENTION_DAYS} days, not {days}."
    if derived_days and (raw_days == 0 or derived_days < raw_days):
        return (
            f"derived_retention_days ({derived_days}) must be 0 (forever) or at least "
            f"raw_retention_days ({raw_days or 'forever'}): summaries and rollups outlive the "
            "raw data they come from."
        )
    return ""


@dataclass
class RetentionResult:
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def enforce_retention(project: Project, *, now: datetime) -> RetentionResult:
    """Delete the project's raw telemetry older than its raw retention and its derived data
    older than its derived retention, in batches. Sessions stay (with their summaries) until
    the derived cutoff; rollups of the removed raw days stay too and are no longer rebuilt
    (Project.raw_removed_before). Safe to run again at any time."""
    raw_cutoff, derived_cutoff = retention_cutoffs(retention_of(project), now=now)
    result = RetentionResult()
    if raw_cutoff is not None:
        # Only ever later: data removed under a shorter retention stays removed when the
        # retention grows, and the refresh must keep skipping those days.
        if project.raw_removed_before is None or project.raw_removed_before < raw_cutoff:
            Project.objects.filter(pk=project.pk).update(raw_removed_before=raw_cutoff)
            project.raw_removed_before = raw_cutoff
        for name, queryset in _raw_older_than(project.pk, raw_cutoff).items():
            result.deleted[name] = delete_in_batches(queryset)
    if derived_cutoff is not None:
        old = Session.objects.filter(project_id=project.pk).filter(
            Q(started_at__lt=derived_cutoff)
            | Q(started_at__isnull=True, updated_at__lt=derived_cutoff)
        )
        result.deleted["sessions"] = _delete_old_sessions(project.pk, old)
        for name, queryset in _derived_older_than(project.pk, derived_cutoff).items():
            result.deleted[name] = delete_in_batches(queryset)
    return result


def _raw_older_than(project_id: int, cutoff: datetime) -> dict[str, QuerySet[Model]]:
    return {
        "spans": Span.objects.filter(project_id=project_id, started_at__lt=cutoff),
        "transcript lines": TranscriptLine.objects.filter(project_id=project_id, at__lt=cutoff),
        "messages": Message.objects.filter(project_id=project_id, started_at__lt=cutoff),
        "metric samples": MetricSample.objects.filter(project_id=project_id, at__lt=cutoff),
        "search entries": SearchEntry.objects.filter(project_id=project_id, at__lt=cutoff),
        "ledger ids": ReceivedRecord.objects.filter(project_id=project_id, received_at__lt=cutoff),
        "ingest problems": IngestRejection.objects.filter(
            project_id=project_id, received_at__lt=cutoff
        ),
    }


def _derived_older_than(project_id: int, cutoff: datetime) -> dict[str, QuerySet[Model]]:
    return {
        "rollups": Rollup.objects.filter(project_id=project_id, bucket_start__lt=cutoff),
        "edge rollups": AgentEdgeRollup.objects.filter(project_id=project_id, hour__lt=cutoff),
        "agent-name rollups": AgentNameRollup.objects.filter(
            project_id=project_id, hour__lt=cutoff
        ),
        "error cluster days": ErrorClusterDay.objects.filter(
            project_id=project_id, day__lt=cutoff.date()
        ),
        "anomalies": Anomaly.objects.filter(project_id=project_id, window_end__lt=cutoff),
        "incidents": Incident.objects.filter(project_id=project_id, window_end__lt=cutoff),
    }


def _delete_old_sessions(project_id: int, old: QuerySet[Session]) -> int:
    """Old sessions in chunks, without the analytics refresh delete_sessions asks for: their
    days are past the raw cutoff, and their rollups go by their own cutoff."""
    total = 0
    while True:
        pks = list(old.order_by().values_list("pk", flat=True)[:100])
        if not pks:
            return total
        for model in RAW_BY_SESSION:
            delete_in_batches(model._default_manager.filter(session_id__in=pks))
        total += delete_in_batches(Session.objects.filter(pk__in=pks))
