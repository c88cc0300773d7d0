"""The stored test analysis of a project: flakiness, outcome and duration regressions over
windows of its newest runs, pass-rate counts per day, tier and suite, duration trends per day and
tier, tier reliability and agent-behaviour coverage per range of days. Pure: it combines the
functions of analytics.flakiness, analytics.regressions, analytics.testruns and
analytics.coverage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from analytics.coverage import COVERAGE_COLUMNS, coverage_table
from analytics.flakiness import flakiness_scores
from analytics.regressions import duration_regressions, outcome_regressions
from analytics.testruns import decisive, duration_trend

PASS_RATE_DAY_COLUMNS = ["day", "tier", "suite", "passed", "failed", "total", "runs"]
DURATION_DAY_COLUMNS = ["day", "tier", "run_ms", "test_ms", "runs"]
TIER_RELIABILITY_COLUMNS = ["days", "tier", "tests", "reliability"]
RANGE_COVERAGE_COLUMNS = ["days", *COVERAGE_COLUMNS]


@dataclass(frozen=True)
class WindowAnalysis:
    """Over the newest N runs: flakiness_scores (every test), outcome_regressions and
    duration_regressions."""

    flaky: pd.DataFrame
    regressions: pd.DataFrame
    slower: pd.DataFrame


@dataclass(frozen=True)
class RangeUsage:
    """What a range of the last `days` days feeds coverage_table: production and tested usage
    (coverage.USAGE_COLUMNS) and how many test-linked sessions there were."""

    days: int
    production: pd.DataFrame
    tested: pd.DataFrame
    tested_session_count: int


@dataclass(frozen=True)
class TestAnalysis:
    """`windows` maps a window size (runs) to its analysis; `pass_rate_days` and
    `duration_days` cover the runs that started at or after `since`; `tier_reliability`
    (TIER_RELIABILITY_COLUMNS) and `coverage` (RANGE_COVERAGE_COLUMNS) hold one block of rows per
    range of days, and `tested_sessions` maps each range to its count of test-linked sessions."""

    __test__ = False  # pytest: not a test class

    windows: dict[int, WindowAnalysis]
    pass_rate_days: pd.DataFrame
    since: datetime
    duration_days: pd.DataFrame
    tier_reliability: pd.DataFrame
    coverage: pd.DataFrame
    tested_sessions: dict[int, int]


def pass_rate_days(results: pd.DataFrame) -> pd.DataFrame:
    """Decisive results per UTC day of the run's start, tier and suite (PASS_RATE_DAY_COLUMNS):
    passed, failed (fail + error), total and distinct runs. results: testruns.RESULT_COLUMNS."""
    frame = decisive(results)
    if frame.empty:
        return pd.DataFrame(columns=PASS_RATE_DAY_COLUMNS)
    frame = frame.assign(
        day=pd.to_datetime(frame["run_started_at"], utc=True).dt.floor("1D").dt.date,
        passed=~frame["failed"],
        tier=frame["tier"].fillna(""),
        suite=frame["suite"].fillna(""),
    )
    days = (
        frame.groupby(["day", "tier", "suite"])
        .agg(
            passed=("passed", "sum"),
            failed=("failed", "sum"),
            total=("outcome", "size"),
            runs=("run_pk", "nunique"),
        )
        .reset_index()
    )
    return days[PASS_RATE_DAY_COLUMNS]


def duration_days(results: pd.DataFrame) -> pd.DataFrame:
    """testruns.duration_trend per UTC day and tier (DURATION_DAY_COLUMNS), a missing tier as
    "". results: testruns.RESULT_COLUMNS."""
    trend = duration_trend(results.assign(tier=results["tier"].fillna("")), freq="1D")
    trend = trend.assign(day=pd.to_datetime(trend["bucket"], utc=True).dt.date)
    return trend.reindex(columns=DURATION_DAY_COLUMNS).reset_index(drop=True)


def tier_reliability(results: pd.DataFrame, *, days: int) -> pd.DataFrame:
    """Per tier: how many tests, and their mean reliability (flakiness_scores) over `results`
    (TIER_RELIABILITY_COLUMNS, `days` naming the range)."""
    scores = flakiness_scores(results)
    if scores.empty:
        return pd.DataFrame(columns=TIER_RELIABILITY_COLUMNS)
    tiers = (
        scores.assign(tier=scores["tier"].fillna(""))
        .groupby("tier")
        .agg(tests=("test_id", "size"), reliability=("reliability", "mean"))
        .reset_index()
    )
    return tiers.assign(days=days)[TIER_RELIABILITY_COLUMNS]


def range_analyses(
    day_results: pd.DataFrame, usages: Sequence[RangeUsage], *, now: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tier_reliability, coverage) of every range in `usages`: the reliability of the results of
    runs started in the last `days` days before `now`, and the coverage of the range's usage."""
    started = pd.to_datetime(day_results["run_started_at"], utc=True)
    reliability, coverage = [], []
    for usage in usages:
        recent = day_results[started >= pd.Timestamp(now) - pd.Timedelta(days=usage.days)]
        reliability.append(tier_reliability(recent, days=usage.days))
        table = coverage_table(usage.production, usage.tested)
        coverage.append(table.assign(days=usage.days)[RANGE_COVERAGE_COLUMNS])
    return _concat(reliability, TIER_RELIABILITY_COLUMNS), _concat(coverage, RANGE_COVERAGE_COLUMNS)


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def window_analysis(results: pd.DataFrame) -> WindowAnalysis:
    """The analyses of one window's results (testruns.RESULT_COLUMNS)."""
    return WindowAnalysis(
        flaky=flakiness_scores(results),
        regressions=outcome_regressions(results),
        slower=duration_regressions(results),
    )


def project_test_analysis(
    runs: pd.DataFrame,
    results: pd.DataFrame,
    *,
    windows: Sequence[int],
    day_results: pd.DataFrame,
    since: datetime,
    usages: Sequence[RangeUsage] = (),
    now: datetime | None = None,
) -> TestAnalysis:
    """Analyse each window of the newest runs. runs: queries.test_run_frame of the largest
    window (newest first); results: their results; day_results: the results of the runs since
    `since`, for the pass-rate and duration days and (with `usages`, each range ending at `now`)
    the tier reliability and coverage of each range of days."""
    analyses = {}
    for size in windows:
        run_pks = set(runs["run_pk"].head(size))
        analyses[size] = window_analysis(results[results["run_pk"].isin(run_pks)])
    reliability, coverage = range_analyses(day_results, usages, now=now or since)
    return TestAnalysis(
        windows=analyses,
        pass_rate_days=pass_rate_days(day_results),
        since=since,
        duration_days=duration_days(day_results),
        tier_reliability=reliability,
        coverage=coverage,
        tested_sessions={usage.days: usage.tested_session_count for usage in usages},
    )
