"""The page comparing two sessions side by side (analytics/session_comparison.py), and the three
ways to open it: two sessions picked on the list, "compare with…" on a session page, and a test
result against its last passing run's session.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from analytics import queries
from analytics.session_comparison import STEP_LIMIT
from dashboard.pages import object_nav, session_or_404
from ingest.models import Session, TestResult

# Sessions offered on the "compare with…" list.
CANDIDATE_LIMIT = 30
SESSION_NUMBER = "a session number (as in /sessions/<number>/)"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _compare_url(a: Session | int, b: Session | int) -> str:
    a_pk, b_pk = (s.pk if isinstance(s, Session) else s for s in (a, b))
    return f"{reverse('dashboard:session-compare')}?a={a_pk}&b={b_pk}"


class _BadParameter(Exception):
    """A query parameter that is not what the page needs; answered 400 naming it."""


def _bad_request(error: _BadParameter) -> HttpResponse:
    return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")


def _number_param(request: HttpRequest, name: str, what: str) -> int | None:
    value = request.GET.get(name, "")
    if not value:
        return None
    if not value.isascii() or not value.isdecimal() or len(value) > 18:
        raise _BadParameter(f"{name}: {what}, got {value[:40]!r}")
    return int(value)


@login_required
@require_GET
def session_compare(request: HttpRequest) -> HttpResponse:
    """`?a=<pk>&b=<pk>`: the comparison; `?a=` alone: the sessions to compare it with;
    `?pick=<pk>&pick=<pk>` (the list's checkboxes) and `?result=<pk>` lead to a comparison."""
    try:
        if "pick" in request.GET:
            return _compare_picked(request)
        if "result" in request.GET:
            return _compare_with_last_pass(request)
        a_pk = _number_param(request, "a", SESSION_NUMBER)
        b_pk = _number_param(request, "b", SESSION_NUMBER)
    except _BadParameter as error:
        return _bad_request(error)
    if a_pk is None:
        messages.info(request, "Tick two sessions and press Compare to see them side by side.")
        return redirect("dashboard:session-list")
    a = session_or_404(request, a_pk)
    if b_pk is None:
        return _candidates(request, a)
    b = session_or_404(request, b_pk)
    context = {"nav": object_nav(request, b.project), **_comparison_context(a, b)}
    return render(request, "dashboard/session_compare.html", context)


def _comparison_context(a: Session, b: Session) -> dict[str, Any]:
    comparison = queries.session_comparison(a, b, step_limit=STEP_LIMIT)
    first = comparison.steps.first_divergence
    return {
        "a": a,
        "b": b,
        "sides": [("a", a), ("b", b)],
        "comparison": comparison,
        # Per row, " diff" for each differing field: a page of 2,000 rows asks 16,000 times.
        "step_rows": [
            (row, defaultdict(str, dict.fromkeys(row.differing_fields, " diff")))
            for row in comparison.steps.rows
        ],
        # Span links are built by concatenation: reverse() for 4,000 cells was an eighth of
        # the page's time.
        "a_spans_url": _spans_url(a),
        "b_spans_url": _spans_url(b),
        "first_row": comparison.steps.rows[first] if first is not None else None,
        "first_number": first + 1 if first is not None else None,
        "swap_url": _compare_url(b, a),
    }


def _spans_url(session: Session) -> str:
    return reverse("dashboard:span-detail", args=[session.pk, 0]).removesuffix("0/")


def _candidates(request: HttpRequest, a: Session) -> HttpResponse:
    test_id, test_runs = queries.sessions_of_same_test(a, limit=CANDIDATE_LIMIT)
    context = {
        "nav": object_nav(request, a.project),
        "a": a,
        "candidates": queries.sessions_named_like(a, limit=CANDIDATE_LIMIT),
        "test_id": test_id,
        "test_runs": test_runs,
    }
    return render(request, "dashboard/session_compare_pick.html", context)


def _compare_picked(request: HttpRequest) -> HttpResponse:
    """Two ticked sessions (or a session and one offered to compare it with): the one that
    started first is A, the baseline."""
    picked = request.GET.getlist("pick")
    if len(picked) != 2 or not all(p.isascii() and p.isdecimal() for p in picked):
        messages.warning(request, f"Tick exactly two sessions to compare ({len(picked)} ticked).")
        return redirect("dashboard:session-list")
    first, second = sorted((session_or_404(request, int(p)) for p in picked), key=_start_order)
    return redirect(_compare_url(first, second))


def _start_order(session: Session) -> tuple[bool, datetime, int]:
    return (session.started_at is None, session.started_at or EPOCH, session.pk)


def _compare_with_last_pass(request: HttpRequest) -> HttpResponse:
    """A test result's session (B) against the session of the test's last passing result on
    the same branch before it (A)."""
    pk = _number_param(request, "result", "a test result number (as in /tests/results/<n>/)")
    if pk is None:
        raise _BadParameter("result: required, a test result number")
    projects = queries.projects_for_user(request.user)
    result = get_object_or_404(
        TestResult.objects.filter(project__in=projects).select_related("run"), pk=pk
    )
    back = redirect("dashboard:test-result-detail", result.pk)
    passing = queries.last_passing_result(result)
    if passing is None:
        messages.warning(request, "This test has no earlier passing run on its branch.")
        return back
    found = queries.session_pks_by_external_id(
        result.project_id, [*result.session_ids[:1], *passing.session_ids[:1]]
    )
    failing_pk = found.get(result.session_ids[0]) if result.session_ids else None
    passing_pk = found.get(passing.session_ids[0]) if passing.session_ids else None
    if failing_pk is None or passing_pk is None:
        which = "this result" if failing_pk is None else "the last passing result"
        messages.warning(request, f"No session of {which} was received: nothing to compare.")
        return back
    return redirect(_compare_url(passing_pk, failing_pk))
