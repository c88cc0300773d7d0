"""The dashboard in headless Chromium against the live server: what a user sees and clicks.

Every test fails on a console error, an uncaught page error or any dialog (an `alert(1)` from
agent text would be one).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from ingest.models import Session, Span, SpanPayload, TranscriptLine
from tests.builders import make_rejection, make_session
from tests.waiting import DEADLINE_MS as WAIT_MS

pytestmark = pytest.mark.e2e

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture
def project(project_with_key: tuple[Any, str]) -> Any:
    return project_with_key[0]


def debate(project: Any, **extra: Any) -> Session:
    """A session whose spans form a tree (span-1..3 under span-0) and whose texts carry <script>."""
    session = make_session(
        project,
        name=f"{SCRIPT} debate",
        spans=4,
        llm_spans=2,
        failed=1,
        started_at=timezone.now() - timedelta(minutes=5),
        transcript=(
            ("user", "Who won?"),
            ("agent", "planner started"),
            ("llm", "calling gpt-4o"),
            ("assistant", SCRIPT),
        ),
        **extra,
    )
    session.spans.exclude(span_id="span-0").update(parent_span_id="span-0")
    session.spans.filter(span_id="span-1").update(name=SCRIPT)
    SpanPayload.objects.filter(span__session=session, span__span_id="span-1").update(
        params={"question": SCRIPT}
    )
    return session


def test_a_user_reads_the_sessions_a_waterfall_its_spans_and_the_stream(
    watched_page: Page, live_server: Any, project: Any
) -> None:
    page = watched_page
    session = debate(project)
    script_span = session.spans.get(span_id="span-1")

    page.goto(f"{live_server.url}/sessions/")
    title = page.locator("a.row-title")
    expect(title).to_have_text(f"{SCRIPT} debate")
    title.click()

    expect(page).to_have_url(re.compile(rf"/sessions/{session.pk}/$"))
    bars = page.locator("#waterfall g.trace.bars path")
    expect(bars).to_have_count(4)
    expect(page.locator("#waterfall .annotation-text").nth(1)).to_contain_text(SCRIPT)

    page.locator(f'#span-tree [data-span-pk="{script_span.pk}"]').click()
    expect(page.locator("#span-detail .span-title")).to_have_text(SCRIPT)
    expect(page.locator("#span-detail pre.json").first).to_contain_text(SCRIPT)

    # One trace per kind, in the order action (span-3), llm (span-0, span-1), tool (span-2).
    bar = page.locator("#waterfall g.trace.bars path").nth(2)
    box = bar.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#waterfall .hoverlayer")).to_contain_text(SCRIPT)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#span-detail .span-title")).to_have_text(SCRIPT)

    expect(page.locator(".chat-msg.role-assistant .bubble-text")).to_have_text(SCRIPT)
    expect(page.locator(".status-line.role-llm")).to_have_text(re.compile("calling gpt-4o"))
    page.click('[data-role-toggle="llm"]')
    expect(page).to_have_url(re.compile(r"\?hide=llm#stream$"))
    expect(page.locator(".status-line.role-llm")).to_have_count(0)
    expect(page.get_by_text("planner started")).to_be_visible()
    page.click('[data-role-toggle="llm"]')
    expect(page).not_to_have_url(re.compile("hide="))
    expect(page.locator(".status-line.role-llm")).to_have_count(1)


def test_a_session_with_two_rounds_lists_them_and_a_round_filters_the_waterfall(
    watched_page: Page, live_server: Any, project: Any
) -> None:
    page = watched_page
    first, second = "a1" * 16, "b2" * 16
    session = make_session(
        project,
        name="trip planner",
        spans=5,
        llm_spans=2,
        trace_ids=(first, second),  # spans 0-2 in the first round, 3-4 in the second
        started_at=timezone.now() - timedelta(minutes=5),
        transcript=(
            ("user", "Plan a weekend in Rome", first),
            ("log", "$ fetch-weather rome --days 2", first),
            ("assistant", "Rome it is: sunny both days.", first),
            ("user", f"And hotels? {SCRIPT}", second),
            ("assistant", "Hotel Roma has rooms.", second),
        ),
    )
    odd = session.spans.get(span_id="span-3")
    Span.objects.filter(pk=odd.pk).update(is_cost_estimated=True, cost=0.002)
    SpanPayload.objects.filter(span=odd).update(
        attributes={"observatory.kind": "guardrail", "vendor.note": IMG, "vendor.n": 3},
        unmapped_keys=["vendor.note", "vendor.n"],
    )

    page.goto(f"{live_server.url}/sessions/{session.pk}/")
    rounds = page.locator("#rounds .round")
    expect(rounds).to_have_count(2)
    expect(rounds.nth(0)).to_contain_text("Plan a weekend in Rome")
    expect(rounds.nth(0)).to_contain_text("Rome it is: sunny both days.")
    expect(rounds.nth(1)).to_contain_text(f"And hotels? {SCRIPT}")
    expect(page.locator(".status-line.role-log")).to_have_text(re.compile("fetch-weather"))
    bars = page.locator("#waterfall g.trace.bars path")
    expect(bars).to_have_count(5)

    rounds.nth(1).locator("a.round-link").click()
    expect(page).to_have_url(re.compile(rf"\?trace={second}#trace$"))
    expect(bars).to_have_count(2)
    expect(page.locator("#rounds .round.selected")).to_contain_text("Round 2")
    expect(page.locator("#span-tree .detailed-kind")).to_have_text("guardrail")

    page.locator(f'#span-tree [data-span-pk="{odd.pk}"]').click()
    unmapped = page.locator("#span-detail details.unmapped")
    expect(unmapped.locator("summary")).to_have_text("Unmapped attributes 2")
    expect(unmapped.locator("dd").first).not_to_be_visible()  # collapsed until asked
    expect(page.locator("#span-detail .estimated")).to_have_attribute(
        "title", "computed from the model price table"
    )
    unmapped.locator("summary").click()
    expect(unmapped.locator("pre").first).to_have_text(IMG)

    page.click('[data-role-toggle="log"]')
    expect(page).to_have_url(re.compile(rf"trace={second}&hide=log#stream$"))
    expect(page.locator(".status-line.role-log")).to_have_count(0)
    expect(bars).to_have_count(2)
    page.click("text=Show all rounds")
    expect(bars).to_have_count(5)


def test_filters_and_sorting_update_the_rows_in_place_and_the_url(
    watched_page: Page, live_server: Any, project: Any
) -> None:
    page = watched_page
    make_session(project, name="calm", spans=1)
    make_session(project, name="broken", spans=3, failed=1, end_state="fail")

    page.goto(f"{live_server.url}/sessions/")
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("a.row-title")).to_have_count(2)
    page.select_option("select[name=end_state]", "fail")
    expect(page.locator("a.row-title")).to_have_text(["broken"])
    expect(page).to_have_url(re.compile(r"end_state=fail"))
    page.select_option("select[name=end_state]", "")
    expect(page.locator("a.row-title")).to_have_count(2)
    page.click("th >> text=Events")
    expect(page.locator("a.row-title")).to_have_text(["broken", "calm"])
    expect(page).to_have_url(re.compile(r"ordering=-event_count"))
    page.click("th >> text=Events")
    expect(page.locator("a.row-title")).to_have_text(["calm", "broken"])
    export = page.locator("text=Export CSV")
    expect(export).to_have_attribute("href", re.compile(r"ordering=event_count.*format=csv"))
    page.fill("#f-q", "bro")  # the sort order survives a filter change
    expect(page.locator("a.row-title")).to_have_text(["broken"])
    expect(page).to_have_url(re.compile(r"q=bro.*ordering=event_count|ordering=event_count.*q=bro"))
    assert page.evaluate("window.stillTheSamePage") is True


def test_collapsing_a_subtree_hides_its_bars(
    watched_page: Page, live_server: Any, project: Any
) -> None:
    page = watched_page
    session = debate(project)

    page.goto(f"{live_server.url}/sessions/{session.pk}/")
    bars = page.locator("#waterfall g.trace.bars path")
    expect(bars).to_have_count(4)
    page.click('[data-tree-action="collapse"]')
    expect(bars).to_have_count(1)
    page.click('[data-tree-action="expand"]')
    expect(bars).to_have_count(4)


def test_a_running_sessions_stream_shows_new_lines_without_a_reload_and_stops_when_it_ends(
    watched_page: Page, live_server: Any, project: Any
) -> None:
    page = watched_page
    session = make_session(project, end_state="running", transcript=(("user", "Go"),))

    page.goto(f"{live_server.url}/sessions/{session.pk}/?hide=llm")
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("#live-badge .live")).to_be_visible()
    for i, (role, text) in enumerate([("llm", "hidden llm line"), ("assistant", SCRIPT)]):
        TranscriptLine.objects.create(
            project=project,
            session=session,
            client_id=f"tail-{i}",
            role=role,
            text=text,
            at=timezone.now(),
        )

    expect(page.locator(".chat-msg.role-assistant .bubble-text")).to_have_text(
        SCRIPT, timeout=WAIT_MS
    )
    expect(page.get_by_text("hidden llm line")).to_have_count(0)
    assert page.evaluate("window.stillTheSamePage") is True

    Session.objects.filter(pk=session.pk).update(end_state=Session.EndState.SUCCESS)
    expect(page.locator("#live-badge .live")).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator("#stream-poller")).not_to_have_attribute("hx-trigger", re.compile("."))


def test_the_overview_and_ingest_problems_pages_render_cleanly(
    watched_page: Page, live_server: Any, project: Any
) -> None:
    page = watched_page
    debate(project)
    rejection = make_rejection(project, raw=f'{{"type": "event", "name": "{SCRIPT}"}}')

    page.goto(f"{live_server.url}/?range=24h")
    for chart in ("chart-activity", "chart-latency", "chart-cost"):
        expect(page.locator(f'[data-chart="{chart}"] .main-svg').first).to_be_visible()
    expect(page.locator(".kpi-value").first).to_have_text("1")

    page.click("text=Ingest problems")
    expect(page).to_have_url(re.compile(r"/ingest-problems/$"))
    page.locator(f"#problem-{rejection.pk} + tr summary").click()
    expect(page.locator(f"#problem-{rejection.pk} + tr pre.raw")).to_contain_text(SCRIPT)
    expect(page.locator(f"#raw-{rejection.pk}")).to_have_value(re.compile(re.escape(SCRIPT)))


def test_span_names_show_as_text_in_chart_labels_and_the_page_has_no_injected_script(
    watched_page: Page, live_server: Any, project: Any
) -> None:
    page = watched_page
    session = debate(project)
    Span.objects.filter(session=session).update(model=SCRIPT)

    page.goto(f"{live_server.url}/sessions/{session.pk}/")

    expect(page.locator("#waterfall g.trace.bars path")).to_have_count(4)
    injected = page.evaluate(
        "Array.from(document.scripts).filter(s => s.textContent.includes('alert(1)')"
        " && s.type !== 'application/json').length"
    )
    assert injected == 0


def test_the_search_box_on_the_sessions_page_finds_what_an_agent_said_and_opens_the_span(
    watched_page: Page, live_server: Any, project: Any
) -> None:
    from analytics.search_index import index_sessions

    page = watched_page
    session = debate(project)
    promised = session.spans.get(span_id="span-2")
    SpanPayload.objects.filter(span=promised).update(
        completion=f"{SCRIPT} We promised the customer a full refund by Friday."
    )
    index_sessions([session.pk])

    page.goto(f"{live_server.url}/sessions/")
    box = page.get_by_role("searchbox", name="Search what agents said")
    box.fill('"full refund" -coupon')
    box.press("Enter")

    expect(page).to_have_url(re.compile(r"/search/\?q=%22full\+refund%22\+-coupon$"))
    hit = page.locator(".search-hit")
    expect(hit).to_have_count(1)
    expect(hit.locator("mark")).to_have_text(["full", "refund"])
    expect(hit.locator(".badge")).to_have_text("completion")
    expect(hit.locator(".snippet")).to_contain_text("promised the customer")
    hit.locator("a.hit-link").click()

    expect(page).to_have_url(re.compile(rf"/sessions/{session.pk}/spans/{promised.pk}/$"))
    expect(page.locator(".span-detail")).to_contain_text("full refund by Friday")
