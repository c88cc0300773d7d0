"""Writes of the hourly and daily rollups (spans, sessions, agent names, message edges)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from django.db import IntegrityError, transaction
from django.db.models import Model

from analytics.models import AgentEdgeRollup, AgentNameRollup, Rollup
from ingest.store.bulk import _create

# Rows per INSERT for every bulk write of the package (rollups, anomalies, test analysis).
BULK_BATCH = 2000
# The stored length of a rollup's agent (an id or a name): longer ones are cut.
AGENT_LENGTH = 128


def _none_if_nan(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _rollup_rows(project_id: int, granularity: str, rollups: pd.DataFrame) -> list[Rollup]:
    return [
        Rollup(
            project_id=project_id,
            granularity=granularity,
            bucket_start=row.bucket.to_pydatetime(),
            agent=row.agent[:AGENT_LENGTH],
            model=row.model[:200],
            tool=row.tool[:300],
            kind=row.kind,
            count=int(row.count),
            error_count=int(row.error_count),
            rate_limit_count=int(row.rate_limit_count),
            timed_count=int(row.timed_count),
            latency_sum_ms=float(row.latency_sum_ms),
            latency_p50_ms=_none_if_nan(row.latency_p50_ms),
            latency_p95_ms=_none_if_nan(row.latency_p95_ms),
            latency_p99_ms=_none_if_nan(row.latency_p99_ms),
            latency_histogram=row.latency_histogram,
            prompt_tokens=int(row.prompt_tokens),
            completion_tokens=int(row.completion_tokens),
            token_call_count=int(row.token_call_count),
            cost=float(row.cost),
            step_count=int(row.step_count),
            message_count=int(row.message_count),
        )
        for row in rollups.itertuples(index=False)
    ]


def _replace_rows(model: type[Model], stale: dict[str, Any], rows: Sequence[Model]) -> int:
    """Delete the rows matching `stale` and insert `rows`, in one transaction. Two refreshes of
    one project racing each other collide on the table's unique constraint; the loser retries
    once (the winner's commit is then what it deletes)."""
    for attempt in range(2):
        try:
            with transaction.atomic():
                model._default_manager.filter(**stale).delete()
                # The store's insert (a binary COPY on PostgreSQL): bulk_create's compile of
                # every value was most of a refresh's CPU (bench/followup_bench.py).
                _create(rows)
            return len(rows)
        except IntegrityError:
            if attempt:
                raise
    return len(rows)


def replace_rollups(
    project_id: int,
    granularity: str,
    *,
    since: datetime,
    until: datetime,
    rollups: pd.DataFrame,
) -> int:
    """Make the stored rollups of buckets in [since, until) exactly `rollups`, in one
    transaction: dimension values that no longer occur disappear. Idempotent. Two refreshes of
    one project racing each other collide on the unique constraint; the loser retries once."""
    rows = _rollup_rows(project_id, granularity, rollups)
    stale: dict[str, Any] = {
        "project_id": project_id,
        "granularity": granularity,
        "bucket_start__gte": since,
        "bucket_start__lt": until,
    }
    return _replace_rows(Rollup, stale, rows)


def replace_agent_name_rollups(
    project_id: int, *, since: datetime, until: datetime, activity: pd.DataFrame
) -> int:
    """Make the stored AgentNameRollup rows of the hours in [since, until) exactly `activity`
    (analytics.agent_names.ACTIVITY_COLUMNS), in one transaction. Idempotent; a racing refresh
    of the same hours collides on the unique constraint and the loser retries once."""
    rows = [
        AgentNameRollup(
            project_id=project_id,
            hour=row.hour.to_pydatetime(),
            name=str(row.name)[:128],
            session_count=int(row.session_count),
            last_seen=None
            if pd.isna(row.last_seen)
            else pd.Timestamp(row.last_seen).to_pydatetime(),
            sent_count=int(row.sent_count),
            failed_count=int(row.failed_count),
        )
        for row in activity.itertuples(index=False)
    ]
    stale = {"project_id": project_id, "hour__gte": since, "hour__lt": until}
    return _replace_rows(AgentNameRollup, stale, rows)


def replace_edge_rollups(
    project_id: int, *, since: datetime, until: datetime, rollups: pd.DataFrame
) -> int:
    """Make the stored agent-edge rollups of the hours in [since, until) exactly `rollups`
    (analytics.messaging.EDGE_ROLLUP_COLUMNS), in one transaction. Idempotent; a racing
    refresh of the same hours collides on the unique constraint and the loser retries once."""
    rows = [
        AgentEdgeRollup(
            project_id=project_id,
            hour=row.hour.to_pydatetime(),
            sender=row.sender[:128],
            receiver=row.receiver[:128],
            message_count=int(row.message_count),
            failed_count=int(row.failed_count),
            dead_lettered_count=int(row.dead_lettered_count),
            delivery_histogram=row.delivery_histogram,
        )
        for row in rollups.itertuples(index=False)
    ]
    stale = {"project_id": project_id, "hour__gte": since, "hour__lt": until}
    return _replace_rows(AgentEdgeRollup, stale, rows)
