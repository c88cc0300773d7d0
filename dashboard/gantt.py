"""A workflow run's Gantt rows: lanes per agent or per step, critical path, waits. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.workflows import critical_path, step_duration_ms

NO_AGENT = "(no agent)"


@dataclass(frozen=True)
class GanttBar:
    step_id: str
    name: str
    lane: str
    lane_index: int
    start_ms: float
    duration_ms: float
    status: str
    agent: str
    depends_on: tuple[str, ...]
    is_critical: bool
    wait_ms: float | None  # idle time before it on the critical path
    error_type: str
    result_summary: str
    is_open: bool  # no end time yet


@dataclass(frozen=True)
class Gantt:
    lanes: list[str]
    bars: list[GanttBar]
    critical_ids: list[str]
    total_ms: float
    critical_wait_ms: float


def gantt(steps: Sequence[Mapping[str, Any]], *, by: str, origin: datetime | None) -> Gantt:
    """Bars for a run's steps (dicts as analytics.queries.workflow_steps gives them), one lane per
    agent (`by="agent"`) or per step (`by="step"`), timed from `origin` (the run's start, or the
    first step's). Steps without a start are left out."""
    timed = [s for s in steps if s.get("started_at") is not None]
    if not timed:
        return Gantt([], [], [], 0.0, 0.0)
    start = origin or min(s["started_at"] for s in timed)
    path = critical_path(
        [{**s, "agent": s.get("agent_external_id")} for s in timed],
    )
    critical = set(path.step_ids)
    lanes: dict[str, int] = {}
    bars = []
    for step in timed:
        agent = str(step.get("agent_external_id") or "")
        lane = (agent or NO_AGENT) if by == "agent" else str(step.get("name") or step["step_id"])
        lane_index = lanes.setdefault(lane, len(lanes))
        step_id = str(step["step_id"])
        bars.append(
            GanttBar(
                step_id=step_id,
                name=str(step.get("name") or step_id),
                lane=lane,
                lane_index=lane_index,
                start_ms=(step["started_at"] - start).total_seconds() * 1000,
                duration_ms=step_duration_ms(step),
                status=str(step.get("status") or "running"),
                agent=agent,
                depends_on=tuple(str(d) for d in step.get("depends_on") or []),
                is_critical=step_id in critical,
                wait_ms=path.wait_ms.get(step_id),
                error_type=str(step.get("error_type") or ""),
                result_summary=str(step.get("result_summary") or ""),
                is_open=step.get("ended_at") is None,
            )
        )
    total = max(bar.start_ms + bar.duration_ms for bar in bars)
    return Gantt(list(lanes), bars, path.step_ids, total, path.total_wait_ms)
