"""Celery tasks of ingest: the requeue webhook, retention and erasure, landing pending requests."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import requests
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from analytics import webhooks
from analytics.queries import requeue_webhook_rows
from config.celery import broker
from ingest.landing import land_stale_pending

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10
WEBHOOK_DEADLINE_SECONDS = 15
SIGNATURE_HEADER = "X-Observatory-Signature"
TIMESTAMP_HEADER = "X-Observatory-Timestamp"


def requeue_signature(body: bytes, secret: str, timestamp: int) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>`.
    The timestamp is signed too, so a receiver that refuses old timestamps refuses replays."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def requeue_webhook_bodies(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """One JSON body per (webhook URL, signing secret), from
    analytics.queries.requeue_webhook_rows(). The agent system fetches the content through the
    poll endpoint, so the webhook carries ids only."""
    bodies: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        body = bodies.setdefault(
            (row["url"], row["secret"]),
            {"event": "messages.requeued", "project": row["project_slug"], "messages": []},
        )
        requeued_at = row["requeued_at"]
        body["messages"].append(
            {
                "id": row["pk"],
                "message_id": row["message_id"],
                "session_id": row["session_external_id"],
                "sender": row["sender"],
                "receivers": row["receivers"],
                "channel": row["channel"],
                "requeued_at": requeued_at.isoformat() if requeued_at else None,
            }
        )
    return bodies


@shared_task(
    autoretry_for=(requests.RequestException,),
    retry_backoff=True,
    max_retries=5,
)
def send_requeue_webhook_task(message_pks: list[int]) -> int:
    """POST the requeued messages' ids to each project's webhook, signed with the project's
    secret; returns how many calls."""
    sent = 0
    for (url, secret), payload in requeue_webhook_bodies(requeue_webhook_rows(message_pks)).items():
        body = json.dumps(payload).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "AgentObservatory-Requeue/1",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: requeue_signature(body, secret, timestamp),
        }
        status = webhooks.post(
            url,
            body,
            headers,
            timeout=WEBHOOK_TIMEOUT_SECONDS,
            deadline=WEBHOOK_DEADLINE_SECONDS,
            allow_private=settings.OBSERVATORY_WEBHOOK_ALLOW_PRIVATE,
        )
        if status >= 300:
            # 5xx and 429 are worth retrying; any other answer will not change on a retry.
            if status >= 500 or status == 429:
                raise requests.HTTPError(f"the requeue webhook answered HTTP {status}")
            logger.warning("requeue webhook %s answered HTTP %s; not retried", url, status)
            continue
        sent += 1
    return sent


def enqueue_requeue_webhook(message_pks: Iterable[int]) -> None:
    """Queue the webhook call; a down broker never fails the requeue (the poll still works)."""
    pks = sorted(message_pks)
    if pks:
        broker.send(
            send_requeue_webhook_task,
            (pks,),
            left_to=f"requeue webhook for {len(pks)} messages not sent",
        )


@shared_task
def enforce_retention_task() -> int:
    """Beat: run erasures whose task was lost, then apply every project's retention
    (ingest/deletion.py); returns the rows retention deleted."""
    from ingest.deletion import enforce_retention, run_pending_erasures
    from ingest.models import Project

    run_pending_erasures()
    total = 0
    for project in Project.objects.order_by("pk"):
        result = enforce_retention(project, now=timezone.now())
        if result.total:
            logger.info("retention: project %s lost %s", project.slug, result.deleted)
        total += result.total
    return total


@shared_task
def run_erasure_task(request_pk: int) -> int:
    """An erasure request too big for its web request; returns the sessions deleted."""
    from ingest.deletion import run_erasure

    erasure = run_erasure(request_pk)
    return 0 if erasure is None else erasure.session_count


@shared_task
def land_pending_requests_task() -> int:
    """Beat: land pending requests older than one sweep period that no landing took (a
    process lost between its answer and its landing, or no request after them)."""
    return land_stale_pending(older_than_seconds=settings.OBSERVATORY_LANDING_SWEEP_SECONDS)
