"""Analytics' follow-up work on what ingest stored, connected to ingest's signals by
`AnalyticsConfig.ready()`: ingest announces (ingest/signals.py), analytics queues."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from analytics.tasks import (
    enqueue_session_summaries,
    enqueue_session_summaries_soon,
    enqueue_test_analysis,
)
from ingest.signals import sessions_stored, test_results_stored


@receiver(sessions_stored, dispatch_uid="analytics.summarize_stored_sessions")
def summarize_stored_sessions(session_pks: set[int], soon: bool, **_: Any) -> None:
    """Queue the summaries (and through them the search index and detectors) of the sessions."""
    (enqueue_session_summaries_soon if soon else enqueue_session_summaries)(session_pks)


@receiver(test_results_stored, dispatch_uid="analytics.analyze_stored_test_results")
def analyze_stored_test_results(project_ids: list[int], **_: Any) -> None:
    """Queue the debounced test analysis of the projects."""
    enqueue_test_analysis(project_ids)
