"""Writes of the stored test analysis (flaky tests, regressions, trends and coverage)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from django.db import transaction
from django.db.models import Q

from analytics.flakiness import FLAKY_COLUMNS
from analytics.models import (
    StoredDurationRegression,
    StoredFlakyTest,
    StoredTestRegression,
    TestAnalysisState,
    TestCoverageItem,
    TestDurationDay,
    TestPassRateDay,
    TestTierReliability,
)
from analytics.regressions import DURATION_COLUMNS, REGRESSION_COLUMNS
from analytics.store.rollups import BULK_BATCH
from analytics.testanalysis import (
    DURATION_DAY_COLUMNS,
    PASS_RATE_DAY_COLUMNS,
    RANGE_COVERAGE_COLUMNS,
    TIER_RELIABILITY_COLUMNS,
    TestAnalysis,
)


def _model_rows(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Frame rows as model field values: NaN and NaT become None, timestamps datetimes."""
    rows = []
    for record in frame.reindex(columns=list(columns)).to_dict("records"):
        row = {}
        for name, value in record.items():
            if isinstance(value, pd.Timestamp):
                value = None if pd.isna(value) else value.to_pydatetime()
            elif value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
                value = None
            elif hasattr(value, "item"):  # numpy scalars
                value = value.item()
            row[name] = "" if value is None and name in _TEXT_FIELDS else value
        rows.append(row)
    return rows


_TEXT_FIELDS = {
    "name",
    "kind",
    "tier",
    "suite",
    "branch",
    "last_outcome",
    "first_failing_commit",
    "last_passing_commit",
    "slower_since_commit",
}


def _upsert_window(
    model: Any,
    project_id: int,
    window_runs: int,
    frame: pd.DataFrame,
    *,
    columns: Sequence[str],
    key: Sequence[str],
) -> int:
    """Upsert these rows by (project, window_runs, *key) and delete the window's rows the frame
    no longer has: afterwards the window holds exactly the frame. Idempotent."""
    fields = [c for c in columns if c not in key]
    objects = [
        model(project_id=project_id, window_runs=window_runs, **row)
        for row in _model_rows(frame, columns)
    ]
    model.objects.bulk_create(
        objects,
        batch_size=BULK_BATCH,
        update_conflicts=True,
        unique_fields=["project", "window_runs", *key],
        update_fields=fields,
    )
    # bulk_create sets the pks of inserted and updated rows (PostgreSQL and SQLite RETURNING).
    kept = [obj.pk for obj in objects]
    model.objects.filter(project_id=project_id, window_runs=window_runs).exclude(
        pk__in=kept
    ).delete()
    return len(objects)


def save_test_analysis(project_id: int, analysis: TestAnalysis, *, now: datetime) -> int:
    """Store a project's computed test analysis, every window and day in one transaction, and
    mark it computed at `now`. Idempotent: rows are upserted by their keys and the rows a
    recompute no longer finds are deleted. Returns the rows stored."""
    stored = 0
    with transaction.atomic():
        for window_runs, window in analysis.windows.items():
            stored += _upsert_window(
                StoredFlakyTest,
                project_id,
                window_runs,
                window.flaky,
                columns=FLAKY_COLUMNS,
                key=["test_id"],
            )
            stored += _upsert_window(
                StoredTestRegression,
                project_id,
                window_runs,
                window.regressions,
                columns=REGRESSION_COLUMNS,
                key=["branch", "test_id"],
            )
            stored += _upsert_window(
                StoredDurationRegression,
                project_id,
                window_runs,
                window.slower,
                columns=DURATION_COLUMNS,
                key=["test_id"],
            )
        stored += _replace_pass_rate_days(project_id, analysis)
        stored += _replace_trends_and_coverage(project_id, analysis)
        counts = {str(days): count for days, count in analysis.tested_sessions.items()}
        TestAnalysisState.objects.update_or_create(
            project_id=project_id,
            defaults={"computed_at": now, "tested_session_counts": counts},
        )
    return stored


def _upsert_rows(
    model: Any,
    project_id: int,
    frame: pd.DataFrame,
    *,
    columns: Sequence[str],
    key: Sequence[str],
    scope: Q,
) -> int:
    """Upsert the frame's rows by (project, *key) and delete the project's rows within `scope`
    the frame no longer has. Idempotent."""
    objects = [model(project_id=project_id, **row) for row in _model_rows(frame, columns)]
    model.objects.bulk_create(
        objects,
        batch_size=BULK_BATCH,
        update_conflicts=True,
        unique_fields=["project", *key],
        update_fields=[c for c in columns if c not in key],
    )
    model.objects.filter(scope, project_id=project_id).exclude(
        pk__in=[obj.pk for obj in objects]
    ).delete()
    return len(objects)


def _replace_trends_and_coverage(project_id: int, analysis: TestAnalysis) -> int:
    """Duration days from since's day on; tier reliability and coverage of every range (each
    refresh recomputes all the ranges, so rows of a range no longer computed go too)."""
    stored = _upsert_rows(
        TestDurationDay,
        project_id,
        analysis.duration_days,
        columns=DURATION_DAY_COLUMNS,
        key=["day", "tier"],
        scope=Q(day__gte=analysis.since.date()),
    )
    stored += _upsert_rows(
        TestTierReliability,
        project_id,
        analysis.tier_reliability,
        columns=TIER_RELIABILITY_COLUMNS,
        key=["days", "tier"],
        scope=Q(),
    )
    stored += _upsert_rows(
        TestCoverageItem,
        project_id,
        analysis.coverage,
        columns=RANGE_COVERAGE_COLUMNS,
        key=["days", "kind", "name"],
        scope=Q(),
    )
    return stored


def _replace_pass_rate_days(project_id: int, analysis: TestAnalysis) -> int:
    rows = [
        TestPassRateDay(project_id=project_id, **row)
        for row in _model_rows(analysis.pass_rate_days, PASS_RATE_DAY_COLUMNS)
    ]
    TestPassRateDay.objects.bulk_create(
        rows,
        batch_size=BULK_BATCH,
        update_conflicts=True,
        unique_fields=["project", "day", "tier", "suite"],
        update_fields=["passed", "failed", "total", "runs"],
    )
    TestPassRateDay.objects.filter(project_id=project_id, day__gte=analysis.since.date()).exclude(
        pk__in=[row.pk for row in rows]
    ).delete()
    return len(rows)
