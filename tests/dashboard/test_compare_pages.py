"""The session comparison page and the ways to it, through Django's test client."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ingest.models import Session, TestResult
from tests.builders import (
    T0,
    make_compared_pair,
    make_message,
    make_project,
    make_session,
    make_span,
    make_test_history,
)

pytestmark = pytest.mark.django_db

COMPARE = reverse("dashboard:session-compare")
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def compare_url(a: Session, b: Session) -> str:
    return f"{COMPARE}?a={a.pk}&b={b.pk}"


def test_the_page_aligns_the_steps_and_marks_the_first_divergence(
    logged_in: Client, project: Any
) -> None:
    a, b = make_compared_pair(project)

    response = logged_in.get(compare_url(a, b))

    assert response.status_code == 200
    rows = response.context["comparison"].steps.rows
    assert [row.operation for row in rows] == ["same", "inserted", "same", "changed", "same"]
    page = response.content.decode()
    assert 'href="#step-2" class="first-divergence-link"' in page
    assert 'id="step-2" class="step-row op-inserted first-divergence"' in page
    assert "search timed out after 30 s" in page
    # The judge's model differs, highlighted on both sides, with links to each span.
    assert 'class="chip model f-model diff">gpt-4o-mini<' in page
    judge_a, judge_b = rows[3].a, rows[3].b
    assert judge_a is not None and judge_b is not None
    assert reverse("dashboard:span-detail", args=[a.pk, judge_a.pk]) in page
    assert reverse("dashboard:span-detail", args=[b.pk, judge_b.pk]) in page
    assert "attacker-injection breached" in page and "No breach" in page  # outputs differ
    assert 'class="legend compare-legend"' in page


def test_the_totals_show_that_b_failed_more_and_took_longer(
    logged_in: Client, project: Any
) -> None:
    a, b = make_compared_pair(project)

    page = logged_in.get(compare_url(a, b)).content.decode()

    errors = page.split('class="total-errors"')[1].split("</tr>")[0]
    assert '<td class="num">0</td><td class="num worse">1</td>' in errors
    assert 'class="total-duration_ms"' in page


def test_agent_text_is_escaped_everywhere_on_the_page(logged_in: Client, project: Any) -> None:
    a, b = make_compared_pair(project, name=SCRIPT, judge_prompt=SCRIPT)
    make_span(b, kind="llm", name=SCRIPT, error_message=SCRIPT, status="error")
    make_message(a, sender="planner", receivers=["coder"], content=SCRIPT)

    page = logged_in.get(compare_url(a, b)).content.decode()

    assert SCRIPT not in page
    assert ESCAPED in page


def test_the_message_sequences_are_side_by_side_by_agent_name(
    logged_in: Client, project: Any
) -> None:
    a = make_session(project, agents=("planner", "coder"))
    b = make_session(project, agents=("planner", "coder"), started_at=T0 + timedelta(hours=1))
    for session in (a, b):
        make_message(session, sender="agent-1", receivers=["agent-2"], content="write it")
    make_message(b, sender="agent-2", receivers=["agent-1"], content="done", status="failed")

    response = logged_in.get(compare_url(a, b))

    rows = response.context["comparison"].messages
    assert [row.operation for row in rows] == ["same", "inserted"]
    page = response.content.decode()
    assert "planner → coder" in page and "coder → planner" in page


def test_big_sessions_are_cut_at_the_step_limit_and_the_page_says_so(
    logged_in: Client, project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dashboard.views_compare.STEP_LIMIT", 3)
    a = make_session(project, spans=5)
    b = make_session(project, spans=2)

    response = logged_in.get(compare_url(a, b))

    assert len(response.context["comparison"].steps.rows) == 3
    assert "Only the first 3 steps and messages of each session are compared" in (
        response.content.decode()
    )


def test_bad_or_foreign_session_numbers_are_refused(logged_in: Client, project: Any) -> None:
    a = make_session(project)
    other = make_session(make_project(name="Other")[0])

    bad = logged_in.get(f"{COMPARE}?a={a.pk}&b=x1")
    foreign = logged_in.get(compare_url(a, other))

    assert bad.status_code == 400
    assert bad.content.decode().startswith("b: a session number")
    assert bad["Content-Type"].startswith("text/plain")
    assert foreign.status_code == 404


def test_two_ticked_sessions_open_with_the_older_one_as_a(logged_in: Client, project: Any) -> None:
    older = make_session(project, started_at=T0)
    newer = make_session(project, started_at=T0 + timedelta(days=1))

    response = logged_in.get(f"{COMPARE}?pick={newer.pk}&pick={older.pk}")
    one = logged_in.get(f"{COMPARE}?pick={newer.pk}", follow=True)

    assert response.status_code == 302
    assert response["Location"] == compare_url(older, newer)
    assert "Tick exactly two sessions to compare (1 ticked)." in one.content.decode()


def test_the_sessions_list_has_checkboxes_for_the_compare_form(
    logged_in: Client, project: Any
) -> None:
    session = make_session(project, name="round")

    page = logged_in.get(reverse("dashboard:session-list")).content.decode()

    assert f'name="pick" value="{session.pk}" form="compare-form"' in page
    assert f'id="compare-form" class="compare-form" method="get" action="{COMPARE}"' in page


def test_a_session_page_offers_sessions_of_the_same_name(logged_in: Client, project: Any) -> None:
    a, b = make_compared_pair(project)
    make_session(project, name="something else")

    detail = logged_in.get(reverse("dashboard:session-detail", args=[b.pk])).content.decode()
    pick = logged_in.get(f"{COMPARE}?a={b.pk}")

    assert f'href="{COMPARE}?a={b.pk}"' in detail
    assert [s.pk for s in pick.context["candidates"]] == [a.pk]
    assert f"?pick={b.pk}&amp;pick={a.pk}" in pick.content.decode()


def test_compare_with_last_pass_opens_the_last_passing_runs_session_as_a(
    logged_in: Client, project: Any
) -> None:
    passing, failing = make_compared_pair(project)
    make_test_history(project, {"t::test_arena": "PPF"})
    results = list(TestResult.objects.order_by("run__started_at"))
    for result, session in zip(results, (None, passing, failing), strict=True):
        result.session_ids = [session.external_id] if session else ["never-received"]
        result.save()

    response = logged_in.get(f"{COMPARE}?result={results[2].pk}")

    assert response.status_code == 302
    assert response["Location"] == compare_url(passing, failing)


def test_compare_with_last_pass_says_why_when_there_is_nothing_to_compare(
    logged_in: Client, project: Any
) -> None:
    make_test_history(project, {"t::test_arena": "FF"}, sessions={"t::test_arena": ["s1"]})
    failing = TestResult.objects.order_by("run__started_at").last()
    assert failing is not None

    response = logged_in.get(f"{COMPARE}?result={failing.pk}", follow=True)

    assert response.redirect_chain[-1][0] == reverse(
        "dashboard:test-result-detail", args=[failing.pk]
    )
    assert "This test has no earlier passing run on its branch." in response.content.decode()


def test_the_regressions_page_links_a_regression_with_sessions_to_the_comparison(
    logged_in: Client, project: Any
) -> None:
    make_test_history(
        project,
        {"t::with_session": "PPF", "t::without": "PPF"},
        started_at=T0,
        sessions={"t::with_session": ["s-1"]},
    )
    failing = TestResult.objects.get(test_id="t::with_session", outcome="fail")

    page = logged_in.get(reverse("dashboard:tests-regressions")).content.decode()

    assert f'href="{COMPARE}?result={failing.pk}"' in page
    assert page.count("compare with last pass</a>") == 1


def test_a_session_a_test_produced_offers_the_sessions_of_the_tests_other_runs(
    logged_in: Client, project: Any
) -> None:
    passing, failing = make_compared_pair(project)
    make_test_history(project, {"t::test_arena": "PF", "t::other": "PP"})
    results = TestResult.objects.filter(test_id="t::test_arena").order_by("run__started_at")
    for result, session in zip(results, (passing, failing), strict=True):
        result.session_ids = [session.external_id]
        result.save()

    response = logged_in.get(f"{COMPARE}?a={failing.pk}")

    assert response.context["test_id"] == "t::test_arena"
    [run] = response.context["test_runs"]
    assert (run["session"], run["outcome"]) == (passing, "pass")
    assert f"?pick={failing.pk}&amp;pick={passing.pk}" in response.content.decode()
