"""Refresh marks: which projects' analytics (and test analysis) wait for the worker, claimed
once each so two workers never refresh the same project at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from analytics.models import PendingRefresh, TestAnalysisState


def mark_refresh_pending(starts: dict[int, datetime]) -> list[int]:
    """Note that each project's data changed from its datetime on; widen, never narrow, an
    earlier mark. Returns the projects that had no refresh queued and now have (the caller queues
    one for each). Concurrent callers are safe: the flag flips in one UPDATE."""
    scheduled = []
    for project_id, since in starts.items():
        PendingRefresh.objects.get_or_create(project_id=project_id)
        # updated_at is left alone here: it says when a refresh was last queued or claimed, and
        # the beat sweep uses it to find queued refreshes that never ran, even while data flows.
        PendingRefresh.objects.filter(project_id=project_id).update(
            dirty_from=Least(Coalesce(F("dirty_from"), since), since)
        )
        flipped = PendingRefresh.objects.filter(project_id=project_id, is_scheduled=False).update(
            is_scheduled=True, updated_at=timezone.now()
        )
        if flipped:
            scheduled.append(project_id)
    return scheduled


def claim_refresh(project_id: int) -> datetime | None:
    """Take a project's pending mark: return where its changes begin and clear it, so data that
    arrives meanwhile marks (and schedules) a new refresh. None when nothing is pending."""
    with transaction.atomic():
        pending = PendingRefresh.objects.select_for_update().filter(project_id=project_id).first()
        if pending is None:
            return None
        since = pending.dirty_from
        if since is None and pending.unjudged_from is not None:
            since = timezone.now()  # only older hours are left: a refresh judges a chunk
        PendingRefresh.objects.filter(pk=pending.pk).update(
            dirty_from=None, is_scheduled=False, updated_at=timezone.now()
        )
    return since


def remember_unjudged(project_id: int, *, since: datetime, until: datetime) -> None:
    """Note hours [since, until) to judge later (widening what is already noted)."""
    PendingRefresh.objects.get_or_create(project_id=project_id)
    PendingRefresh.objects.filter(project_id=project_id).update(
        unjudged_from=Least(Coalesce(F("unjudged_from"), since), since),
        unjudged_until=Greatest(Coalesce(F("unjudged_until"), until), until),
    )


def claim_unjudged(project_id: int, *, hours: timedelta) -> tuple[datetime, datetime] | None:
    """Take the oldest `hours` of the noted hours to judge now and leave the rest noted; None
    when nothing is noted."""
    with transaction.atomic():
        pending = PendingRefresh.objects.select_for_update().filter(project_id=project_id).first()
        if pending is None or pending.unjudged_from is None or pending.unjudged_until is None:
            return None
        start, end = (
            pending.unjudged_from,
            min(pending.unjudged_until, pending.unjudged_from + hours),
        )
        rest = end < pending.unjudged_until
        PendingRefresh.objects.filter(pk=pending.pk).update(
            unjudged_from=end if rest else None,
            unjudged_until=pending.unjudged_until if rest else None,
        )
    return start, end


def has_unjudged(project_id: int) -> bool:
    return PendingRefresh.objects.filter(
        project_id=project_id, unjudged_from__isnull=False
    ).exists()


def mark_test_analysis_pending(project_ids: Sequence[int], *, now: datetime) -> list[int]:
    """Note that these projects' test results changed. Returns those that had no refresh queued
    and now have one (the caller queues a task for each): a burst of results queues one."""
    scheduled = []
    for project_id in sorted(set(project_ids)):
        TestAnalysisState.objects.get_or_create(project_id=project_id)
        flipped = TestAnalysisState.objects.filter(
            project_id=project_id, is_scheduled=False
        ).update(is_scheduled=True, scheduled_at=now)
        if flipped:
            scheduled.append(project_id)
    return scheduled


def claim_test_analysis(project_id: int) -> None:
    """Clear the queued mark before computing, so results that arrive during the computation
    queue another refresh rather than being missed."""
    TestAnalysisState.objects.filter(project_id=project_id).update(is_scheduled=False)
