"""Writes of session summaries: columns that live on ingest.Session but are derived."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction

from ingest.models import Session
from ingest.store.bulk import _update_rows

# pg_advisory_xact_lock(SUMMARY_LOCK, session pk % SUMMARY_LOCK_BUCKETS): see summary_lock.
SUMMARY_LOCK = 0x53554D4D  # "SUMM"
# Session ids folded into the lock's int4 key. A transaction holds one lock per session, so
# callers lock at most tasks.SUMMARY_CHUNK sessions at once (the lock table holds 64 per
# connection times max_connections by default).
SUMMARY_LOCK_BUCKETS = 1 << 30


@contextmanager
def summary_lock(session_pks: Iterable[int]) -> Iterator[None]:
    """One transaction in which no other summary of these sessions runs (PostgreSQL; SQLite has
    one writer). What it guards: a follow-up that leaves a session to the sweep marks it stale
    again, and a summary that read the spans before the batch committed must not clear that
    mark after it. Under the lock, whoever comes later reads after the earlier one committed.
    Buckets in sorted order, so two tasks of overlapping sessions never deadlock."""
    with transaction.atomic():
        buckets = sorted({pk % SUMMARY_LOCK_BUCKETS for pk in session_pks})
        if buckets and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s::int4, b) "
                    "FROM (SELECT unnest(%s::int4[]) AS b ORDER BY 1) s",
                    [SUMMARY_LOCK, buckets],
                )
        yield


def save_session_summaries(updates: dict[int, dict[str, Any]]) -> int:
    """Write recomputed summaries and clear the stale flag, in one executemany UPDATE (the
    store's: bulk_update's CASE per column over every row cost more than computing the
    summaries, bench/followup_bench.py). Sessions deleted meanwhile are skipped. Idempotent."""
    sessions = list(Session.objects.filter(pk__in=updates.keys()).only("pk"))
    columns: set[str] = set()
    for session in sessions:
        for name, value in updates[session.pk].items():
            setattr(session, name, value)
            columns.add(name)
        session.is_summary_stale = False
    _update_rows(sessions, [*sorted(columns), "is_summary_stale"])
    return len(sessions)


def mark_summaries_stale(session_pks: Iterable[int]) -> int:
    """Leave these sessions to the sweep: stale, whatever a summary of them did before."""
    pks = list(session_pks)
    if not pks:
        return 0
    return Session.objects.filter(pk__in=pks, is_summary_stale=False).update(is_summary_stale=True)
