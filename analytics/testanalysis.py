"""The stored test analysis of a project: flakiness, outcome and duration regressions over
windows of its newest runs, and pass-rate counts per day, tier and suite. Pure: it combines the
functions of analytics.flakiness, analytics.regressions and analytics.testruns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from analytics.flakiness import flakiness_scores
from analytics.regressions import duration_regressions, outcome_regressions
from analytics.testruns import decisive

PASS_RATE_DAY_COLUMNS = ["day", "tier", "suite", "passed", "failed", "total", "runs"]


@dataclass(frozen=True)
class WindowAnalysis:
    """Over the newest N runs: flakiness_scores (every test), outcome_regressions and
    duration_regressions."""

    flaky: pd.DataFrame
    regressions: pd.DataFrame
    slower: pd.DataFrame


@dataclass(frozen=True)
class TestAnalysis:
    """`windows` maps a window size (runs) to its analysis; `pass_rate_days` covers the runs
    that started at or after `since`."""

    __test__ = False  # pytest: not a test class

    windows: dict[int, WindowAnalysis]
    pass_rate_days: pd.DataFrame
    since: datetime


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
) -> TestAnalysis:
    """Analyse each window of the newest runs. runs: queries.test_run_frame of the largest
    window (newest first); results: their results; day_results: the results of the runs since
    `since`, for the pass-rate days."""
    analyses = {}
    for size in windows:
        run_pks = set(runs["run_pk"].head(size))
        analyses[size] = window_analysis(results[results["run_pk"].isin(run_pks)])
    return TestAnalysis(windows=analyses, pass_rate_days=pass_rate_days(day_results), since=since)
