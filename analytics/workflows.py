"""Workflow runs: the critical path of a run, idle time, and per-name statistics. Pure.

A run's steps come as dicts (or DataFrame rows) with step_id, name, agent, status, started_at,
ended_at and depends_on (a list of step ids). Times are datetimes; no clock is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

STEP_COLUMNS = ["workflow_pk", "step_id", "name", "status", "started_at", "ended_at", "depends_on"]
RUN_COLUMNS = ["pk", "name", "status", "started_at", "ended_at"]
NAME_STATS_COLUMNS = [
    "name",
    "runs",
    "completed",
    "failed",
    "completion_rate",
    "step_p50_ms",
    "step_p95_ms",
    "bottleneck",
    "bottleneck_share",
]

Step = Mapping[str, Any]


@dataclass(frozen=True)
class CriticalPath:
    """The chain of steps that decided when the run ended, first step first, and the time the
    run spent waiting between them (ms), by step id: the gap before each step."""

    step_ids: list[str]
    wait_ms: dict[str, float]

    @property
    def total_wait_ms(self) -> float:
        return sum(self.wait_ms.values())


def _time(value: Any) -> datetime | None:
    """A datetime, or None for a missing one (None, or pandas' NaT from a DataFrame row)."""
    return None if value is None or pd.isna(value) else value  # type: ignore[no-any-return]


def _start(step: Step) -> datetime | None:
    return _time(step.get("started_at"))


def _end(step: Step) -> datetime | None:
    return _time(step.get("ended_at")) or _start(step)


def _finish(step: Step) -> datetime:
    """The end of a step known to have a start (its start when it has no end yet)."""
    ended = _time(step.get("ended_at"))
    return ended if ended is not None else step["started_at"]  # type: ignore[no-any-return]


def critical_path(steps: Sequence[Step]) -> CriticalPath:
    """Walk back from the step that ended last: each step's predecessor is the dependency that
    finished last (the one it waited for). A step without declared dependencies, in a run that
    declares none at all, waited for the last step that ended before it started. Steps without
    a start are ignored."""
    timed = {str(s["step_id"]): s for s in steps if _start(s) is not None}
    if not timed:
        return CriticalPath([], {})
    has_dependencies = any(s.get("depends_on") for s in timed.values())
    current: str | None = max(timed, key=lambda sid: (_finish(timed[sid]), sid))
    path: list[str] = []
    wait: dict[str, float] = {}
    while current is not None and current not in path:
        path.append(current)
        before = _predecessor(timed, current, has_dependencies=has_dependencies)
        if before is not None:
            gap = (timed[current]["started_at"] - _finish(timed[before])).total_seconds() * 1000
            wait[current] = max(gap, 0.0)
        current = before
    path.reverse()
    return CriticalPath(path, wait)


def _predecessor(timed: dict[str, Step], step_id: str, *, has_dependencies: bool) -> str | None:
    step = timed[step_id]
    if has_dependencies:
        candidates = [str(d) for d in step.get("depends_on") or [] if str(d) in timed]
    else:
        start = step["started_at"]
        candidates = [
            sid for sid, other in timed.items() if sid != step_id and _finish(other) <= start
        ]
    if not candidates:
        return None
    return max(candidates, key=lambda sid: (_finish(timed[sid]), sid))


def step_duration_ms(step: Step) -> float:
    end = _end(step)
    start = _start(step)
    if start is None or end is None:
        return 0.0
    return max((end - start).total_seconds() * 1000, 0.0)


def path_shares(steps: Sequence[Step], path: CriticalPath) -> dict[str, float]:
    """Each step name's share of the run's critical-path time (its duration over the path's)."""
    by_id = {str(s["step_id"]): s for s in steps}
    durations: dict[str, float] = {}
    for step_id in path.step_ids:
        step = by_id[step_id]
        name = str(step.get("name") or step_id)
        durations[name] = durations.get(name, 0.0) + step_duration_ms(step)
    total = sum(durations.values())
    return {name: value / total for name, value in durations.items()} if total else {}


def workflow_name_stats(runs: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """Per workflow name (runs: RUN_COLUMNS; steps: STEP_COLUMNS): runs, completed (success),
    failed, completion rate of finished runs, step duration p50/p95 (ms) and the bottleneck:
    the step name with the largest mean share of the critical path across runs."""
    if runs.empty:
        return pd.DataFrame(columns=NAME_STATS_COLUMNS)
    steps_by_run = {pk: group.to_dict("records") for pk, group in steps.groupby("workflow_pk")}
    rows = []
    for name, group in runs.groupby("name", sort=True):
        run_steps = [steps_by_run.get(pk, []) for pk in group["pk"]]
        rows.append(_name_row(str(name), group, run_steps))
    return pd.DataFrame(rows, columns=NAME_STATS_COLUMNS)


def _name_row(
    name: str, runs: pd.DataFrame, run_steps: list[list[dict[str, Any]]]
) -> dict[str, Any]:
    completed = int((runs["status"] == "success").sum())
    failed = int(runs["status"].isin(["fail", "cancelled"]).sum())
    finished = completed + failed
    durations = pd.Series(
        [step_duration_ms(s) for steps in run_steps for s in steps if _time(s.get("ended_at"))],
        dtype=float,
    )
    shares: dict[str, float] = {}
    for steps in run_steps:
        for step_name, share in path_shares(steps, critical_path(steps)).items():
            shares[step_name] = shares.get(step_name, 0.0) + share
    bottleneck = max(shares, key=lambda n: (shares[n], n)) if shares else ""
    return {
        "name": name,
        "runs": len(runs),
        "completed": completed,
        "failed": failed,
        "completion_rate": completed / finished if finished else None,
        "step_p50_ms": float(durations.quantile(0.5)) if len(durations) else None,
        "step_p95_ms": float(durations.quantile(0.95)) if len(durations) else None,
        "bottleneck": bottleneck,
        "bottleneck_share": shares[bottleneck] / len(run_steps) if bottleneck else None,
    }
