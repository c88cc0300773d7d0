"""Regressions: tests that passed and now fail, and tests that got slower. Pure.

Outcome regressions are found per branch, so a red feature branch does not show as main's
regression: in each (branch, test) history, in run order, a regression is a trailing run of
failures (fail or error) after at least one pass. Skips and expected failures are ignored.
"""

from __future__ import annotations

import pandas as pd

from analytics.testruns import decisive

REGRESSION_COLUMNS = [
    "branch",
    "test_id",
    "name",
    "tier",
    "suite",
    "failing_runs",
    "first_failing_run_pk",
    "first_failing_commit",
    "first_failing_at",
    "first_failing_result_pk",
    "last_passing_run_pk",
    "last_passing_commit",
    "last_passing_at",
    "latest_run_pk",
]
DURATION_COLUMNS = [
    "test_id",
    "name",
    "tier",
    "suite",
    "baseline_ms",
    "recent_ms",
    "ratio",
    "slower_since_run_pk",
    "slower_since_commit",
    "slower_since_at",
]


def outcome_regressions(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (branch, test) whose latest decisive result fails after an earlier pass
    (REGRESSION_COLUMNS), most recently broken first.

    results: analytics.testruns.RESULT_COLUMNS. `failing_runs` is the length of the failing
    streak; the first failing run and the last passing one bracket the commit that broke it.
    """
    frame = decisive(results)
    if frame.empty:
        return pd.DataFrame(columns=REGRESSION_COLUMNS)
    frame = frame.sort_values(["branch", "test_id", "run_started_at", "run_pk"], kind="stable")
    keys = [frame["branch"], frame["test_id"]]
    # Each pass opens a new streak; the failures after a test's last pass share its number.
    frame = frame.assign(streak=(~frame["failed"]).groupby(keys).cumsum())
    last = frame.groupby(["branch", "test_id"], sort=False).tail(1)
    broken = last[last["failed"] & (last["streak"] > 0)][["branch", "test_id", "streak"]]
    if broken.empty:
        return pd.DataFrame(columns=REGRESSION_COLUMNS)
    streaks = frame.merge(broken, on=["branch", "test_id", "streak"])
    last_pass = streaks[~streaks["failed"]].set_index(["branch", "test_id"])
    failing = streaks[streaks["failed"]].groupby(["branch", "test_id"], sort=False)
    found = failing.agg(
        name=("name", "last"),
        tier=("tier", "last"),
        suite=("suite", "last"),
        failing_runs=("failed", "size"),
        first_failing_run_pk=("run_pk", "first"),
        first_failing_commit=("commit", "first"),
        first_failing_at=("run_started_at", "first"),
        first_failing_result_pk=("result_pk", "first"),
        latest_run_pk=("run_pk", "last"),
    )
    found = found.join(
        last_pass[["run_pk", "commit", "run_started_at"]].rename(
            columns={
                "run_pk": "last_passing_run_pk",
                "commit": "last_passing_commit",
                "run_started_at": "last_passing_at",
            }
        )
    )
    found = found.reset_index().sort_values(
        ["first_failing_at", "test_id"], ascending=[False, True]
    )
    return found[REGRESSION_COLUMNS].reset_index(drop=True)


def duration_regressions(
    results: pd.DataFrame,
    *,
    recent: int = 5,
    baseline: int = 20,
    min_ratio: float = 1.5,
    min_increase_ms: float = 100.0,
) -> pd.DataFrame:
    """Tests whose median duration over their last `recent` passing results is at least
    `min_ratio` times, and `min_increase_ms` more than, the median of the `baseline` passing
    results before those (DURATION_COLUMNS), biggest slowdown first. `slower_since_*` name the
    first recent run over the threshold. Needs `recent` recent and `recent` baseline results."""
    frame = results[(results["outcome"] == "pass") & results["duration_ms"].notna()]
    frame = frame.sort_values(["test_id", "run_started_at", "run_pk"], kind="stable")
    if frame.empty:
        return pd.DataFrame(columns=DURATION_COLUMNS)
    from_end = frame.groupby("test_id", sort=False).cumcount(ascending=False)
    window = frame.assign(
        is_recent=from_end < recent,
        is_baseline=(from_end >= recent) & (from_end < recent + baseline),
    )
    recent_rows = window[window["is_recent"]]
    medians = pd.DataFrame(
        {
            "recent_ms": recent_rows.groupby("test_id")["duration_ms"].median(),
            "recent_count": recent_rows.groupby("test_id").size(),
            "baseline_ms": window[window["is_baseline"]].groupby("test_id")["duration_ms"].median(),
            "baseline_count": window[window["is_baseline"]].groupby("test_id").size(),
        }
    ).dropna()
    slower = medians[
        (medians["recent_count"] >= recent)
        & (medians["baseline_count"] >= recent)
        & (medians["recent_ms"] >= medians["baseline_ms"] * min_ratio)
        & (medians["recent_ms"] - medians["baseline_ms"] >= min_increase_ms)
    ]
    if slower.empty:
        return pd.DataFrame(columns=DURATION_COLUMNS)
    return _slower_since(recent_rows, slower, min_ratio)


def _slower_since(
    recent_rows: pd.DataFrame, slower: pd.DataFrame, min_ratio: float
) -> pd.DataFrame:
    rows = recent_rows.merge(
        slower[["baseline_ms", "recent_ms"]], left_on="test_id", right_index=True
    )
    over = rows[rows["duration_ms"] >= rows["baseline_ms"] * min_ratio]
    first = over.groupby("test_id", sort=False).head(1).set_index("test_id")
    found = slower.join(
        first[["name", "tier", "suite", "run_pk", "commit", "run_started_at"]].rename(
            columns={
                "run_pk": "slower_since_run_pk",
                "commit": "slower_since_commit",
                "run_started_at": "slower_since_at",
            }
        )
    )
    found["ratio"] = found["recent_ms"] / found["baseline_ms"]
    found = found.reset_index().sort_values(["ratio", "test_id"], ascending=[False, True])
    return found[DURATION_COLUMNS].reset_index(drop=True)
