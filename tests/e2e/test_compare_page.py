"""Comparing two sessions in headless Chromium: opened from the regressions page of the demo test
runs in one click, and by ticking two sessions on the list. Fails on any console error or dialog.
"""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from demo.management.commands.seed_test_runs import JUDGE_MODELS, JUDGE_REGRESSION_TEST
from tests.builders import T0, make_compared_pair, make_session

pytestmark = pytest.mark.e2e

SCRIPT = "<script>alert(1)</script>"


def test_compare_with_last_pass_opens_the_demo_regression_in_one_click(
    watched_page: Page, live_server: Any, project_with_key: tuple[Any, str]
) -> None:
    """The demo's test runs, sent to the live server by the seeder itself: the judge scenario
    test that broke three days ago links its failing session to its last passing one."""
    page = watched_page
    _, raw_key = project_with_key
    out = StringIO()
    call_command(
        "seed_test_runs", "--url", live_server.url, "--api-key", raw_key, "--days", "5", stdout=out
    )
    assert "0 rejected, 0 failed batches" in out.getvalue()

    page.goto(f"{live_server.url}/tests/regressions/")
    row = page.locator("table.regressions tr", has_text=JUDGE_REGRESSION_TEST)
    row.get_by_role("link", name="compare with last pass").click()

    expect(page).to_have_url(re.compile(r"/sessions/compare/\?a=\d+&b=\d+$"))
    expect(page.locator("h1")).to_have_text("Compare sessions")
    summary = page.locator(".first-divergence-summary")
    expect(summary).to_contain_text("B ran tool web_fetch (TimeoutError")
    summary.get_by_role("link").click()
    divergent = page.locator("tr.step-row.first-divergence")
    expect(divergent).to_have_class(re.compile(r"\bop-inserted\b"))
    expect(page).to_have_url(re.compile(r"#step-\d+$"))
    expect(divergent).to_contain_text("web_fetch timed out after 30 s")
    verdict = page.locator("tr.step-row", has_text="judge.verdict")
    expect(verdict.locator(".side-a .f-model")).to_have_text(JUDGE_MODELS[0])
    expect(verdict.locator(".side-b .f-model.diff")).to_have_text(JUDGE_MODELS[1])
    expect(verdict.locator(".differences")).to_contain_text("model")


def test_ticking_two_sessions_on_the_list_compares_them_side_by_side(
    watched_page: Page, live_server: Any, project_with_key: tuple[Any, str]
) -> None:
    page = watched_page
    project, _ = project_with_key
    a, b = make_compared_pair(project, name=f"{SCRIPT} round", judge_prompt=SCRIPT)
    make_session(project, name="unrelated", started_at=T0 + timedelta(hours=5))

    page.goto(f"{live_server.url}/sessions/")
    page.get_by_role("checkbox", name=f"Pick {SCRIPT} round to compare").first.check()
    page.get_by_role("checkbox", name=f"Pick {SCRIPT} round to compare").last.check()
    page.get_by_role("button", name="Compare selected").click()

    expect(page).to_have_url(f"{live_server.url}/sessions/compare/?a={a.pk}&b={b.pk}")
    expect(page.locator(".compare-side.side-a .row-title")).to_have_text(f"{SCRIPT} round")
    expect(page.locator("tr.step-row")).to_have_count(5)
    expect(page.locator("tr.step-row.op-changed")).to_have_count(1)
    # Agent text shows as text (a script would have opened a dialog, failing the test).
    expect(page.locator("tr.step-row.op-changed .side-b .f-output")).to_contain_text("No breach")

    page.get_by_label("only differences").check()
    expect(page.locator("tr.step-row:visible")).to_have_count(2)  # the retry and the judge
