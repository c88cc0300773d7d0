"""The sequence diagram and the workflow timeline in headless Chromium: arrows drawn, failures
and the critical path marked, details on click, agent text shown as text (never run)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from analytics.refresh import refresh_project
from ingest.models import Message, MessageContent, MessageEvent
from tests.builders import make_message, make_session, make_workflow

pytestmark = pytest.mark.e2e

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def project(project_with_key: tuple[Any, str]) -> Any:
    return project_with_key[0]


def trace_points(page: Page, chart: str, name: str, selector: str) -> int:
    """How many marks (`selector`) plotly drew for the trace called `name` in #chart: the trace's
    group is found through the data plotly binds to it, not by position."""
    return int(
        page.evaluate(
            """([chart, name, selector]) => {
                const groups = [...document.querySelectorAll(`#${chart} .cartesianlayer .trace`)];
                const group = groups.find((g) => g.__data__ && g.__data__[0].trace.name === name);
                return group ? group.querySelectorAll(selector).length : -1;
            }""",
            [chart, name, selector],
        )
    )


def point_centre(page: Page, chart: str, name: str) -> dict[str, float]:
    return dict(
        page.evaluate(
            """([chart, name]) => {
                const groups = [...document.querySelectorAll(`#${chart} .cartesianlayer .trace`)];
                const group = groups.find((g) => g.__data__ && g.__data__[0].trace.name === name);
                const box = group.querySelector("path.point").getBoundingClientRect();
                return {x: box.x + box.width / 2, y: box.y + box.height / 2};
            }""",
            [chart, name],
        )
    )


def test_the_sequence_diagram_draws_arrows_marks_the_dead_letter_and_opens_it(
    watched_page: Page, live_server: Any, project: Any
) -> None:
    page = watched_page
    start = timezone.now() - timedelta(minutes=5)
    session = make_session(project, started_at=start, agents=("attacker", "target", "judge"))
    make_message(session, message_id="m1", sender="attacker", receivers=["target"], at=start)
    make_message(
        session,
        message_id="m2",
        sender="target",
        receivers=["judge"],
        causation_id="m1",
        at=start + timedelta(seconds=1),
    )
    dead = make_message(
        session,
        message_id="m3",
        sender="judge",
        receivers=["attacker"],
        causation_id="m2",
        status="dead_lettered",
        content=SCRIPT,
        at=start + timedelta(seconds=2),
    )
    MessageEvent.objects.create(
        project=project,
        message=dead,
        client_id="e1",
        stage="dead_lettered",
        at=start + timedelta(seconds=3),
        error_type="MaxRetries",
    )

    page.goto(f"{live_server.url}/sessions/{session.pk}/messages/")
    expect(page.locator("#sequence .xtick text")).to_have_count(3)
    assert trace_points(page, "sequence", "delivered (heads)", "path.point") == 2
    assert trace_points(page, "sequence", "dead-lettered ✕ (heads)", "path.point") == 1
    expect(page.locator("#sequence .legendtext", has_text="dead-lettered ✕")).to_have_count(1)

    head = point_centre(page, "sequence", "dead-lettered ✕ (heads)")
    page.mouse.move(head["x"], head["y"])
    expect(page.locator("#sequence .hoverlayer")).to_contain_text(SCRIPT)
    page.mouse.click(head["x"], head["y"])
    panel = page.locator("#message-detail .message-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".lifecycle")).to_contain_text("dead_lettered")
    expect(panel.locator(".lifecycle")).to_contain_text("MaxRetries")
    expect(panel.locator("pre.message-content")).to_have_text(SCRIPT)
    expect(panel.locator(".chain li.ancestor")).to_have_count(2)

    # The agents page lists them by name; the judge's page has its instance, messages and chart.
    refresh_project(project.pk, since=start - timedelta(days=1), now=timezone.now())
    page.goto(f"{live_server.url}/agents/?range=7d")
    rows = page.locator("table.agents tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.locator("svg.sparkline")).to_have_count(3)
    page.locator("table.agents a.row-title", has_text="judge").click()
    expect(page.locator("h1")).to_have_text("judge")
    expect(page.locator("table.instances tbody tr")).to_have_count(1)
    expect(page.locator("table.instances")).to_contain_text(session.external_id[:20])
    expect(page.locator("#agent-daily .cartesianlayer .trace.bars")).to_have_count(1)
    sent_and_received = page.locator(".table-card").last.locator("tbody tr")
    expect(sent_and_received).to_have_count(2)
    expect(sent_and_received.first).to_contain_text("dead_lettered")
    expect(sent_and_received.first).to_contain_text(SCRIPT)  # shown as text, never run


def test_a_session_with_5000_messages_shows_a_window_and_moves_through_it(
    watched_page: Page, live_server: Any, project: Any
) -> None:
    """Bench: bench/messages_bench.py prints the server time of this page."""
    page = watched_page
    start = timezone.now() - timedelta(hours=2)
    session = make_session(project, started_at=start)
    agents = ["planner", "coder", "critic", "tester", "reviewer"]
    rows = Message.objects.bulk_create(
        Message(
            project=project,
            session=session,
            message_id=f"m{n}",
            sender=agents[n % 5],
            receivers=[agents[(n + 1) % 5]],
            status="failed" if n % 97 == 0 else "processed",
            started_at=start + timedelta(milliseconds=250 * n),
            preview=f"message {n}",
        )
        for n in range(5000)
    )
    MessageContent.objects.bulk_create(MessageContent(message=m, content=m.preview) for m in rows)

    page.goto(f"{live_server.url}/sessions/{session.pk}/messages/")
    expect(page.locator(".sequence-card h2")).to_have_text("Messages 1\u2013200 of 5000")
    assert trace_points(page, "sequence", "delivered (heads)", "path.point") == 197
    assert trace_points(page, "sequence", "failed ✕ (heads)", "path.point") == 3
    expect(page.locator("[data-chart='chart-overview'] .bars path")).not_to_have_count(0)
    page.get_by_role("link", name="Later →").click()
    expect(page.locator(".sequence-card h2")).to_have_text("Messages 201\u2013400 of 5000")
    page.select_option("select[name=start]", "4800")
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".sequence-card h2")).to_have_text("Messages 4801\u20135000 of 5000")
    assert trace_points(page, "sequence", "delivered (heads)", "path.point") > 190


def test_the_workflow_timeline_marks_the_critical_path(
    watched_page: Page, live_server: Any, project: Any
) -> None:
    page = watched_page
    start = timezone.now() - timedelta(minutes=5)
    session = make_session(project, started_at=start)
    workflow = make_workflow(
        session,
        name=SCRIPT,
        at=start,
        steps=[
            ("plan", 0, 1, []),
            ("search", 1, 3, ["plan"]),
            ("code", 1, 6, ["plan"]),
            ("review", 7, 8, ["search", "code"]),
        ],
    )
    page.goto(f"{live_server.url}/workflows/{workflow.pk}/")
    expect(page.locator("h1")).to_have_text(SCRIPT)
    assert trace_points(page, "gantt", "critical path", "path") == 3
    assert trace_points(page, "gantt", "ok", "path") == 4
    assert trace_points(page, "gantt", "wait", "path") == 1
    expect(page.locator("tr.step-row.critical")).to_have_count(3)
    expect(page.locator("tr.step-row:not(.critical)")).to_contain_text("search")
    page.get_by_role("link", name="lanes per step").click()
    expect(page.locator("#gantt .ytick text")).to_have_count(4)
