"""The heatmap's outcome matrix and the pass-rate and duration trends, without a database."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from analytics.testruns import MISSING, OUTCOMES, duration_trend, outcome_matrix, pass_rate_trend
from tests.builders import T0, result_frame


def test_the_matrix_puts_the_most_failing_tests_first_and_runs_in_order() -> None:
    frame = result_frame({"a_ok": "PPP", "b_bad": "FFE", "c_some": "P.F"})

    matrix = outcome_matrix(frame.sample(frac=1, random_state=3))

    assert list(matrix.tests["test_id"]) == ["b_bad", "c_some", "a_ok"]
    assert list(matrix.runs["run_pk"]) == [1, 2, 3]
    fail, error, passed = OUTCOMES.index("fail"), OUTCOMES.index("error"), OUTCOMES.index("pass")
    assert matrix.codes.tolist() == [
        [fail, fail, error],
        [passed, MISSING, fail],
        [passed, passed, passed],
    ]
    assert matrix.result_pks[1, 1] == 0
    assert matrix.result_pks[0, 2] == 3001


def test_max_tests_keeps_the_top_rows() -> None:
    matrix = outcome_matrix(result_frame({"a": "PP", "b": "FF", "c": "PF"}), max_tests=2)

    assert list(matrix.tests["test_id"]) == ["b", "c"]
    assert matrix.codes.shape == (2, 2)
    assert matrix.codes.dtype == np.int8


def test_pass_rate_per_day_and_tier_counts_errors_as_failures_and_ignores_skips() -> None:
    unit = result_frame({"a": "PPF", "b": "PES"}, tier="unit")
    frame = unit.assign(run_started_at=[T0, T0, T0 + timedelta(days=1), T0, T0, T0])

    trend = pass_rate_trend(frame)

    assert trend[["tier", "passed", "failed", "total", "runs"]].values.tolist() == [
        ["unit", 3, 1, 4, 2],
        ["unit", 0, 1, 1, 1],
    ]
    assert trend["pass_rate"].tolist() == [0.75, 0.0]


def test_duration_trend_takes_the_median_run_total_per_bucket() -> None:
    durations = {"a": [100.0, 300.0], "b": [50.0, 50.0]}
    frame = result_frame({"a": "PP", "b": "PP"}, durations=durations)

    trend = duration_trend(frame)

    assert trend[["run_ms", "runs"]].values.tolist() == [[250.0, 2]]
