"""The overview page through Django's test client: KPIs, charts, rollups and empty ranges."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from analytics.refresh import refresh_project
from ingest.models import Span
from tests.builders import T0, make_session

pytestmark = pytest.mark.django_db


def test_the_overview_shows_kpis_and_charts_for_an_explicit_window(
    logged_in: Client, project: Any
) -> None:
    make_session(project, spans=4, llm_spans=2, failed=1, end_state="fail")
    make_session(project, started_at=T0 + timedelta(hours=2), spans=2, llm_spans=1)
    make_session(project, started_at=T0 - timedelta(days=3))  # outside the window

    response = logged_in.get("/", {"from": "2026-11-21T00:00", "to": "2026-11-22T00:00"})

    assert response.status_code == 200
    kpis = response.context["kpis"]
    assert (kpis.session_count, kpis.failed_session_count, kpis.event_count) == (2, 1, 6)
    assert (kpis.llm_call_count, kpis.error_count) == (3, 1)
    # Percentiles of several rollup rows merge their histograms: within ~5 % (glossary, Rollup).
    assert kpis.llm_p50_ms == pytest.approx(500.0, rel=0.05)
    assert response.context["window"].range_key == "custom"
    for chart in ("chart-activity", "chart-latency", "chart-cost"):
        assert f'id="{chart}"'.encode() in response.content
    assert b"plotly/plotly.min.js" in response.content


def test_the_overview_sums_rolled_up_hours_from_rollups_and_later_ones_from_spans(
    logged_in: Client, project: Any
) -> None:
    """A session three hours ago, rolled up; then its spans vanish from the span table (the
    page must not read them) and a session arrives after the refresh (the page reads that one's
    spans): both count."""
    now = timezone.now()
    early = make_session(project, started_at=now - timedelta(hours=3), spans=4, llm_spans=2)
    refresh_project(project.pk, since=now - timedelta(days=1), now=now)
    Span.objects.filter(session=early).delete()
    make_session(project, started_at=now - timedelta(minutes=10), spans=3, llm_spans=1)

    kpis = logged_in.get("/", {"range": "24h"}).context["kpis"]

    assert (kpis.session_count, kpis.event_count, kpis.llm_call_count) == (2, 7, 3)


def test_the_overview_of_an_empty_range_shows_empty_states(logged_in: Client) -> None:
    response = logged_in.get("/", {"range": "7d"})

    assert response.status_code == 200
    assert response.context["window"].range_key == "7d"
    assert b"No sessions or events in this range." in response.content
    assert b'id="chart-activity"' not in response.content
