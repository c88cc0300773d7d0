"""Flakiness and reliability scores on constructed histories, without a database."""

from __future__ import annotations

import pytest

from analytics.flakiness import flakiness_scores
from tests.builders import result_frame


def scores(histories: dict[str, str], **extra: object) -> dict[str, dict[str, object]]:
    frame = flakiness_scores(result_frame(histories, **extra))  # type: ignore[arg-type]
    return {row["test_id"]: row for row in frame.to_dict("records")}


def test_a_test_that_fails_one_run_in_five_is_flaky_and_a_stable_one_is_not() -> None:
    found = scores({"flaky": "PPPPFPPPPFPPPPFPPPPF", "stable": "P" * 20})

    assert found["flaky"]["is_flaky"]
    assert found["flaky"]["flips"] == 7
    assert found["flaky"]["transient_failures"] == 3  # the last failure may be a regression
    assert found["flaky"]["flip_rate"] == pytest.approx(6 / 19)
    assert found["flaky"]["reliability"] == pytest.approx(0.8)
    assert not found["stable"]["is_flaky"]
    assert found["stable"]["flakiness"] == 0
    assert found["stable"]["reliability"] == 1


def test_a_break_and_its_fix_are_not_flakiness() -> None:
    found = scores({"broken_then_fixed": "PPPPPPPPFFFFFFPPPPPP"})

    assert found["broken_then_fixed"]["flips"] == 2
    assert found["broken_then_fixed"]["transient_failures"] == 0
    assert found["broken_then_fixed"]["flakiness"] == 0
    assert not found["broken_then_fixed"]["is_flaky"]


def test_passing_and_failing_on_the_same_commit_is_flaky_even_with_one_flip() -> None:
    commits = ["a", "a", "b", "b", "c", "c"]

    found = scores({"retried": "PPPPPF", "steady": "PPPPPP"}, commits=commits)

    assert found["retried"]["commits_rerun"] == 3
    assert found["retried"]["commits_mixed"] == 1
    assert found["retried"]["same_commit_rate"] == pytest.approx(1 / 3)
    assert found["retried"]["is_flaky"]
    assert found["steady"]["commits_mixed"] == 0


def test_skips_and_expected_failures_neither_flip_nor_count() -> None:
    found = scores({"skippy": "PSPXPSPP"})

    assert found["skippy"]["results"] == 5
    assert found["skippy"]["flips"] == 0


def test_too_few_results_are_never_called_flaky_and_flakiest_come_first() -> None:
    frame = flakiness_scores(result_frame({"short": "PFPF", "long": "PFPFPFPF", "ok": "PPPPPPPP"}))

    assert list(frame["test_id"]) == ["long", "short", "ok"]
    assert list(frame["is_flaky"]) == [True, False, False]


def test_no_results_give_an_empty_frame_with_the_columns() -> None:
    frame = flakiness_scores(result_frame({"skipped": "SSS"}))

    assert frame.empty
    assert "flakiness" in frame.columns
