"""Celery tasks of ingest: landing pending requests (the retention, erasure and requeue webhook
tasks are analytics': they touch both layers' tables, analytics/tasks.py)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from ingest.landing import land_stale_pending


@shared_task
def land_pending_requests_task() -> int:
    """Beat: land pending requests older than one sweep period that no landing took (a
    process lost between its answer and its landing, or no request after them)."""
    return land_stale_pending(older_than_seconds=settings.OBSERVATORY_LANDING_SWEEP_SECONDS)
