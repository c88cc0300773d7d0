"""Test results over runs: the tests-by-runs outcome matrix and pass-rate and duration trends. Pure.

Every function here takes a results frame with RESULT_COLUMNS (one row per test result, as
analytics.queries.test_result_frame reads it): runs are ordered by (run_started_at, run_pk).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

RESULT_COLUMNS = [
    "result_pk",
    "run_pk",
    "run_started_at",
    "commit",
    "branch",
    "suite",
    "tier",
    "test_id",
    "name",
    "outcome",
    "duration_ms",
]
RUN_ORDER = ["run_started_at", "run_pk"]
OUTCOMES = ["pass", "fail", "error", "skip", "xfail"]
# Matrix cell codes: the index in OUTCOMES; MISSING when the run has no result for the test.
MISSING = -1
# Outcomes that say whether the test works; skips and expected failures say nothing.
DECISIVE = ("pass", "fail", "error")


def decisive(results: pd.DataFrame) -> pd.DataFrame:
    """Pass, fail and error results in run order, with a boolean `failed` column."""
    frame = results[results["outcome"].isin(DECISIVE)].sort_values(RUN_ORDER, kind="stable")
    return frame.assign(failed=frame["outcome"] != "pass")


@dataclass(frozen=True)
class OutcomeMatrix:
    """Tests (rows) by runs (columns). `codes[i, j]` is an OUTCOMES index or MISSING; `result_pks`
    holds the result's pk (0 when missing). `tests` has test_id, name, tier, suite, failures;
    `runs` has run_pk, run_started_at, commit, branch, suite, in run order."""

    tests: pd.DataFrame
    runs: pd.DataFrame
    codes: np.ndarray
    result_pks: np.ndarray


def outcome_matrix(results: pd.DataFrame, *, max_tests: int | None = None) -> OutcomeMatrix:
    """The heatmap's matrix. Tests with the most failures and errors come first (then by tier,
    suite, test id); `max_tests` keeps only the first that many. Linear in the rows: factorised
    codes and numpy indexing, no groupby over 100,000 strings."""
    runs = (
        results[["run_pk", "run_started_at", "commit", "branch", "suite"]]
        .drop_duplicates("run_pk")
        .sort_values(RUN_ORDER, kind="stable")
        .reset_index(drop=True)
    )
    test_codes, test_ids = pd.factorize(results["test_id"], sort=False)
    outcome_codes = pd.Categorical(results["outcome"], categories=OUTCOMES).codes
    failing = np.isin(outcome_codes, [OUTCOMES.index("fail"), OUTCOMES.index("error")])
    tests = (
        results[["test_id", "name", "tier", "suite"]]
        .iloc[_last_rows(test_codes, len(test_ids))]
        .assign(failures=np.bincount(test_codes, weights=failing, minlength=len(test_ids)))
        .astype({"failures": int})
    )
    order = tests.sort_values(
        ["failures", "tier", "suite", "test_id"], ascending=[False, True, True, True]
    ).index
    tests = tests.loc[order].reset_index(drop=True).head(max_tests)
    row_of = np.full(len(test_ids), -1)
    row_of[test_ids.get_indexer(tests["test_id"])] = np.arange(len(tests))
    rows = row_of[test_codes]
    shown = rows >= 0
    columns = pd.Index(runs["run_pk"]).get_indexer(results["run_pk"])
    codes = np.full((len(tests), len(runs)), MISSING, dtype=np.int8)
    pks = np.zeros((len(tests), len(runs)), dtype=np.int64)
    codes[rows[shown], columns[shown]] = outcome_codes[shown]
    pks[rows[shown], columns[shown]] = results["result_pk"].to_numpy()[shown]
    return OutcomeMatrix(tests=tests, runs=runs, codes=codes, result_pks=pks)


def _last_rows(codes: np.ndarray, count: int) -> np.ndarray:
    """The position of each code's last row (codes are 0..count-1, each present)."""
    last = np.zeros(count, dtype=np.int64)
    last[codes] = np.arange(len(codes))  # later rows overwrite earlier ones
    return last


def pass_rate_trend(results: pd.DataFrame, *, freq: str = "1D") -> pd.DataFrame:
    """Per time bucket (of the run's start) and tier: passed, failed (fail + error), total and
    pass_rate of the decisive results, and runs (distinct runs). Sorted by bucket, then tier."""
    frame = decisive(results)
    columns = ["bucket", "tier", "passed", "failed", "total", "pass_rate", "runs"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.assign(
        bucket=pd.to_datetime(frame["run_started_at"], utc=True).dt.floor(freq),
        passed=~frame["failed"],
    )
    trend = (
        frame.groupby(["bucket", "tier"])
        .agg(
            passed=("passed", "sum"),
            failed=("failed", "sum"),
            total=("outcome", "size"),
            runs=("run_pk", "nunique"),
        )
        .reset_index()
    )
    trend["pass_rate"] = trend["passed"] / trend["total"]
    return trend[columns]


def duration_trend(results: pd.DataFrame, *, freq: str = "1D") -> pd.DataFrame:
    """Per bucket and tier: the median over runs of a run's summed test time (run_ms), and the
    median test duration (test_ms). Results without a duration are left out."""
    frame = results.dropna(subset=["duration_ms"])
    columns = ["bucket", "tier", "run_ms", "test_ms", "runs"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.assign(bucket=pd.to_datetime(frame["run_started_at"], utc=True).dt.floor(freq))
    per_run = (
        frame.groupby(["bucket", "tier", "run_pk"])["duration_ms"]
        .agg(["sum", "median"])
        .reset_index()
    )
    trend = (
        per_run.groupby(["bucket", "tier"])
        .agg(run_ms=("sum", "median"), test_ms=("median", "median"), runs=("run_pk", "size"))
        .reset_index()
    )
    return trend[columns]
