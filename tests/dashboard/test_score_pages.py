"""Scores on the pages: the sessions filter, the session page, the trends chart and score alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from analytics.models import AlertRule
from ingest.models import Score
from tests.builders import T0, make_session
from tests.dashboard.conftest import SESSIONS

pytestmark = pytest.mark.django_db


def test_the_sessions_page_filters_by_score_and_names_a_bad_condition(
    logged_in: Client, project: Any
) -> None:
    low = make_session(project, name="low judged")
    make_session(project, name="high judged")
    Score.objects.create(
        project=project,
        session=low,
        client_id="s",
        name="judge",
        data_type="numeric",
        value=0.1,
        created_at=T0,
    )

    shown = logged_in.get(SESSIONS, {"score": "judge:lt:0.5"}).content.decode()
    assert "low judged" in shown and "high judged" not in shown
    refused = logged_in.get(SESSIONS, {"score": "judge:about:1"}).content.decode()
    assert "score: op must be one of" in refused


def test_the_session_page_shows_scores_escaped(logged_in: Client, project: Any) -> None:
    session = make_session(project)
    Score.objects.create(
        project=project,
        session=session,
        client_id="s",
        name="<b>judge</b>",
        data_type="categorical",
        label="<script>x</script>",
        comment="<img src=x>",
        created_at=T0,
    )

    html = logged_in.get(f"/sessions/{session.pk}/").content.decode()
    assert "&lt;b&gt;judge&lt;/b&gt;" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x</script>" not in html
    assert "&lt;img src=x&gt;" in html


def test_the_trends_page_charts_scores_by_name(logged_in: Client, project: Any) -> None:
    session = make_session(project, started_at=timezone.now() - timedelta(hours=2))
    Score.objects.create(
        project=project,
        session=session,
        client_id="s",
        name="judge",
        data_type="numeric",
        value=0.7,
        created_at=timezone.now() - timedelta(hours=1),
    )

    html = logged_in.get("/trends/", {"range": "24h"}).content.decode()

    assert 'id="chart-trend-scores"' in html
    assert "/api/v1/scores/?project=" in html


def test_a_score_alert_rule_needs_the_score_name(logged_in: Client, project: Any) -> None:
    form = {
        "name": "Judge dropped",
        "kind": "metric",
        "metric": "score_mean",
        "window_minutes": 60,
        "comparator": "<",
        "threshold": 0.5,
        "channel": "slack",
        "target": "https://hooks.example.com/x",
        "renotify_minutes": 60,
        "is_enabled": "on",
    }
    refused = logged_in.post("/alerts/", form).content.decode()
    assert "A score metric needs the name of the scores to judge." in refused
    logged_in.post("/alerts/", {**form, "score_name": "judge"})
    assert AlertRule.objects.get(name="Judge dropped").score_name == "judge"
