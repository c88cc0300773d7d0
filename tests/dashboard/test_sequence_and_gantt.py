"""The sequence diagram's and the Gantt's geometry and figures: pure, agent text escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dashboard import charts
from dashboard.gantt import gantt
from dashboard.sequence import density, lifelines, sequence_arrows, sequence_window

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script>"


def message(
    pk: int, sender: str, receivers: list[str], status: str = "processed"
) -> dict[str, Any]:
    return {
        "pk": pk,
        "sender": sender,
        "receivers": receivers,
        "status": status,
        "started_at": T0 + timedelta(seconds=pk),
        "sent_at": None,
        "preview": SCRIPT if pk == 2 else "hi",
        "channel": "",
        "delivery_ms": 10.0,
        "error_type": "",
    }


MESSAGES = [
    message(1, "planner", ["coder", "critic"]),
    message(2, "coder", ["planner"], "dead_lettered"),
    message(3, "critic", ["critic"], "failed"),
    message(4, "", [], "sent"),
]


def test_lifelines_in_order_of_appearance_and_one_arrow_per_receiver() -> None:
    agents = lifelines(MESSAGES)
    assert agents == ["planner", "coder", "critic", "?"]
    arrows = sequence_arrows(MESSAGES, agents, origin=T0)
    assert [(a.sender, a.receiver, a.row, a.group) for a in arrows] == [
        ("planner", "coder", 0, "done"),
        ("planner", "critic", 1, "done"),
        ("coder", "planner", 2, "dead"),
        ("critic", "critic", 3, "failed"),
        ("?", "?", 4, "in_flight"),
    ]
    assert (arrows[2].x0, arrows[2].x1) == (1.0, 0.0)
    assert arrows[3].is_self and arrows[3].x1 == 2.35
    assert arrows[2].offset_ms == 2000.0


def test_sequence_chart_marks_failures_and_escapes_hover_text() -> None:
    agents = lifelines(MESSAGES)
    figure = charts.figure_data(
        charts.sequence_chart(sequence_arrows(MESSAGES, agents, origin=T0), agents)
    )
    traces = {trace["name"]: trace for trace in figure["data"]}
    assert traces["dead-lettered ✕ (heads)"]["marker"]["symbol"] == ["x-thin-open"]
    assert traces["delivered (heads)"]["marker"]["symbol"] == ["triangle-right"] * 2
    text = str(figure)
    assert SCRIPT not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert traces["dead-lettered ✕ (heads)"]["customdata"][0][0] == 2


def test_windows_are_aligned_and_clamped() -> None:
    window = sequence_window(5000, offset=4990, size=200)
    assert (window.offset, window.first, window.last) == (4800, 4801, 5000)
    assert (window.previous_offset, window.next_offset) == (4600, None)
    assert len(window.pages()) == 25
    assert sequence_window(0, offset=50, size=200).first == 0


def test_density_counts_every_message_once() -> None:
    times = [T0 + timedelta(seconds=s) for s in (0, 1, 1, 59, 60)]
    bins = density(times, bins=6)
    assert sum(count for _, count in bins) == 5
    assert bins[0] == (T0, 3)
    assert density([], bins=3) == []


def test_gantt_lanes_critical_path_and_waits() -> None:
    steps = [
        {
            "step_id": "plan",
            "name": "plan",
            "agent_external_id": "planner",
            "status": "ok",
            "started_at": T0,
            "ended_at": T0 + timedelta(seconds=1),
            "depends_on": [],
        },
        {
            "step_id": "code",
            "name": SCRIPT,
            "agent_external_id": "coder",
            "status": "error",
            "started_at": T0 + timedelta(seconds=2),
            "ended_at": T0 + timedelta(seconds=4),
            "depends_on": ["plan"],
        },
        {
            "step_id": "lint",
            "name": "lint",
            "agent_external_id": "coder",
            "status": "ok",
            "started_at": T0 + timedelta(seconds=1),
            "ended_at": T0 + timedelta(seconds=1.5),
            "depends_on": ["plan"],
        },
    ]
    by_agent = gantt(steps, by="agent", origin=T0)
    assert by_agent.lanes == ["planner", "coder"]
    assert by_agent.critical_ids == ["plan", "code"]
    assert by_agent.critical_wait_ms == 1000.0
    assert gantt(steps, by="step", origin=T0).lanes == ["plan", SCRIPT, "lint"]
    figure = charts.figure_data(charts.gantt_chart(by_agent))
    traces = {trace["name"]: trace for trace in figure["data"]}
    assert len(traces["critical path"]["x"]) == 2
    assert traces["wait"]["x"] == [1000.0]
    assert SCRIPT not in str(figure)
