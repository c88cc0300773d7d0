"""Flakiness and reliability per test, from its outcome history. Pure.

Two kinds of evidence, combined as "either says flaky" (1 - (1 - a)(1 - b)):

* **flip rate**: the share of consecutive decisive results (pass, fail, error, in run order) whose
  outcome flips into and back out of a short failure streak (at most `max_streak` runs, then a
  pass again). A test that fails one run in ten flips about every fifth run; one broken by a
  commit and fixed some runs later is a regression and its fix, not flakiness, and counts none.
* **same-commit flips**: of the commits on which the test ran at least twice, the share on which it
  both passed and failed. Nothing in the code changed, so the test (or its environment) is flaky.

Reliability is the share of decisive results that passed.
"""

from __future__ import annotations

import pandas as pd

from analytics.testruns import decisive

FLAKY_COLUMNS = [
    "test_id",
    "name",
    "tier",
    "suite",
    "results",
    "failures",
    "flips",
    "transient_failures",
    "flip_rate",
    "commits_rerun",
    "commits_mixed",
    "same_commit_rate",
    "flakiness",
    "reliability",
    "is_flaky",
    "last_outcome",
    "last_run_pk",
    "last_run_at",
    "last_result_pk",
]


def flakiness_scores(
    results: pd.DataFrame,
    *,
    min_results: int = 5,
    threshold: float = 0.1,
    max_streak: int = 2,
) -> pd.DataFrame:
    """One row per test with a decisive result (FLAKY_COLUMNS), flakiest first.

    results: analytics.testruns.RESULT_COLUMNS. `flips` counts every outcome change,
    `transient_failures` the failure streaks of at most `max_streak` runs that a pass ended. A
    test is_flaky when it has at least `min_results` decisive results, a flakiness of at least
    `threshold`, and either two transient failures or a commit on which it passed and failed.
    """
    frame = decisive(results)
    if frame.empty:
        return pd.DataFrame(columns=FLAKY_COLUMNS)
    frame = frame.sort_values(["test_id", "run_started_at", "run_pk"], kind="stable")
    previous = frame.groupby("test_id", sort=False)["failed"].shift()
    frame = frame.assign(flip=previous.notna() & (previous != frame["failed"]))
    frame = frame.assign(transient=_transient_failure_ends(frame, max_streak))
    tests = frame.groupby("test_id", sort=False).agg(
        name=("name", "last"),
        tier=("tier", "last"),
        suite=("suite", "last"),
        results=("failed", "size"),
        failures=("failed", "sum"),
        flips=("flip", "sum"),
        transient_failures=("transient", "sum"),
        last_outcome=("outcome", "last"),
        last_run_pk=("run_pk", "last"),
        last_run_at=("run_started_at", "last"),
        last_result_pk=("result_pk", "last"),
    )
    tests = tests.join(_commit_evidence(frame)).fillna({"commits_rerun": 0, "commits_mixed": 0})
    return _scored(tests.reset_index(), min_results=min_results, threshold=threshold)


def _transient_failure_ends(frame: pd.DataFrame, max_streak: int) -> pd.Series:
    """True on the first row of each failure streak of at most max_streak rows that the test's
    next result ends with a pass. frame: sorted by test, then run order."""
    failed = frame["failed"]
    starts = failed.ne(frame.groupby("test_id", sort=False)["failed"].shift())
    block = starts.cumsum()
    blocks = frame.groupby(block, sort=False).agg(
        test_id=("test_id", "first"), failed=("failed", "first"), size=("failed", "size")
    )
    next_failed = blocks.groupby("test_id", sort=False)["failed"].shift(-1)
    transient = blocks["failed"] & (blocks["size"] <= max_streak) & next_failed.eq(False)
    return starts & block.map(transient).astype(bool)


def _commit_evidence(frame: pd.DataFrame) -> pd.DataFrame:
    """Per test: commits it ran on at least twice, and those on which it both passed and failed."""
    with_commit = frame[frame["commit"] != ""]
    per_commit = with_commit.groupby(["test_id", "commit"])["failed"].agg(["min", "max", "size"])
    per_commit = per_commit.assign(
        rerun=per_commit["size"] >= 2, mixed=per_commit["min"] != per_commit["max"]
    )
    evidence = per_commit.groupby(level="test_id")[["rerun", "mixed"]].sum()
    return evidence.rename(columns={"rerun": "commits_rerun", "mixed": "commits_mixed"})


def _scored(tests: pd.DataFrame, *, min_results: int, threshold: float) -> pd.DataFrame:
    tests["results"] = tests["results"].astype(int)
    tests["failures"] = tests["failures"].astype(int)
    tests["flips"] = tests["flips"].astype(int)
    tests["transient_failures"] = tests["transient_failures"].astype(int)
    tests["commits_rerun"] = tests["commits_rerun"].astype(int)
    tests["commits_mixed"] = tests["commits_mixed"].astype(int)
    flips_in_and_out = 2 * tests["transient_failures"]
    tests["flip_rate"] = (flips_in_and_out / (tests["results"] - 1).clip(lower=1)).clip(upper=1)
    tests["same_commit_rate"] = (tests["commits_mixed"] / tests["commits_rerun"]).where(
        tests["commits_rerun"] > 0, 0.0
    )
    tests["flakiness"] = 1 - (1 - tests["flip_rate"]) * (1 - tests["same_commit_rate"])
    tests["reliability"] = 1 - tests["failures"] / tests["results"]
    tests["is_flaky"] = (
        (tests["results"] >= min_results)
        & (tests["flakiness"] >= threshold)
        & ((tests["transient_failures"] >= 2) | (tests["commits_mixed"] >= 1))
    )
    ordered = tests.sort_values(["flakiness", "test_id"], ascending=[False, True])
    return ordered[FLAKY_COLUMNS].reset_index(drop=True)
