"""Reads of the stored test analysis (analytics.tasks.refresh_test_analysis_task)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from django.db.models import Sum

from analytics.coverage import COVERAGE_COLUMNS
from analytics.coverage import KINDS as COVERAGE_KINDS
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
from ingest.models import TestRun


def test_analysis_computed_at(project_id: int) -> datetime | None:
    """When the project's stored test analysis was last computed; None: never."""
    state = TestAnalysisState.objects.filter(project_id=project_id).values_list(
        "computed_at", flat=True
    )
    return next(iter(state), None)


def _stored_frame(
    model: Any, columns: list[str], project_id: int, window_runs: int
) -> pd.DataFrame:
    rows = model.objects.filter(project_id=project_id, window_runs=window_runs).values_list(
        *columns
    )
    return pd.DataFrame.from_records(list(rows), columns=columns)


def stored_flaky_frame(project_id: int, window_runs: int) -> pd.DataFrame:
    """Stored flakiness_scores of the window (FLAKY_COLUMNS), flakiest first."""
    frame = _stored_frame(StoredFlakyTest, FLAKY_COLUMNS, project_id, window_runs)
    frame = frame.sort_values(["flakiness", "test_id"], ascending=[False, True])
    return frame.reset_index(drop=True)


def stored_regression_frame(project_id: int, window_runs: int) -> pd.DataFrame:
    """Stored outcome_regressions of the window (REGRESSION_COLUMNS), newest breakage first."""
    frame = _stored_frame(StoredTestRegression, REGRESSION_COLUMNS, project_id, window_runs)
    frame = frame.sort_values(["first_failing_at", "test_id"], ascending=[False, True])
    return frame.reset_index(drop=True)


def stored_duration_frame(project_id: int, window_runs: int) -> pd.DataFrame:
    """Stored duration_regressions of the window (DURATION_COLUMNS), biggest slowdown first."""
    frame = _stored_frame(StoredDurationRegression, DURATION_COLUMNS, project_id, window_runs)
    frame = frame.sort_values(["ratio", "test_id"], ascending=[False, True])
    return frame.reset_index(drop=True)


def stored_pass_rate_frame(
    project_id: int, *, since: datetime, tier: str = "", suite: str = ""
) -> pd.DataFrame:
    """Stored pass-rate days from since's day on, summed over suites, in pass_rate_trend's
    columns (bucket, tier, passed, failed, total, pass_rate, runs)."""
    days = TestPassRateDay.objects.filter(project_id=project_id, day__gte=since.date())
    if tier:
        days = days.filter(tier=tier)
    if suite:
        days = days.filter(suite=suite)
    rows = (
        days.values("day", "tier")
        .annotate(
            passed_sum=Sum("passed"),
            failed_sum=Sum("failed"),
            total_sum=Sum("total"),
            runs_sum=Sum("runs"),
        )
        .order_by("day", "tier")
    )
    frame = pd.DataFrame.from_records(
        list(rows.values_list("day", "tier", "passed_sum", "failed_sum", "total_sum", "runs_sum")),
        columns=["bucket", "tier", "passed", "failed", "total", "runs"],
    )
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    frame["pass_rate"] = frame["passed"] / frame["total"]
    return frame[["bucket", "tier", "passed", "failed", "total", "pass_rate", "runs"]]


def stored_duration_trend_frame(
    project_id: int, *, since: datetime, tier: str = ""
) -> pd.DataFrame:
    """Stored duration days from since's day on, in duration_trend's columns (bucket, tier,
    run_ms, test_ms, runs), by day then tier."""
    days = TestDurationDay.objects.filter(project_id=project_id, day__gte=since.date())
    if tier:
        days = days.filter(tier=tier)
    columns = ["day", "tier", "run_ms", "test_ms", "runs"]
    frame = pd.DataFrame.from_records(
        list(days.order_by("day", "tier").values_list(*columns)), columns=columns
    )
    frame["day"] = pd.to_datetime(frame["day"], utc=True)
    return frame.rename(columns={"day": "bucket"})


def stored_tier_reliability_frame(project_id: int, days: int, *, tier: str = "") -> pd.DataFrame:
    """Stored tests and mean reliability per tier over the last `days` days, by tier."""
    rows = TestTierReliability.objects.filter(project_id=project_id, days=days)
    if tier:
        rows = rows.filter(tier=tier)
    columns = ["tier", "tests", "reliability"]
    return pd.DataFrame.from_records(
        list(rows.order_by("tier").values_list(*columns)), columns=columns
    )


def stored_coverage_frame(project_id: int, days: int) -> tuple[pd.DataFrame, int]:
    """Stored coverage_table of the last `days` days (COVERAGE_COLUMNS, in its order: uncovered
    first, then by kind, busiest in production first) and the count of test-linked sessions."""
    rows = TestCoverageItem.objects.filter(project_id=project_id, days=days)
    frame = pd.DataFrame.from_records(
        list(rows.values_list(*COVERAGE_COLUMNS)), columns=COVERAGE_COLUMNS
    )
    order = frame["kind"].map({kind: i for i, kind in enumerate(COVERAGE_KINDS)})
    frame = frame.assign(kind_order=order).sort_values(
        ["is_covered", "kind_order", "production_count", "name"],
        ascending=[True, True, False, True],
    )
    counts = TestAnalysisState.objects.filter(project_id=project_id).values_list(
        "tested_session_counts", flat=True
    )
    count = next(iter(counts), None) or {}
    return frame[COVERAGE_COLUMNS].reset_index(drop=True), int(count.get(str(days), 0))


def projects_with_stale_test_analysis(*, scheduled_before: datetime) -> list[int]:
    """Projects with test runs whose analysis was never computed, or whose queued refresh has
    not run since `scheduled_before` (a lost task, a broker outage)."""
    computed = TestAnalysisState.objects.filter(computed_at__isnull=False).values("project_id")
    never = TestRun.objects.exclude(project_id__in=computed).values_list("project_id", flat=True)
    lost = TestAnalysisState.objects.filter(
        is_scheduled=True, scheduled_at__lt=scheduled_before
    ).values_list("project_id", flat=True)
    return sorted(set(never.distinct()) | set(lost))
