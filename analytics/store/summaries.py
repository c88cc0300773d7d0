"""Writes of session summaries: columns that live on ingest.Session but are derived."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

from ingest.models import Session
from ingest.store.bulk import _update_rows

# pg_advisory_lock(SUMMARY_LOCK, session pk % SUMMARY_LOCK_BUCKETS): see summary_lock.
SUMMARY_LOCK = 0x53554D4D  # "SUMM"
# Session ids folded into the lock's int4 key. Each locked session takes a slot of the lock
# table (64 per connection times max_connections by default), so callers lock at most
# tasks.SUMMARY_CHUNK sessions at once.
SUMMARY_LOCK_BUCKETS = 1 << 30


@contextmanager
def summary_lock(session_pks: Iterable[int]) -> Iterator[None]:
    """While no other summary of these sessions runs (PostgreSQL; SQLite has one writer). What
    it guards: a follow-up that leaves a session to the sweep marks it stale again, and a
    summary that read the spans before the batch committed must not clear that mark after it.
    Under the lock, whoever comes later reads after the earlier one committed its writes.

    A lock of the connection, not of a transaction: the writes inside commit as they go, each
    locking its session rows in id order for one statement, as ingest's merges lock them. Held
    across one long transaction, the summaries' rows deadlocked with ingest's (the soak,
    bench/README.md). Keys in sorted order, so two tasks of overlapping sessions never
    deadlock on these. Inside a caller's transaction (tests, a command) the lock is that
    transaction's, so an error that aborts it cannot leave the lock behind."""
    keys = sorted({pk % SUMMARY_LOCK_BUCKETS for pk in session_pks})
    if not keys or connection.vendor != "postgresql":
        yield
        return
    scope = "_xact" if connection.in_atomic_block else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_advisory{scope}_lock(%s::int4, k) "
            "FROM (SELECT unnest(%s::int4[]) AS k ORDER BY 1) s",
            [SUMMARY_LOCK, keys],
        )
    try:
        yield
    finally:
        if not scope:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s::int4, k) FROM unnest(%s::int4[]) AS k",
                    [SUMMARY_LOCK, keys],
                )


def save_session_summaries(updates: dict[int, dict[str, Any]]) -> int:
    """Write recomputed summaries and clear the stale flag, in one executemany UPDATE (the
    store's: bulk_update's CASE per column over every row cost more than computing the
    summaries, bench/followup_bench.py). Sessions deleted meanwhile are skipped. Idempotent."""
    # In id order, as ingest's merges lock session rows.
    sessions = list(Session.objects.filter(pk__in=updates.keys()).order_by("pk").only("pk"))
    columns: set[str] = set()
    for session in sessions:
        for name, value in updates[session.pk].items():
            setattr(session, name, value)
            columns.add(name)
        session.is_summary_stale = False
    _update_rows(sessions, [*sorted(columns), "is_summary_stale"])
    return len(sessions)


def mark_summaries_stale(session_pks: Iterable[int]) -> int:
    """Leave these sessions to the sweep: stale, whatever a summary of them did before. The
    rows are locked in id order, as ingest's merges lock them."""
    pks = sorted(set(session_pks))
    if not pks:
        return 0
    if connection.vendor != "postgresql":
        return Session.objects.filter(pk__in=pks, is_summary_stale=False).update(
            is_summary_stale=True
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH locked AS (SELECT id FROM ingest_session WHERE id = ANY(%s) "
            "AND NOT is_summary_stale ORDER BY id FOR NO KEY UPDATE) "
            "UPDATE ingest_session s SET is_summary_stale = true "
            "FROM locked WHERE s.id = locked.id",
            [pks],
        )
        return cursor.rowcount
