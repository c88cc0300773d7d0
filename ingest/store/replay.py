"""Replaying an ingest problem after a person edited it: parsed and stored like a new batch."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.db import (
    transaction,
)
from django.utils import timezone

from ingest.formats.native import parse_records
from ingest.models import (
    IngestRejection,
)
from ingest.store.batch import save_records


@dataclass(frozen=True)
class ReplayOutcome:
    """What a replay did; the caller queues the follow-ups (summaries, test analysis), as the
    ingest views do, so the store never knows the task queue."""

    ok: bool
    message: str
    session_pks: frozenset[int] = frozenset()
    has_test_results: bool = False


def replay_rejection(
    rejection: IngestRejection, raw_text: str, *, max_string_chars: int | None = None
) -> ReplayOutcome:
    """Parse the (possibly edited) raw record again; on success store it and resolve the rejection.

    On failure the rejection stays open with the new reason, so replaying never loses the record.
    """
    try:
        raw = json.loads(raw_text)
    except json.JSONDecodeError as exc:
        return ReplayOutcome(False, f"Not valid JSON: {exc}")
    limit = max_string_chars or settings.OBSERVATORY_MAX_STRING_CHARS
    parsed = parse_records([raw], max_string_chars=limit)
    if parsed.errors:
        error = parsed.errors[0]
        message = error.message.replace("records[0]", "record")
        IngestRejection.objects.filter(pk=rejection.pk).update(
            raw=raw_text, message=message, field=error.field.replace("records[0]", "record")
        )
        return ReplayOutcome(False, message)
    with transaction.atomic():
        saved = save_records(rejection.project, parsed.records)
        IngestRejection.objects.filter(pk=rejection.pk).update(
            raw=raw_text, is_resolved=True, replayed_at=timezone.now()
        )
    status = saved.statuses.get(0, "accepted")
    return ReplayOutcome(
        True,
        f"Record {status}",
        frozenset(saved.session_pks),
        has_test_results=bool(saved.test_run_pks),
    )
