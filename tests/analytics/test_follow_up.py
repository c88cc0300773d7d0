"""The follow-up after a batch on PostgreSQL: a long session is summarised again once it has
grown enough, else left stale to the sweep; summaries of one session never overlap."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from analytics.models import SearchEntry
from analytics.store import summary_lock
from analytics.tasks import (
    summarize_and_analyze_sessions_task,
    summarize_sessions_task,
    sweep_stale_summaries_task,
)
from ingest.models import Project, Session

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite follows up every session every time"
)


def post_spans(client: Client, key: str, session_id: str, first: int, count: int) -> None:
    records = [
        {
            "type": "event",
            "id": f"{session_id}-e{n}",
            "session_id": session_id,
            "kind": "tool",
            "name": "search",
            "params": {"query": f"refund word{n}"},
            "started_at": f"2026-11-21T10:{n // 60:02d}:{n % 60:02d}Z",
            "ended_at": f"2026-11-21T10:{n // 60:02d}:{n % 60:02d}.5Z",
        }
        for n in range(first, first + count)
    ]
    answer = client.post(
        "/api/v1/ingest",
        data=json.dumps({"records": records}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.content


def follow_up(session: Session) -> Session:
    summarize_and_analyze_sessions_task([session.pk])
    session.refresh_from_db()
    return session


@pytest.mark.django_db
def test_a_long_session_waits_for_a_quarter_more_spans_or_the_sweep(
    client: Client, project_with_key: tuple[Project, str], settings: Any
) -> None:
    settings.OBSERVATORY_SUMMARY_EVERY_BATCH_BELOW_SPANS = 10
    settings.OBSERVATORY_SUMMARY_GROWTH_PERCENT = 50
    _, key = project_with_key
    post_spans(client, key, "long", 0, 12)
    session = follow_up(Session.objects.get())
    assert (session.event_count, session.is_summary_stale) == (12, False)

    post_spans(client, key, "long", 12, 3)  # a quarter more: under the 50 % asked for
    session = follow_up(session)
    assert (session.event_count, session.is_summary_stale) == (12, True)
    assert SearchEntry.objects.filter(session_id=session.pk).count() == 12  # not indexed yet either

    sweep_stale_summaries_task()
    session.refresh_from_db()
    assert (session.event_count, session.is_summary_stale) == (15, False)
    assert SearchEntry.objects.filter(session_id=session.pk).count() == 15

    post_spans(client, key, "long", 15, 8)  # more than half as many again: at once
    session = follow_up(session)
    assert (session.event_count, session.is_summary_stale) == (23, False)


@pytest.mark.django_db
def test_a_follow_up_with_nothing_new_leaves_the_session_to_the_sweep(
    client: Client, project_with_key: tuple[Project, str], settings: Any
) -> None:
    """The batch that queued it may have changed spans without adding any, after a summary
    that read them before it committed: only the sweep's summary is sure to see that."""
    settings.OBSERVATORY_SUMMARY_EVERY_BATCH_BELOW_SPANS = 10
    _, key = project_with_key
    post_spans(client, key, "long", 0, 12)
    session = follow_up(Session.objects.get())
    assert not session.is_summary_stale

    session = follow_up(session)

    assert session.is_summary_stale
    sweep_stale_summaries_task()
    session.refresh_from_db()
    assert (session.event_count, session.is_summary_stale) == (12, False)


@pytest.mark.django_db(transaction=True)
def test_a_summary_of_a_session_waits_for_the_follow_up_holding_it(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    post_spans(client, key, "held", 0, 3)
    session = Session.objects.get()
    events: list[str] = []

    def summarize() -> None:
        try:
            summarize_sessions_task([session.pk])
            events.append("summarized")
        finally:
            connection.close()

    with summary_lock([session.pk]):
        other = threading.Thread(target=summarize)
        other.start()
        assert wait_for_a_waiting_advisory_lock(), "the other summary never waited"
        events.append("released")
    other.join(timeout=60)

    assert events == ["released", "summarized"]
    session.refresh_from_db()
    assert session.event_count == 3


def wait_for_a_waiting_advisory_lock() -> bool:
    """Poll pg_locks until another backend waits for an advisory lock (30 s at most)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.05)
    return False
