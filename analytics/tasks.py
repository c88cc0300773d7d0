"""Celery tasks: ids in, read (queries), compute (pure), save (store). Nothing else."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

import requests
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from analytics.alerting import evaluate_rules
from analytics.deletion import enforce_retention, run_erasure, run_pending_erasures
from analytics.queries import (
    enabled_alert_rules,
    projects_with_pending_refresh,
    projects_with_stale_test_analysis,
    session_project_starts,
    session_summary_inputs,
    stale_session_pks,
)
from analytics.refresh import (
    detect_session_failures,
    fetch_and_compute_test_analysis,
    refresh_project,
    sessions_due_for_follow_up,
)
from analytics.reporting import make_due_reports
from analytics.requeue_webhook import send_requeue_webhooks
from analytics.search_index import index_sessions
from analytics.store import (
    claim_refresh,
    claim_test_analysis,
    mark_refresh_pending,
    mark_test_analysis_pending,
    save_session_summaries,
    save_test_analysis,
    summary_lock,
)
from analytics.summaries import session_summaries
from config.celery import broker
from ingest.models import Project

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500
MAX_SWEEP_ROUNDS = 20
# Sessions summarised under one summary lock (a lock per session, store.summary_lock).
SUMMARY_CHUNK = 100


@shared_task
def summarize_sessions_task(session_pks: list[int]) -> int:
    """Rebuild the summaries of these sessions and their search entries. Safe to run twice."""
    done = 0
    for chunk in _chunks(session_pks):
        with summary_lock(chunk):
            done += _summarize(chunk)
    return done


@shared_task
def summarize_and_analyze_sessions_task(session_pks: list[int]) -> int:
    """What ingest queues after each batch: the summaries, then the analysis that reads them,
    of the sessions due (a long session waits until it has grown by a quarter, or for the
    sweep: refresh.sessions_due_for_follow_up). One task rather than a chain: a linked task made
    queueing cost four times as much CPU in the ingest request (bench/README.md)."""
    done, due = 0, []
    for chunk in _chunks(session_pks):
        with summary_lock(chunk):
            chunk_due = sessions_due_for_follow_up(chunk)
            done += _summarize(chunk_due) if chunk_due else 0
        due += chunk_due
    if due:
        analyze_sessions_task(due)
    return done


def _summarize(session_pks: list[int]) -> int:
    """Summaries and search entries of these sessions; the caller holds their summary lock. The
    summaries are written last."""
    spans, sessions, agents = session_summary_inputs(session_pks)
    summaries = session_summaries(spans, sessions, agents)
    index_sessions(session_pks)
    return save_session_summaries(summaries)


def _chunks(session_pks: Iterable[int]) -> list[list[int]]:
    pks = sorted(set(session_pks))
    return [pks[start : start + SUMMARY_CHUNK] for start in range(0, len(pks), SUMMARY_CHUNK)]


@shared_task
def sweep_stale_summaries_task() -> int:
    """Beat: catch up on sessions whose summary task never ran (e.g. the broker was down)."""
    done = 0
    for _ in range(MAX_SWEEP_ROUNDS):  # bounded: busy sessions turn stale again as data arrives
        pks = stale_session_pks(limit=SWEEP_BATCH)
        done += summarize_sessions_task(pks) if pks else 0
        if pks:
            analyze_sessions_task(pks)
        if len(pks) < SWEEP_BATCH:
            break
    return done


@shared_task
def analyze_sessions_task(session_pks: list[int]) -> int:
    """After a summary: run the failure detectors on these sessions now, and queue one debounced
    refresh per project (rollups, clusters, anomalies) for whatever arrives within the delay."""
    flags = detect_session_failures(session_pks)
    for project_id in mark_refresh_pending(session_project_starts(session_pks)):
        refresh_project_analytics_task.apply_async(
            (project_id,), countdown=settings.OBSERVATORY_ANALYTICS_DEBOUNCE_SECONDS
        )
    return flags


@shared_task
def refresh_project_analytics_task(project_id: int) -> int:
    """Rebuild a project's derived data from where its pending mark says it changed."""
    since = claim_refresh(project_id)
    if since is None:
        return 0
    result = refresh_project(project_id, since=since, now=timezone.now())
    if result.has_backlog and mark_refresh_pending({project_id: timezone.now()}):
        # Older hours are left to judge: another bounded refresh, once this one has finished.
        refresh_project_analytics_task.apply_async((project_id,), countdown=1)
    return result.rollup_rows


@shared_task
def sweep_pending_refreshes_task() -> int:
    """Beat: refresh projects whose queued refresh never ran (a lost task, a broker outage)."""
    stale = timezone.now() - timedelta(
        seconds=2 * settings.OBSERVATORY_ANALYTICS_DEBOUNCE_SECONDS + 60
    )
    return sum(
        refresh_project_analytics_task(project_id)
        for project_id in projects_with_pending_refresh(scheduled_before=stale)
    )


@shared_task
def evaluate_alerts_task() -> int:
    """Beat: judge every enabled alert rule; returns how many sent a notification."""
    now = timezone.now()
    return len(evaluate_rules(enabled_alert_rules(), now=now))


@shared_task
def make_reports_task() -> int:
    """Beat: make (and email) the daily and weekly reports that are due. Idempotent."""
    return make_due_reports(now=timezone.now())


@shared_task
def refresh_test_analysis_task(project_id: int) -> int:
    """Recompute and store a project's flaky tests, regressions and pass-rate days. Idempotent."""
    claim_test_analysis(project_id)
    now = timezone.now()
    analysis = fetch_and_compute_test_analysis(project_id, now=now)
    return save_test_analysis(project_id, analysis, now=now)


@shared_task
def sweep_test_analysis_task() -> int:
    """Beat: analyse projects never analysed, or whose queued refresh was lost."""
    stale = timezone.now() - timedelta(
        seconds=2 * settings.OBSERVATORY_TEST_ANALYSIS_DEBOUNCE_SECONDS + 60
    )
    return sum(
        refresh_test_analysis_task(project_id)
        for project_id in projects_with_stale_test_analysis(scheduled_before=stale)
    )


@shared_task
def ping() -> str:
    return "pong"


def enqueue_session_summaries(session_pks: Iterable[int]) -> None:
    """Queue a summary rebuild. A down broker never fails or slows ingest (config.celery.broker);
    the beat sweep catches up."""
    pks = sorted(session_pks)
    if pks:
        broker.send(
            summarize_and_analyze_sessions_task,
            (pks,),
            left_to=f"{len(pks)} session summaries left to the sweep",
        )


# Sessions named by this process's requests within this long go to the broker as one task.
SUMMARY_BATCH_SECONDS = 0.5


class SummaryBatcher:
    """Collects session pks and sends them as one summary task from a background thread, at
    most every SUMMARY_BATCH_SECONDS. A task per OTLP request cost a one-span request 2 ms of
    its CPU, about a tenth (bench/README.md); the worker rebuilt the same session again and
    again. Nothing is lost if the process dies before it sends: ingest marks every session it
    touches stale in its own transaction, and the beat sweep rebuilds stale sessions."""

    def __init__(self, send: Callable[[set[int]], None], seconds: float) -> None:
        self.send, self.seconds = send, seconds
        self.lock = threading.Lock()
        self.pending: set[int] = set()
        self.wake = threading.Event()
        self.pid = 0  # the process whose thread sends (a fork starts its own)

    def add(self, session_pks: Iterable[int]) -> None:
        with self.lock:
            if self.pid != os.getpid():
                self.pid, self.pending = os.getpid(), set()
                threading.Thread(target=self.run, name="summary-batcher", daemon=True).start()
            self.pending.update(session_pks)
        self.wake.set()

    def run(self) -> None:
        while True:
            self.wake.wait()
            time.sleep(self.seconds)  # let the next requests' sessions join this task
            self.flush()

    def flush(self) -> None:
        with self.lock:
            pks, self.pending = self.pending, set()
            self.wake.clear()
        if pks:
            self.send(pks)


_summary_batcher = SummaryBatcher(enqueue_session_summaries, SUMMARY_BATCH_SECONDS)
atexit.register(_summary_batcher.flush)


def enqueue_session_summaries_soon(session_pks: Iterable[int]) -> None:
    """enqueue_session_summaries() within SUMMARY_BATCH_SECONDS, together with the sessions
    of this process's other requests in that time (SummaryBatcher)."""
    _summary_batcher.add(session_pks)


def enqueue_test_analysis(project_ids: Iterable[int]) -> None:
    """Queue one debounced test-analysis refresh per project (results arriving within the delay
    ride along). A down broker never fails ingest: the beat sweep catches up."""
    ids = sorted(set(project_ids))
    if not ids or broker.is_down:
        return
    for project_id in mark_test_analysis_pending(ids, now=timezone.now()):
        sent = broker.send(
            refresh_test_analysis_task,
            (project_id,),
            left_to=f"test analysis of {ids} left to the sweep",
            countdown=settings.OBSERVATORY_TEST_ANALYSIS_DEBOUNCE_SECONDS,
        )
        if not sent:
            return


# The requeue webhook, retention and erasure tasks keep the names they were queued under when
# they lived in ingest/tasks.py, so messages queued before an upgrade still find them.
@shared_task(
    name="ingest.tasks.send_requeue_webhook_task",
    autoretry_for=(requests.RequestException,),
    retry_backoff=True,
    max_retries=5,
)
def send_requeue_webhook_task(message_pks: list[int]) -> int:
    """POST the requeued messages' ids to each project's webhook; returns how many calls."""
    return send_requeue_webhooks(message_pks)


def enqueue_requeue_webhook(message_pks: Iterable[int]) -> None:
    """Queue the webhook call; a down broker never fails the requeue (the poll still works)."""
    pks = sorted(message_pks)
    if pks:
        broker.send(
            send_requeue_webhook_task,
            (pks,),
            left_to=f"requeue webhook for {len(pks)} messages not sent",
        )


@shared_task(name="ingest.tasks.enforce_retention_task")
def enforce_retention_task() -> int:
    """Beat: run erasures whose task was lost, then apply every project's retention
    (analytics/deletion.py); returns the rows retention deleted."""
    run_pending_erasures()
    total = 0
    for project in Project.objects.order_by("pk"):
        result = enforce_retention(project, now=timezone.now())
        if result.total:
            logger.info("retention: project %s lost %s", project.slug, result.deleted)
        total += result.total
    return total


@shared_task(name="ingest.tasks.run_erasure_task")
def run_erasure_task(request_pk: int) -> int:
    """An erasure request too big for its web request; returns the sessions deleted."""
    erasure = run_erasure(request_pk)
    return 0 if erasure is None else erasure.session_count
