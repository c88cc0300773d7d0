"""The score form in headless Chromium: a member thumbs a session down with a comment, scores a
span with a number, and sees both on the pages, escaped; the audit log has each."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ingest.models import AuditEntry, Score
from tests.builders import make_session

pytestmark = pytest.mark.e2e

SCRIPT = "<script>alert(1)</script>"


def test_a_member_thumbs_a_session_down_and_scores_a_span(
    watched_page: Page, live_server: Any, project_with_key: tuple[Any, str]
) -> None:
    project, _ = project_with_key
    session = make_session(project, name="refund chat", spans=2)
    page = watched_page
    page.goto(f"{live_server.url}/sessions/{session.pk}/")
    card = page.locator("#scores")
    expect(card).to_contain_text("No scores yet.")

    card.locator("textarea[name=comment]").fill(f"promised a refund it cannot give {SCRIPT}")
    card.get_by_role("button", name="👎 Down").click()

    expect(page.locator(".messages, .message").first).to_contain_text("Saved your score")
    row = page.locator("#scores .score").first
    expect(row).to_contain_text("user feedback")
    expect(row).to_contain_text("👎 no")
    expect(row).to_contain_text(f"promised a refund it cannot give {SCRIPT}")  # shown as text
    expect(row).to_contain_text("human")

    span = session.spans.order_by("started_at").first()
    assert span is not None
    page.goto(f"{live_server.url}/sessions/{session.pk}/spans/{span.pk}/")
    form = page.locator("form.score-number")
    form.locator("input[name=name]").fill("accuracy")
    form.locator("input[name=value]").fill("2.5")
    form.get_by_role("button", name="Save score").click()
    expect(page.locator("#scores .score")).to_contain_text("accuracy")
    expect(page.locator("#scores .score")).to_contain_text("2.5")

    # Scoring the span again changes the person's score instead of adding one.
    form = page.locator("form.score-number")
    form.locator("input[name=name]").fill("accuracy")
    form.locator("input[name=value]").fill("4")
    form.get_by_role("button", name="Save score").click()
    expect(page.locator("#scores .score")).to_have_count(1)
    expect(page.locator("#scores .score")).to_contain_text("4")

    stored = Score.objects.filter(session=session).order_by("created_at")
    assert [(s.name, s.shown_value, s.source, bool(s.span_id)) for s in stored] == [
        ("user feedback", "false", "human", False),
        ("accuracy", "4", "human", True),
    ]
    assert AuditEntry.objects.filter(project=project, action="score.save").count() == 3
    # The session page lists the span's score too.
    page.goto(f"{live_server.url}/sessions/{session.pk}/")
    expect(page.locator("#scores .score")).to_have_count(2)


def test_a_member_deletes_their_own_score_but_sees_no_delete_on_another_s(
    watched_page: Page, live_server: Any, project_with_key: tuple[Any, str], admin_user: Any
) -> None:
    from ingest.models import Membership

    project, _ = project_with_key
    Membership.objects.filter(user=admin_user, project=project).update(role="member")
    session = make_session(project, name="refund chat", spans=2)
    assert session.started_at is not None
    Score.objects.create(
        project=project,
        session=session,
        client_id="ann-judged",
        name="tone",
        data_type="categorical",
        label="rude",
        source="human",
        author="ann",
        created_at=session.started_at,
    )
    page = watched_page
    page.goto(f"{live_server.url}/sessions/{session.pk}/")
    page.locator("#scores").get_by_role("button", name="👍 Up").click()
    expect(page.locator("#scores .score")).to_have_count(2)

    delete = page.locator("#scores").get_by_role("button", name="Delete score")
    expect(delete).to_have_count(1)
    expect(page.get_by_role("button", name="Delete score tone")).to_have_count(0)
    page.get_by_role("button", name="Delete score user feedback").click()

    expect(page.locator(".messages, .message").first).to_contain_text("Deleted the score")
    expect(page.locator("#scores .score")).to_have_count(1)
    expect(page.locator("#scores .score")).to_contain_text("rude")
    assert list(Score.objects.values_list("client_id", flat=True)) == ["ann-judged"]
    assert AuditEntry.objects.filter(project=project, action="score.delete").count() == 1
