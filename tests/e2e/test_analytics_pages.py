"""The trends and anomalies pages in headless Chromium: charts drawn, download buttons under each,
agent text escaped, acknowledging an anomaly; no console error, page error or dialog."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from analytics.refresh import refresh_project
from ingest.models import Span
from tests.builders import make_anomaly, make_session, make_span

pytestmark = pytest.mark.e2e

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def project(project_with_key: tuple[Any, str]) -> Any:
    """Sessions of the last hours on two models, a failing tool with agent text in its message,
    refreshed into rollups and clusters; one open anomaly naming the first session."""
    project = project_with_key[0]
    now = timezone.now()
    for hours in (1, 2, 3):
        session = make_session(
            project, started_at=now - timedelta(hours=hours), spans=4, llm_spans=2, model=SCRIPT
        )
        make_session(project, started_at=now - timedelta(hours=hours), spans=3, model="claude")
    make_span(
        session,
        name="web_fetch",
        status=Span.Status.ERROR,
        error_message=f"fetch {SCRIPT} failed",
    )
    refresh_project(project.pk, since=now - timedelta(hours=4), now=now)
    make_anomaly(
        project,
        explanation=f"p95 latency of tool {SCRIPT} was 4.1 s",
        example_session_ids=[session.pk],
    )
    return project


def test_the_trends_page_draws_every_chart_with_its_downloads(
    watched_page: Page, live_server: Any, project: Any
) -> None:
    page = watched_page
    page.goto(f"{live_server.url}/trends/?range=24h&group=model")

    charts = page.locator(".chart[data-chart]")
    expect(charts.first.locator(".main-svg").first).to_be_visible()
    count = charts.count()
    assert count >= 6
    expect(page.locator(".chart .main-svg")).not_to_have_count(0)
    expect(page.locator(".chart-downloads")).to_have_count(count)
    expect(page.locator(".chart-downloads").first.get_by_role("button", name="PNG")).to_be_visible()
    csv = page.locator(".chart-downloads a").first.get_attribute("href")
    assert csv is not None and csv.startswith("/api/v1/trends/series/?project=test-project")
    legend = page.locator("[data-chart='chart-trend-latency'] .legendtext")
    expect(legend.first).to_have_text(SCRIPT)

    with page.expect_download() as download:
        page.locator(".chart-downloads").first.get_by_role("button", name="SVG").click()
    assert download.value.suggested_filename.endswith(".svg")


def test_an_anomaly_is_read_and_acknowledged_on_its_page(
    watched_page: Page, live_server: Any, project: Any
) -> None:
    page = watched_page
    page.goto(f"{live_server.url}/anomalies/")

    explanation = page.locator(".anomaly-explanation")
    expect(explanation).to_have_text(f"p95 latency of tool {SCRIPT} was 4.1 s")
    expect(page.locator("[data-chart='chart-anomaly-timeline'] .main-svg").first).to_be_visible()
    page.get_by_role("button", name="Acknowledge").click()

    expect(page.locator(".message.success")).to_contain_text("is now acknowledged")
    page.goto(f"{live_server.url}/anomalies/?status=acknowledged")
    expect(page.locator(".badge.anomaly-acknowledged")).to_have_text("acknowledged")
    page.goto(f"{live_server.url}/errors/")
    expect(page.locator(".example-message")).to_have_text(f"fetch {SCRIPT} failed")
    expect(page.locator("[data-chart='chart-error-clusters'] .main-svg").first).to_be_visible()
