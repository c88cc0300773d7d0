"""The requeue webhook: when people requeue dead letters, each project's agent system is told
which messages to fetch again (through the poll endpoint), in one signed POST per webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import requests
from django.conf import settings

from analytics import webhooks
from analytics.queries import requeue_webhook_rows

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


def send_requeue_webhooks(message_pks: list[int]) -> int:
    """POST the requeued messages' ids to each project's webhook, signed with the project's
    secret; returns how many calls. Raises requests.HTTPError on an answer worth retrying."""
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
