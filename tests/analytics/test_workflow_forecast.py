"""The expected duration of a running workflow run from its name's history (analytics/workflows.py):
pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from analytics.workflows import RUN_COLUMNS, STEP_COLUMNS, expected_duration

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def past_runs(plan_s: list[float], rest_s: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Finished runs, one a day: a "plan" step of plan_s then a "build" step of rest_s."""
    runs: list[tuple[Any, ...]] = []
    steps: list[tuple[Any, ...]] = []
    for pk, (plan, rest) in enumerate(zip(plan_s, rest_s, strict=True), start=1):
        start = T0 - timedelta(days=pk)
        plan_end = start + timedelta(seconds=plan)
        end = plan_end + timedelta(seconds=rest)
        runs.append((pk, "deploy", "success", start, end))
        steps.append((pk, "a", "plan", "ok", start, plan_end, []))
        steps.append((pk, "b", "build", "ok", plan_end, end, ["a"]))
    return (
        pd.DataFrame.from_records(runs, columns=RUN_COLUMNS),
        pd.DataFrame.from_records(steps, columns=STEP_COLUMNS),
    )


def current_step(name: str, start_s: float, end_s: float | None) -> dict[str, object]:
    return {
        "step_id": name,
        "name": name,
        "status": "ok" if end_s is not None else "running",
        "started_at": T0 + timedelta(seconds=start_s),
        "ended_at": None if end_s is None else T0 + timedelta(seconds=end_s),
    }


def test_a_run_with_no_step_done_expects_the_median_of_past_durations() -> None:
    runs, steps = past_runs([10] * 5, [50, 60, 70, 80, 90])
    forecast = expected_duration(T0, [], runs, steps, now=T0 + timedelta(seconds=20))

    assert forecast is not None
    assert forecast.basis == "history" and forecast.runs == 5
    assert forecast.elapsed_ms == 20_000
    assert forecast.total_p50_ms == 80_000
    assert forecast.remaining_p50_ms == 60_000
    assert forecast.total_low_ms == pytest.approx(64_000)
    assert forecast.total_high_ms == pytest.approx(96_000)
    assert forecast.remaining_low_ms <= forecast.remaining_p50_ms <= forecast.remaining_high_ms


def test_a_run_whose_first_step_was_slow_expects_the_rest_after_it() -> None:
    runs, steps = past_runs([10] * 5, [40, 50, 50, 50, 60])
    now = T0 + timedelta(seconds=120)
    forecast = expected_duration(T0, [current_step("plan", 0, 100)], runs, steps, now=now)

    assert forecast is not None and forecast.basis == "steps"
    # plan ended at 100 s; past runs took 40-60 s after it.
    assert forecast.total_p50_ms == 150_000
    assert forecast.remaining_p50_ms == 30_000


def test_runs_it_has_already_outlasted_are_left_out() -> None:
    runs, steps = past_runs([10] * 6, [20, 20, 20, 100, 110, 120])
    forecast = expected_duration(T0, [], runs, steps, now=T0 + timedelta(seconds=60))

    assert forecast is not None and forecast.runs == 3
    assert forecast.total_p50_ms == 120_000


def test_a_run_past_every_past_duration_has_no_time_left() -> None:
    runs, steps = past_runs([10] * 3, [20, 20, 20])
    forecast = expected_duration(T0, [], runs, steps, now=T0 + timedelta(seconds=90))

    assert forecast is not None
    assert forecast.total_p50_ms == 90_000 and forecast.remaining_high_ms == 0


def test_steps_the_history_never_finished_fall_back_to_whole_durations() -> None:
    runs, steps = past_runs([10] * 3, [20, 30, 40])
    done = [current_step("surprise", 0, 5)]
    forecast = expected_duration(T0, done, runs, steps, now=T0 + timedelta(seconds=6))

    assert forecast is not None and forecast.basis == "history"
    assert forecast.total_p50_ms == 40_000


def test_too_little_history_gives_no_forecast() -> None:
    runs, steps = past_runs([10, 10], [20, 30])
    assert expected_duration(T0, [], runs, steps, now=T0) is None
    empty = pd.DataFrame(columns=RUN_COLUMNS)
    assert expected_duration(T0, [], empty, pd.DataFrame(columns=STEP_COLUMNS), now=T0) is None
