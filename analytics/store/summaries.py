"""Writes of session summaries: columns that live on ingest.Session but are derived."""

from __future__ import annotations

from typing import Any

from ingest.models import Session
from ingest.store.bulk import _update_rows


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
