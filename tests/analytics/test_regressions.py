"""Outcome and duration regressions on constructed histories, without a database."""

from __future__ import annotations

from datetime import timedelta

from analytics.regressions import duration_regressions, outcome_regressions
from tests.builders import T0, result_frame

COMMITS = [f"c{j}" for j in range(8)]


def test_a_test_failing_since_a_commit_names_that_commit_and_the_last_passing_one() -> None:
    frame = outcome_regressions(result_frame({"broke": "PPPPPFFF", "fine": "PPPPPPPP"}))

    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["test_id"] == "broke"
    assert row["failing_runs"] == 3
    assert (row["first_failing_run_pk"], row["first_failing_commit"]) == (6, "c5")
    assert (row["last_passing_run_pk"], row["last_passing_commit"]) == (5, "c4")
    assert row["first_failing_at"] == T0 + timedelta(hours=5)
    assert row["latest_run_pk"] == 8


def test_skips_between_do_not_end_the_streak_and_errors_count_as_failures() -> None:
    frame = outcome_regressions(result_frame({"t": "PPFSEXF"}))

    row = frame.iloc[0]
    assert row["failing_runs"] == 3
    assert row["first_failing_commit"] == "c2"
    assert row["last_passing_commit"] == "c1"


def test_fixed_tests_and_tests_that_never_passed_are_not_regressions() -> None:
    frame = outcome_regressions(result_frame({"fixed": "PPFFP", "new_and_red": "FFFFF"}))

    assert frame.empty
    assert "first_failing_commit" in frame.columns


def test_regressions_are_per_branch() -> None:
    main = result_frame({"t": "PPPP"}, branch="main")
    feature = result_frame({"t": "PPFF"}, branch="feature", started_at=T0 + timedelta(minutes=1))
    feature["run_pk"] += 100

    import pandas as pd

    frame = outcome_regressions(pd.concat([main, feature]))

    assert list(frame["branch"]) == ["feature"]
    assert frame.iloc[0]["first_failing_run_pk"] == 103


def test_a_test_that_doubled_its_duration_is_a_duration_regression_from_the_first_slow_run() -> (
    None
):
    durations = {"slow": [100.0] * 10 + [100.0, 260.0, 250.0, 270.0, 255.0, 265.0]}
    history = {"slow": "P" * 16, "steady": "P" * 16}

    frame = duration_regressions(result_frame(history, durations=durations), recent=5, baseline=10)

    assert list(frame["test_id"]) == ["slow"]
    row = frame.iloc[0]
    assert row["baseline_ms"] == 100.0
    assert row["recent_ms"] == 260.0
    assert row["ratio"] == 2.6
    assert row["slower_since_run_pk"] == 12
    assert row["slower_since_commit"] == "c11"


def test_small_or_short_slowdowns_are_not_duration_regressions() -> None:
    durations = {
        "tiny": [10.0] * 10 + [30.0] * 5,  # 3x, but only 20 ms more
        "young": [100.0] * 3 + [500.0] * 5,  # too little baseline
    }
    histories = {"tiny": "P" * 15, "young": "P" * 8 + "." * 7}
    durations["young"] += [0.0] * 7

    frame = duration_regressions(result_frame(histories, durations=durations))

    assert frame.empty
