"""analytics.anomalies.detect_message_anomalies on synthetic message hours with injected message
failure-rate and dead-letter anomalies. Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.anomalies import (
    MESSAGE_HOUR_COLUMNS,
    AnomalyFlag,
    detect_message_anomalies,
    format_value,
)

NOW = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
EDGES = (("attacker-jailbreak", "target"), ("planner", "coder"), ("coder", "reviewer"))
FAILURE_AT = NOW - timedelta(days=2) + timedelta(hours=14)  # 2 hours of a 40 % failure rate
DEAD_LETTERS_AT = NOW - timedelta(days=4) + timedelta(hours=9)  # 1 hour of 12 dead letters


def message_hours(
    days: int = 21, *, failure_at: datetime | None = FAILURE_AT, seed: int = 6
) -> pd.DataFrame:
    """Every edge sends 40 messages an hour, 8 % of them failing; dead letters are rare."""
    rng = np.random.default_rng(seed)
    rows = []
    for hour in pd.date_range(NOW - timedelta(days=days), NOW, freq="1h", inclusive="left"):
        for sender, receiver in EDGES:
            failed = int(rng.binomial(40, 0.08))
            dead = int(rng.random() < 0.05)
            if (
                failure_at is not None
                and (sender, receiver) == EDGES[0]
                and failure_at <= hour < failure_at + timedelta(hours=2)
            ):
                failed = 16
            if (sender, receiver) == EDGES[1] and hour == DEAD_LETTERS_AT:
                rows.append((hour, sender, receiver, "Timeout", 0, 0, 12))
            rows.append((hour, sender, receiver, "", 40 - failed, 0, 0))
            rows.append((hour, sender, receiver, "Rejected", failed, failed, dead))
    return pd.DataFrame(rows, columns=MESSAGE_HOUR_COLUMNS)


@pytest.fixture(scope="module")
def flags() -> list[AnomalyFlag]:
    return detect_message_anomalies(message_hours(), since=NOW - timedelta(days=7), until=NOW)


def test_an_edge_whose_messages_start_failing_is_flagged_for_the_injected_hours(
    flags: list[AnomalyFlag],
) -> None:
    [flag] = [f for f in flags if f.metric == "message_failure_rate"]
    assert (flag.subject_type, flag.subject) == ("edge", "attacker-jailbreak \u2192 target")
    assert (flag.window_start, flag.window_end) == (FAILURE_AT, FAILURE_AT + timedelta(hours=2))
    assert 0.3 < flag.observed < 0.5 and 0.05 < flag.baseline < 0.12
    assert flag.sample_count == 80
    assert flag.top_dimension == "error_type=Rejected" and flag.top_share == 1.0


def test_the_failure_rate_sentence_names_the_edge_the_ratio_and_the_baseline(
    flags: list[AnomalyFlag],
) -> None:
    [flag] = [f for f in flags if f.metric == "message_failure_rate"]
    ratio = f"{flag.observed / flag.baseline:.1f}"
    assert flag.explanation.startswith(
        "message failure rate from attacker-jailbreak to target was "
        f"{format_value('error_rate', flag.observed)}, {ratio}\u00d7 its 7-day baseline of "
        f"{format_value('error_rate', flag.baseline)}"
    )


def test_a_burst_of_dead_letters_is_flagged_for_the_project_and_the_sending_agent(
    flags: list[AnomalyFlag],
) -> None:
    dead = {(f.subject_type, f.subject): f for f in flags if f.metric == "dead_letter_growth"}
    assert set(dead) == {("project", ""), ("agent", "planner")}
    project = dead[("project", "")]
    assert project.window_start == DEAD_LETTERS_AT
    assert project.observed == 12 and project.baseline == 0
    assert project.top_dimension == "agent=planner"
    assert re.match(
        "dead-letter growth was 12 new dead letters an hour, up from a 28-day hour-of-week "
        "baseline of 0 new dead letters an hour; 100 % of the new dead letters came from agent "
        "planner$",
        project.explanation,
    )
    assert dead[("agent", "planner")].top_dimension == "error_type=Timeout"


def test_ordinary_traffic_raises_no_flag() -> None:
    quiet = message_hours(failure_at=None).query("dead_lettered < 5")
    assert detect_message_anomalies(quiet, since=NOW - timedelta(days=7), until=NOW) == []


def test_a_rerun_over_an_overlapping_window_gives_the_same_flags(
    flags: list[AnomalyFlag],
) -> None:
    again = detect_message_anomalies(message_hours(), since=NOW - timedelta(days=5), until=NOW)
    assert again == [f for f in flags if f.window_start >= NOW - timedelta(days=5)]


def test_no_messages_no_flags() -> None:
    empty = pd.DataFrame(columns=MESSAGE_HOUR_COLUMNS)
    assert detect_message_anomalies(empty, since=NOW - timedelta(days=1), until=NOW) == []
