"""Incidents in the database: they open, grow and close across refreshes, alert once, and hours
older than the live lookback get judged (and grouped) by later refreshes without a command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics import store
from analytics.alerting import rule_value
from analytics.incidents import QUIET_TO_CLOSE
from analytics.models import AlertRule, Anomaly, Incident
from analytics.refresh import MAX_ANOMALY_LOOKBACK, refresh_project, regroup_incidents
from analytics.synthetic import Injection
from tests.analytics.test_refresh import _store_synthetic, flag
from tests.builders import make_alert_rule, make_project

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def project() -> Any:
    return make_project(name="Incidents")[0]


def judge(project: Any, flags: list[Any], *, since: datetime, now: datetime) -> None:
    """What refresh_anomalies stores for the hours [since, now): the flags, then incidents."""
    store.save_anomalies(project.pk, flags, {}, since=since, until=now)
    regroup_incidents(project.pk, since=since, now=now)


def test_an_incident_opens_grows_with_its_knock_on_flags_and_closes_when_quiet(
    project: Any,
) -> None:
    judge(project, [flag(window_end=T0 + 2 * H)], since=T0, now=T0 + 2 * H)
    opened = Incident.objects.get()
    assert (opened.status, opened.flag_count, opened.opened_at) == ("open", 1, T0 + 2 * H)

    later = [
        flag(window_start=T0 + 2 * H, window_end=T0 + 5 * H),
        flag(
            subject_type="agent",
            subject="researcher",
            window_start=T0 + 3 * H,
            window_end=T0 + 5 * H,
            top_dimension="tool=search",
            score=5.0,
        ),
    ]
    judge(project, later, since=T0 + 2 * H, now=T0 + 5 * H)
    grown = Incident.objects.get()
    assert grown.pk == opened.pk
    assert (grown.status, grown.flag_count, grown.opened_at) == ("open", 3, T0 + 2 * H)
    assert (grown.window_start, grown.window_end) == (T0, T0 + 5 * H)
    assert grown.top_dimension == "tool=search"
    assert set(Anomaly.objects.values_list("incident", flat=True)) == {grown.pk}

    judge(project, [], since=T0 + 5 * H, now=T0 + 5 * H + QUIET_TO_CLOSE)
    closed = Incident.objects.get()
    assert (closed.status, closed.closed_at) == ("closed", T0 + 5 * H + QUIET_TO_CLOSE)


def test_an_incident_whose_flags_were_not_found_again_is_gone(project: Any) -> None:
    judge(project, [flag()], since=T0, now=T0 + H)
    assert Incident.objects.exists()

    judge(project, [], since=T0, now=T0 + H)

    assert not Incident.objects.exists()


def test_an_anomaly_alert_fires_for_a_new_incident_and_not_again_as_it_grows(
    project: Any,
) -> None:
    rule = make_alert_rule(project, kind=AlertRule.Kind.ANOMALY, metric="", window_minutes=60)
    judge(project, [flag(window_end=T0 + 2 * H)], since=T0, now=T0 + 2 * H)
    Incident.objects.update(opened_at=datetime.now(UTC) - timedelta(minutes=90))

    knock_on = flag(subject_type="model", subject="gpt-4o", top_dimension="tool=search")
    judge(project, [knock_on], since=T0, now=T0 + 2 * H)
    state, count, _ = rule_value(rule, now=datetime.now(UTC))

    assert Incident.objects.count() == 1 and Anomaly.objects.count() == 1
    assert (state, count) == ("ok", 0.0)


def test_an_anomaly_alert_names_the_new_incident(project: Any) -> None:
    rule = make_alert_rule(project, kind=AlertRule.Kind.ANOMALY, metric="", window_minutes=60)
    now = datetime.now(UTC)
    judge(project, [flag(explanation="p95 latency of tool search was 4.0 s")], since=T0, now=now)

    state, count, message = rule_value(rule, now=now)

    assert (state, count) == ("alert", 1.0)
    assert "p95 latency of tool search was 4.0 s" in message


def test_hours_older_than_the_live_lookback_are_judged_by_the_next_refreshes(
    project: Any,
) -> None:
    """An import: nine days of spans arrive at once, with tool search four times slower for
    three hours five days ago. The live refresh judges its 48 hours and remembers the rest;
    later refreshes judge the rest a chunk at a time, so the slowdown is flagged, as an
    incident, without recompute_analytics."""
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    start = now - timedelta(days=5, hours=-3)
    _store_synthetic(project, Injection("tool", "search", "latency_p95", start, 3, 4.0), now=now)
    first = now - timedelta(days=9)

    result = refresh_project(project.pk, since=first, now=now)
    refreshes = 1
    while result.has_backlog and refreshes < 10:
        result = refresh_project(project.pk, since=now, now=now)
        refreshes += 1

    assert start < now - MAX_ANOMALY_LOOKBACK
    assert 2 < refreshes < 10 and not result.has_backlog
    anomaly = Anomaly.objects.get(subject_type="tool", subject="search", metric="latency_p95")
    assert start <= anomaly.window_start < start + 3 * H
    incident = Incident.objects.get(anomalies=anomaly)
    assert (incident.top_dimension, incident.status) == ("tool=search", "closed")
