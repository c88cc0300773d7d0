"""Critical path, waits and per-name workflow statistics (analytics/workflows.py): pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from analytics.workflows import critical_path, path_shares, workflow_name_stats

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def step(step_id: str, start: float, end: float | None, *deps: str, **extra: Any) -> dict[str, Any]:
    return {
        "step_id": step_id,
        "name": extra.get("name", step_id),
        "status": extra.get("status", "ok"),
        "started_at": T0 + timedelta(seconds=start),
        "ended_at": None if end is None else T0 + timedelta(seconds=end),
        "depends_on": list(deps),
    }


DIAMOND = [
    step("plan", 0, 1),
    step("search", 1, 3, "plan"),
    step("code", 1, 6, "plan"),
    step("review", 7, 8, "search", "code"),
]


def test_the_critical_path_follows_the_dependency_that_finished_last() -> None:
    path = critical_path(DIAMOND)
    assert path.step_ids == ["plan", "code", "review"]
    assert path.wait_ms == {"code": 0.0, "review": 1000.0}
    assert path.total_wait_ms == 1000.0


def test_without_declared_dependencies_each_step_waits_for_the_last_one_before_it() -> None:
    steps = [step("a", 0, 2), step("b", 0.5, 1), step("c", 3, 4), step("d", 3.5, 5)]
    assert critical_path(steps).step_ids == ["a", "d"]


def test_cycles_unknown_dependencies_and_untimed_steps_do_not_break_it() -> None:
    steps = [
        step("a", 0, 1, "b", "ghost"),
        step("b", 1, 2, "a"),
        {**step("c", 0, 1), "started_at": None},
    ]
    assert critical_path(steps).step_ids == ["a", "b"]
    assert critical_path([]).step_ids == []


def test_path_shares_split_the_critical_time_by_step_name() -> None:
    shares = path_shares(DIAMOND, critical_path(DIAMOND))
    assert shares == {"plan": 1 / 7, "code": 5 / 7, "review": 1 / 7}


def test_workflow_stats_name_the_bottleneck_across_runs() -> None:
    runs = pd.DataFrame(
        [
            {"pk": 1, "name": "triage", "status": "success", "started_at": T0, "ended_at": T0},
            {"pk": 2, "name": "triage", "status": "fail", "started_at": T0, "ended_at": T0},
            {"pk": 3, "name": "triage", "status": "running", "started_at": T0, "ended_at": None},
        ]
    )
    steps = pd.DataFrame(
        [{**s, "workflow_pk": pk} for pk in (1, 2) for s in DIAMOND]
        + [{**step("plan", 0, None), "workflow_pk": 3}]
    )
    [row] = workflow_name_stats(runs, steps).to_dict("records")
    assert (row["runs"], row["completed"], row["failed"], row["completion_rate"]) == (3, 1, 1, 0.5)
    assert row["bottleneck"] == "code"
    assert abs(row["bottleneck_share"] - 5 / 7 * 2 / 3) < 1e-9
    assert row["step_p50_ms"] == 1500.0
    assert workflow_name_stats(runs.iloc[0:0], steps).empty


def test_a_run_of_thousands_of_steps_in_sequence_has_every_step_on_its_critical_path() -> None:
    """A long agent session's implicit run: 3,000 task steps, one after another, no declared
    dependencies (the walk back used to scan every step for each one)."""
    steps = [step(f"s{n}", n * 10, n * 10 + 5) for n in range(3000)]

    path = critical_path(steps)

    assert path.step_ids == [f"s{n}" for n in range(3000)]
    assert set(path.wait_ms.values()) == {5000.0}
