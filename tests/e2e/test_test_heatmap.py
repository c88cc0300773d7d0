"""The test heatmap in headless Chromium: cells are drawn, hovering names the test, clicking a cell
opens its result with the error and the linked sessions. Fails on any console error or dialog."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.builders import make_session, make_test_history

pytestmark = pytest.mark.e2e

SCRIPT = "<script>alert(1)</script>"
HISTORIES = {
    "agents/test_planner.py::test_plans": "PPPPPPFF",  # most failures: the top row
    "tools/test_search.py::test_finds": "PFPPFPPP",
    f"tools/test_xss.py::test_{SCRIPT}": "PPPPPPPP",
}


def cell_center(page: Page, row: int, column: int, rows: int, columns: int) -> tuple[float, float]:
    """The screen position of a heatmap cell (row 0 on top) inside the plot area."""
    box = page.locator("#heatmap-0 .nsewdrag").first.bounding_box()
    assert box is not None
    return (
        box["x"] + box["width"] * (column + 0.5) / columns,
        box["y"] + box["height"] * (row + 0.5) / rows,
    )


def test_cells_are_drawn_and_a_click_opens_the_result_with_its_error_and_sessions(
    watched_page: Page, live_server: Any, project_with_key: tuple[Any, str]
) -> None:
    page = watched_page
    project, _ = project_with_key
    make_test_history(
        project,
        HISTORIES,
        started_at=timezone.now() - timedelta(hours=10),
        sessions={"agents/test_planner.py::test_plans": ["planner-session"]},
    )
    session = make_session(project, external_id="planner-session")

    page.goto(f"{live_server.url}/tests/")

    expect(page.locator("#heatmap-0 .hm image")).to_have_count(1)
    image = page.locator("#heatmap-0 .hm image").bounding_box()
    assert image is not None and image["width"] > 100 and image["height"] > 20
    labels = page.locator("#heatmap-0 .yaxislayer-above")
    expect(labels).to_contain_text("agents/test_planner.py::test_plans")
    expect(labels).to_contain_text(SCRIPT)  # shown as text, escaped

    x, y = cell_center(page, row=2, column=0, rows=3, columns=8)
    page.mouse.move(x, y)
    expect(page.locator("#heatmap-0 .hoverlayer")).to_contain_text(SCRIPT)

    x, y = cell_center(page, row=0, column=7, rows=3, columns=8)
    page.mouse.move(x, y)
    expect(page.locator("#heatmap-0 .hoverlayer")).to_contain_text("fail")
    page.mouse.click(x, y)

    panel = page.locator("#result-detail")
    expect(panel.locator(".result-title")).to_have_text("test_plans")
    expect(panel.locator(".badge.outcome-fail")).to_be_visible()
    expect(panel.locator(".error-box")).to_have_text("AssertionError: boom")
    expect(panel.locator(".stack")).to_contain_text("Traceback: boom")
    expect(panel.locator(".history-strip .cell")).to_have_count(8)
    panel.get_by_role("link", name="planner-session").click()
    expect(page).to_have_url(f"{live_server.url}/sessions/{session.pk}/")
