"""Celery tasks: ids in, read (queries), compute (pure), save (store). Nothing else."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from celery import shared_task

from analytics.queries import session_summary_inputs, stale_session_pks
from analytics.store import save_session_summaries
from analytics.summaries import session_summaries

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500
MAX_SWEEP_ROUNDS = 20
BROKER_RETRY_SECONDS = 30.0


@shared_task
def summarize_sessions_task(session_pks: list[int]) -> int:
    """Rebuild the summaries of these sessions. Safe to run twice."""
    spans, sessions, agents = session_summary_inputs(session_pks)
    return save_session_summaries(session_summaries(spans, sessions, agents))


@shared_task
def sweep_stale_summaries_task() -> int:
    """Beat: catch up on sessions whose summary task never ran (e.g. the broker was down)."""
    done = 0
    for _ in range(MAX_SWEEP_ROUNDS):  # bounded: busy sessions turn stale again as data arrives
        pks = stale_session_pks(limit=SWEEP_BATCH)
        done += summarize_sessions_task(pks) if pks else 0
        if len(pks) < SWEEP_BATCH:
            break
    return done


@shared_task
def ping() -> str:
    return "pong"


_broker_down_until = 0.0


def enqueue_session_summaries(session_pks: Iterable[int]) -> None:
    """Queue a summary rebuild. A down broker never fails or slows ingest: after one failure this
    process stops trying for BROKER_RETRY_SECONDS, and the beat sweep catches up."""
    global _broker_down_until
    pks = sorted(session_pks)
    if not pks or time.monotonic() < _broker_down_until:
        return
    try:
        summarize_sessions_task.apply_async((pks,), retry=False)
    except Exception:
        _broker_down_until = time.monotonic() + BROKER_RETRY_SECONDS
        logger.warning("broker unavailable: %d session summaries left to the sweep", len(pks))
