"""Deferred landing of small OTLP requests: a request of a few records is parsed and answered
as usual, but what it commits before the answer is only its body, as a *pending request*; just
after the answer (Django's request_finished, which gunicorn sends once the response is written)
the process lands its project's pending requests, many requests' records in one store call, so
the per-request cost of the store (a transaction, the claims, a dozen statements) is paid once
per landing instead of once per span. Beat lands whatever a lost process left over."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from ingest.formats.records import BodyError, Record, RecordError
from ingest.models import PendingRequest, Project
from ingest.otlp_parsing import parser_for
from ingest.signals import announce_sessions_stored
from ingest.store import enter_request_key, save_records_or_reject

logger = logging.getLogger(__name__)

# A landing holds its claimed rows this long; a landing lost with its process frees them then.
LEASE_SECONDS = 60
# The beat sweep lands at most this many batches per project per run.
MAX_SWEEP_BATCHES = 50


def is_deferred(project: Project, record_count: int) -> bool:
    """Whether a request of `record_count` parsed records is answered before it is stored. Not
    with redaction on: the pending body would keep agent text unredacted until it lands."""
    limit = settings.OBSERVATORY_DEFER_BELOW_RECORDS
    return record_count < limit and not project.is_redaction_enabled


def defer_request(
    project: Project, *, signal: str, content_type: str, body: bytes, request_key: str
) -> bool:
    """Commit the request as pending, with its ledger key, and note its project for landing
    after the answer. False when the key was in the ledger (a retry: nothing is kept)."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # One statement, one commit: the ledger row, and the pending row only if the key is new.
        with connection.cursor() as cursor:
            cursor.execute(
                "WITH claimed AS (INSERT INTO ingest_receivedrecord (project_id, record_id, "
                "received_at) VALUES (%s, %s, now()) ON CONFLICT (project_id, record_id) "
                "DO NOTHING RETURNING project_id) INSERT INTO ingest_pendingrequest "
                "(project_id, signal, content_type, body, received_at) "
                "SELECT project_id, %s, %s, %s, now() FROM claimed RETURNING id",
                [project.pk, request_key, signal, content_type[:200], body],
            )
            is_new = cursor.fetchone() is not None
    else:
        with transaction.atomic():
            is_new = enter_request_key(project, request_key)
            if is_new:
                PendingRequest.objects.create(
                    project=project,
                    signal=signal,
                    content_type=content_type[:200],
                    body=body,
                    received_at=timezone.now(),
                )
    if is_new:
        _deferred.projects[project.pk] = project
    return is_new


@dataclass(frozen=True)
class Claim:
    pk: int
    signal: str
    content_type: str
    body: bytes


CLAIM_SQL = (
    "UPDATE ingest_pendingrequest SET leased_until = now() + %s * interval '1 second' "
    "WHERE id IN (SELECT id FROM ingest_pendingrequest WHERE project_id = %s "
    "AND (%s::timestamptz IS NULL OR received_at <= %s) "
    "AND (leased_until IS NULL OR leased_until < now()) "
    "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, signal, content_type, body"
)


def claim_pending(
    project: Project, *, limit: int, received_before: datetime | None = None
) -> list[Claim]:
    """Lease up to `limit` of the project's pending requests no landing holds, oldest first
    (only those received before `received_before` if given), committed at once. On PostgreSQL
    concurrent landings skip each other's rows (SKIP LOCKED) instead of waiting; SQLite has one
    writer anyway."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(
                CLAIM_SQL, [LEASE_SECONDS, project.pk, received_before, received_before, limit]
            )
            rows = cursor.fetchall()
        return sorted((Claim(pk, s, c, bytes(b)) for pk, s, c, b in rows), key=lambda c: c.pk)
    now = timezone.now()
    with transaction.atomic():
        free = PendingRequest.objects.filter(
            Q(leased_until__isnull=True) | Q(leased_until__lt=now), project=project
        )
        if received_before is not None:
            free = free.filter(received_at__lte=received_before)
        free = free.order_by("pk")[:limit]
        rows = list(free.values_list("pk", "signal", "content_type", "body"))
        PendingRequest.objects.filter(pk__in=[row[0] for row in rows]).update(
            leased_until=now + timedelta(seconds=LEASE_SECONDS)
        )
    return [Claim(pk, s, c, bytes(b)) for pk, s, c, b in rows]


def land_pending(project: Project, *, received_before: datetime | None = None) -> int:
    """Store up to OBSERVATORY_LANDING_BATCH_REQUESTS of the project's pending requests: each
    signal's records in one save_records_or_reject() call, which deletes the pending rows in its
    transaction; refused records become ingest problems as in the request. Returns how many
    requests were landed. Outages raise (the rows stay, their lease runs out)."""
    claims = claim_pending(
        project,
        limit=settings.OBSERVATORY_LANDING_BATCH_REQUESTS,
        received_before=received_before,
    )
    for signal in sorted({c.signal for c in claims}):
        _land_signal(project, signal, [c for c in claims if c.signal == signal])
    return len(claims)


def _land_signal(project: Project, signal: str, claims: list[Claim]) -> None:
    parse = parser_for(project, signal)
    records: list[tuple[int, Record]] = []
    errors: list[RecordError] = []
    for claim in claims:
        try:
            parsed = parse(claim.body, claim.content_type)
        except BodyError as exc:
            # It parsed in its request; only a change of settings since can get here. Kept as
            # an ingest problem, so the request is not retried forever.
            errors.append(
                RecordError(index=None, field=exc.field, message=exc.message, raw=claim.body)
            )
            continue
        # Batch indexes stay unique in the merged batch; errors keep their own request's index.
        offset = len(records)
        records.extend((offset + index, record) for index, record in parsed.records)
        errors.extend(parsed.errors)
    pks = [c.pk for c in claims]
    saved, _ = save_records_or_reject(
        project,
        records,
        errors,
        source=f"otlp-{signal}",
        # One ledger row per landing: each request entered its own before its answer.
        request_key=f"landing:{pks[0]}:{len(pks)}",
        landed=pks,
    )
    announce_sessions_stored(saved.session_pks, soon=True)


class _Deferred(threading.local):
    """The projects this thread deferred a request of since its last landing."""

    def __init__(self) -> None:
        self.projects: dict[int, Project] = {}


_deferred = _Deferred()


def land_after_response(sender: Any = None, **kwargs: Any) -> None:
    """request_finished receiver: land what this thread's requests deferred. Never raises: the
    answer is already sent, and what is not landed now the sweep lands."""
    projects, _deferred.projects = _deferred.projects, {}
    for project in projects.values():
        try:
            land_backlog(project)
        except Exception:
            logger.exception("ingest: landing pending requests of project %s failed", project.pk)


# pg_try_advisory_lock(LANDING_LOCK, project pk): the one process landing a project's backlog.
LANDING_LOCK = 0x4C414E44  # "LAND"
# A lander in a request's request_finished stops after this many batches (a sync worker must get
# back to its requests, and gunicorn kills a worker silent for its timeout); what is left it
# hands to a thread of its process, which lands without this bound.
MAX_LANDING_BATCHES = 20


def land_backlog(project: Project, *, max_batches: int | None = MAX_LANDING_BATCHES) -> int:
    """Land the project's pending requests unless another process is landing them right now:
    that one takes these too, with whatever else arrives while it lands. So a busy server lands
    in batches of every request answered during the last landing (per-request landings would
    each find only their own row), and an idle one lands each request as it is answered.

    Why nothing is stranded: a request commits its row before it tries the lock, and a lander
    looks for rows again after it releases the lock; either the request gets the lock, or its
    row was committed before that last look, and the lander lands it, or, when it stopped after
    `max_batches`, a thread of its process does (the requests that met its lock may be the last
    ones the server gets). SQLite (one writer) lands directly."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return land_pending(project)
    landed = 0
    while _try_landing_lock(project):
        try:
            count, is_drained = _land_batches(project, max_batches)
            landed += count
        finally:
            _unlock_landing(project)
        if not _has_free_pending(project):
            break
        if not is_drained:
            _land_in_thread(project)
            break
    return landed


def _land_batches(project: Project, max_batches: int | None) -> tuple[int, bool]:
    """Land batch after batch until none is left or `max_batches` ran: how many requests were
    landed, and whether the last batch found nothing left."""
    landed, batches = 0, 0
    while max_batches is None or batches < max_batches:
        count = land_pending(project)
        if not count:
            return landed, True
        landed += count
        batches += 1
    return landed, False


def _land_in_thread(project: Project) -> None:
    threading.Thread(
        target=_land_backlog_and_close, args=(project,), name="landing", daemon=True
    ).start()


def _land_backlog_and_close(project: Project) -> None:
    try:
        land_backlog(project, max_batches=None)
    except Exception:
        logger.exception("ingest: landing pending requests of project %s failed", project.pk)
    finally:
        # The thread's own connection: nothing else would ever close it.
        connection.close()


def _try_landing_lock(project: Project) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_lock(%s::int4, %s::int4)", [LANDING_LOCK, project.pk]
        )
        return bool(cursor.fetchone()[0])


def _unlock_landing(project: Project) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", [LANDING_LOCK, project.pk])


def _has_free_pending(project: Project) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM ingest_pendingrequest WHERE project_id = %s "
            "AND (leased_until IS NULL OR leased_until < now()))",
            [project.pk],
        )
        return bool(cursor.fetchone()[0])


def land_stale_pending(*, older_than_seconds: float) -> int:
    """Beat: land the pending requests received more than `older_than_seconds` ago that no
    landing holds (their landing was lost, or no request came after them)."""
    received_before = timezone.now() - timedelta(seconds=older_than_seconds)
    project_pks = _projects_with_pending(received_before)
    landed = 0
    for project in Project.objects.filter(pk__in=project_pks):
        for _ in range(MAX_SWEEP_BATCHES):
            count = land_pending(project, received_before=received_before)
            landed += count
            if count < settings.OBSERVATORY_LANDING_BATCH_REQUESTS:
                break
    return landed


def _projects_with_pending(received_before: datetime) -> Iterable[int]:
    return (
        PendingRequest.objects.filter(received_at__lte=received_before)
        .values_list("project_id", flat=True)
        .distinct()
        .order_by()
    )
