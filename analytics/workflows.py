"""Workflow runs: the critical path of a run, idle time, and per-name statistics. Pure.

A run's steps come as dicts (or DataFrame rows) with step_id, name, agent, status, started_at,
ended_at and depends_on (a list of step ids). Times are datetimes; no clock is read.
"""

from __future__ import annotations

from bisect import bisect_right
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
    # Not pd.isna: this runs for every step time of a page's 500 runs, and the identity checks
    # (None, NaT, NaN: the one value unequal to itself) cost a tenth of it.
    if value is None or value is pd.NaT or value != value:
        return None
    return value  # type: ignore[no-any-return]


def _start(step: Step) -> datetime | None:
    return _time(step.get("started_at"))


def _end(step: Step) -> datetime | None:
    return _time(step.get("ended_at")) or _start(step)


def _finish(step: Step) -> datetime:
    """The end of a step known to have a start (its start when it has no end yet)."""
    ended = _time(step.get("ended_at"))
    return ended if ended is not None else step["started_at"]


def critical_path(steps: Sequence[Step]) -> CriticalPath:
    """Walk back from the step that ended last: each step's predecessor is the dependency that
    finished last (the one it waited for). A step without declared dependencies, in a run that
    declares none at all, waited for the last step that ended before it started. Steps without
    a start are ignored. O(n log n): a run of thousands of steps is one page's work."""
    timed = {str(s["step_id"]): s for s in steps if _start(s) is not None}
    if not timed:
        return CriticalPath([], {})
    has_dependencies = any(s.get("depends_on") for s in timed.values())
    # (finish, step id) ascending: the order in which "the one that finished last" is the max.
    ended = sorted((_finish(step), sid) for sid, step in timed.items())
    finishes = [finish for finish, _ in ended]
    current: str | None = ended[-1][1]
    path: list[str] = []
    seen: set[str] = set()
    wait: dict[str, float] = {}
    while current is not None and current not in seen:
        path.append(current)
        seen.add(current)
        if has_dependencies:
            before = _last_dependency(timed, current)
        else:
            before = _last_ended_before(ended, finishes, current, timed[current]["started_at"])
        if before is not None:
            gap = (timed[current]["started_at"] - _finish(timed[before])).total_seconds() * 1000
            wait[current] = max(gap, 0.0)
        current = before
    path.reverse()
    return CriticalPath(path, wait)


def _last_dependency(timed: dict[str, Step], step_id: str) -> str | None:
    candidates = [str(d) for d in timed[step_id].get("depends_on") or [] if str(d) in timed]
    return max(candidates, key=lambda sid: (_finish(timed[sid]), sid)) if candidates else None


def _last_ended_before(
    ended: list[tuple[datetime, str]], finishes: list[datetime], step_id: str, start: datetime
) -> str | None:
    """The other step with the largest (finish, id) among those that finished by `start`."""
    end = bisect_right(finishes, start)
    for _, sid in reversed(ended[max(end - 2, 0) : end]):
        if sid != step_id:
            return sid
    return None


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
    # One pass over all steps: a groupby with to_dict per run cost ~6 ms a run (3 s for 500).
    steps_by_run: dict[Any, list[dict[str, Any]]] = {}
    columns = list(steps.columns)
    for values in steps.itertuples(index=False, name=None):
        step = dict(zip(columns, values, strict=True))
        steps_by_run.setdefault(step["workflow_pk"], []).append(step)
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


# --- The expected duration of a running run ------------------------------------------------

# The interval of an expected duration: the 10th to the 90th percentile of similar runs.
INTERVAL = (0.1, 0.9)


@dataclass(frozen=True)
class DurationForecast:
    """How long a running run should take in all and from now, in ms: the median and an 80 %
    interval over `runs` finished runs of the same name. basis "steps": runs that had finished
    the same steps, timed from the point this run reached; "history": all of them."""

    elapsed_ms: float
    total_p50_ms: float
    total_low_ms: float
    total_high_ms: float
    remaining_p50_ms: float
    remaining_low_ms: float
    remaining_high_ms: float
    runs: int
    basis: str


def _step_key(step: Step) -> str:
    return str(step.get("name") or step.get("step_id"))


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


def expected_duration(
    started_at: datetime,
    steps: Sequence[Step],
    history: pd.DataFrame,
    history_steps: pd.DataFrame,
    *,
    now: datetime,
    min_runs: int = 3,
) -> DurationForecast | None:
    """The expected total and remaining time of a run started at `started_at` with these steps
    so far, from finished runs of the same name (history: RUN_COLUMNS, those with an end count;
    history_steps: their STEP_COLUMNS). None below min_runs finished runs.

    Conditioned on the steps already done (by name): each past run that also finished them all
    contributes the time it took after its last such step ended, added to when this run's last
    one ended. Past runs this run has already outlasted are left out while min_runs remain
    (otherwise the remaining time is floored at 0). Without min_runs such runs, whole durations
    are used ("history").
    """
    finished = history.dropna(subset=["started_at", "ended_at"])
    if len(finished) < min_runs:
        return None
    elapsed = max(_ms(now, started_at), 0.0)
    done = [s for s in steps if s.get("status") == "ok" and _time(s.get("ended_at")) is not None]
    done_keys = {_step_key(s) for s in done}
    totals = [_ms(r.ended_at, r.started_at) for r in finished.itertuples(index=False)]
    basis = "history"
    if done_keys:
        reached = max(_ms(s["ended_at"], started_at) for s in done)
        rests = _rests_after(finished, history_steps, done_keys)
        if len(rests) >= min_runs:
            totals, basis = [reached + rest for rest in rests], "steps"
    ahead = [total for total in totals if total > elapsed]
    if len(ahead) >= min_runs:
        totals = ahead
    values = pd.Series(totals, dtype="float64")
    low, high = (float(values.quantile(q)) for q in INTERVAL)
    p50 = float(values.median())
    return DurationForecast(
        elapsed_ms=elapsed,
        total_p50_ms=max(p50, elapsed),
        total_low_ms=max(low, elapsed),
        total_high_ms=max(high, elapsed),
        remaining_p50_ms=max(p50 - elapsed, 0.0),
        remaining_low_ms=max(low - elapsed, 0.0),
        remaining_high_ms=max(high - elapsed, 0.0),
        runs=len(totals),
        basis=basis,
    )


def _rests_after(runs: pd.DataFrame, steps: pd.DataFrame, keys: set[str]) -> list[float]:
    """Per past run that finished every step in `keys`: its time after the last of them ended."""
    ended = steps.dropna(subset=["ended_at"])
    ended = ended[ended["status"] == "ok"] if "status" in ended else ended
    by_run = {pk: group.to_dict("records") for pk, group in ended.groupby("workflow_pk")}
    rests = []
    for run in runs.itertuples(index=False):
        last: dict[str, datetime] = {}
        for step in by_run.get(run.pk, []):
            key = _step_key(step)
            if key in keys:
                last[key] = max(last.get(key, step["ended_at"]), step["ended_at"])
        if len(last) == len(keys):
            rests.append(max(_ms(run.ended_at, max(last.values())), 0.0))
    return rests
