"""Message anomalies through the real refresh: messages in the database → flags stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics import queries
from analytics.models import Anomaly
from analytics.refresh import refresh_anomalies
from ingest.models import Message
from tests.builders import make_project, make_session

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
BURST = NOW - timedelta(hours=2)


def message(session: Any, i: int, at: datetime, status: str) -> Message:
    dead = status == Message.Stage.DEAD_LETTERED
    return Message(
        project=session.project,
        session=session,
        message_id=f"m-{i}",
        sender="attacker-jailbreak",
        receivers=["target"],
        status=status,
        started_at=at,
        dead_lettered_at=at + timedelta(minutes=1) if dead else None,
        error_type="Refused" if status != Message.Stage.PROCESSED else "",
    )


def test_a_failing_edge_and_its_dead_letters_are_flagged_with_example_sessions() -> None:
    project = make_project(name="Messages")[0]
    session = make_session(project, started_at=NOW - timedelta(days=9))
    rows: list[Message] = []
    for hours_ago in range(24 * 8, 0, -1):
        at = NOW - timedelta(hours=hours_ago)
        bad, status = (12, Message.Stage.DEAD_LETTERED) if at == BURST else (2, "failed")
        rows += [
            message(
                session,
                len(rows) + i,
                at + timedelta(minutes=i),
                status if i < bad else "processed",
            )
            for i in range(20)
        ]
    Message.objects.bulk_create(rows)

    frame = queries.message_hour_frame(project.pk, since=BURST, until=NOW)
    assert frame.groupby("bucket")[["messages", "failed", "dead_lettered"]].sum().loc[
        BURST
    ].tolist() == [20, 12, 12]

    refresh_anomalies(project.pk, since=NOW - timedelta(hours=3), until=NOW)
    refresh_anomalies(project.pk, since=NOW - timedelta(hours=3), until=NOW)  # idempotent

    flags = {(a.subject_type, a.subject, a.metric): a for a in Anomaly.objects.all()}
    assert set(flags) == {
        ("edge", "attacker-jailbreak \u2192 target", "message_failure_rate"),
        ("project", "", "dead_letter_growth"),
        ("agent", "attacker-jailbreak", "dead_letter_growth"),
    }
    edge = flags[("edge", "attacker-jailbreak \u2192 target", "message_failure_rate")]
    assert (edge.window_start, edge.observed, edge.baseline) == (BURST, 0.6, 0.1)
    assert edge.explanation.startswith(
        "message failure rate from attacker-jailbreak to target was 60 %, 6.0\u00d7 its 7-day "
        "baseline of 10 %"
    )
    assert edge.example_session_ids == [session.pk]
    assert flags[("project", "", "dead_letter_growth")].example_session_ids == [session.pk]
