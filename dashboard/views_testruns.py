"""Test pages: the tests-by-runs heatmap, runs and run detail, a result's detail, flaky tests,
regressions, pass-rate trends and coverage. Read (analytics.queries), compute (analytics), chart,
render; every page is scoped to the user's current project like the rest of the dashboard."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from analytics import queries
from analytics.coverage import coverage_summary, coverage_table
from analytics.flakiness import flakiness_scores
from analytics.refresh import TEST_ANALYSIS_WINDOWS, TEST_DAY_RANGES
from analytics.regressions import duration_regressions, outcome_regressions
from analytics.testruns import OUTCOMES, duration_trend, outcome_matrix, pass_rate_trend
from analytics.testruns import RESULT_COLUMNS as RESULTS
from dashboard import charts
from dashboard.pages import (
    PAGE_SIZE,
    Nav,
    htmx_partial,
    project_page,
    remember,
    user_projects,
    vary_on_htmx,
)
from ingest.models import TestResult, TestRun

RUN_WINDOWS = (50, 100, 200, 500)
DEFAULT_RUNS = 100
MAX_HEATMAP_TESTS = 500
HISTORY_LENGTH = 40
DAY_RANGES = TEST_DAY_RANGES
DEFAULT_DAYS = 14
COVERAGE_ROWS = 300


@dataclass(frozen=True)
class TestFilters:
    """The filter bar shared by the test pages: tier, suite, branch and a window of runs."""

    __test__ = False  # pytest: not a test class

    tier: str
    suite: str
    branch: str
    runs: int
    days: int

    def query(self, **changes: Any) -> str:
        params = QueryDict(mutable=True)
        values = {**self.__dict__, **changes}
        for name in ("tier", "suite", "branch", "runs", "days"):
            if values[name]:
                params[name] = str(values[name])
        return params.urlencode()


def _filters(request: HttpRequest) -> TestFilters:
    runs, days = request.GET.get("runs", ""), request.GET.get("days", "")
    return TestFilters(
        tier=request.GET.get("tier", "").strip(),
        suite=request.GET.get("suite", "").strip(),
        branch=request.GET.get("branch", "").strip(),
        runs=int(runs) if runs.isdecimal() and int(runs) in RUN_WINDOWS else DEFAULT_RUNS,
        days=int(days) if days.isdecimal() and int(days) in DAY_RANGES else DEFAULT_DAYS,
    )


def _window(
    nav: Nav, filters: TestFilters, *, with_details: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, results) of the newest `filters.runs` runs matching the filters: two queries."""
    runs = queries.test_run_frame(
        nav.project.pk, limit=filters.runs, suite=filters.suite, branch=filters.branch
    )
    return runs, queries.test_result_frame(runs, tier=filters.tier, with_details=with_details)


def _page(nav: Nav, filters: TestFilters, tab: str) -> dict[str, Any]:
    return {
        "nav": nav,
        "filters": filters,
        "tab": tab,
        "choices": queries.test_filter_choices(nav.project.pk),
        "run_windows": RUN_WINDOWS,
        "day_ranges": DAY_RANGES,
    }


@dataclass(frozen=True)
class StoredAnalysis:
    """Whether a page reads the stored test analysis: `window` is the stored window to read, or
    None to compute on request (other filters, or nothing stored yet: `is_computing`)."""

    window: int | None
    computed_at: datetime | None

    @property
    def context(self) -> dict[str, Any]:
        return {
            "analysis_computing": self.computed_at is None,
            "analysis_at": self.computed_at if self.window is not None else None,
        }


def _stored_analysis(nav: Nav, filters: TestFilters, *, by_runs: bool = True) -> StoredAnalysis:
    computed_at = queries.test_analysis_computed_at(nav.project.pk)
    unfiltered = not (filters.tier or filters.suite or filters.branch)
    stored = computed_at is not None and unfiltered
    if by_runs and filters.runs not in TEST_ANALYSIS_WINDOWS:
        stored = False
    return StoredAnalysis(filters.runs if stored else None, computed_at)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


# --- Heatmap -----------------------------------------------------------------------------------


def _run_label(run: Any) -> str:
    commit, branch = (run.commit or "no commit")[:10], run.branch or "no branch"
    return f"{run.run_started_at:%Y-%m-%d %H:%M} · {commit} · {branch} · run {run.run_pk}"


def _tier_order(tier: str) -> tuple[int, str]:
    known = ("unit", "integration", "scenario", "chaos")
    return (known.index(tier) if tier in known else len(known), tier)


def _heatmap_facets(results: pd.DataFrame) -> list[dict[str, Any]]:
    """One heatmap per tier (tiers usually run as separate runs, so one grid of every test by
    every run would be mostly blank), each with its own runs as columns."""
    facets = []
    tiers = sorted(results["tier"].fillna("").unique(), key=_tier_order)
    for tier in tiers:
        rows = results[results["tier"].fillna("") == tier]
        matrix = outcome_matrix(rows, max_tests=MAX_HEATMAP_TESTS)
        labels = [_run_label(run) for run in matrix.runs.itertuples()]
        figure = charts.outcome_heatmap(
            list(matrix.tests["test_id"]), labels, matrix.codes, matrix.result_pks, OUTCOMES
        )
        facets.append(
            {
                "tier": tier,
                "json": charts.figure_json(figure),
                "test_count": rows["test_id"].nunique(),
                "shown_tests": len(matrix.tests),
                "run_count": len(matrix.runs),
            }
        )
    return facets


@login_required
@require_GET
@project_page
def heatmap(request: HttpRequest, nav: Nav) -> HttpResponse:
    filters = _filters(request)
    _, results = _window(nav, filters, with_details=False)
    context = _page(nav, filters, "heatmap") | {
        "facets": _heatmap_facets(results),
        "outcomes": [(o, charts.OUTCOME_COLORS[o]) for o in OUTCOMES],
    }
    return render(request, "dashboard/tests_heatmap.html", context)


# --- Runs ----------------------------------------------------------------------------------------


@login_required
@require_GET
@project_page
def run_list(request: HttpRequest, nav: Nav) -> HttpResponse:
    filters = _filters(request)
    runs = queries.test_runs_for_projects([nav.project.pk])
    for name in ("tier", "suite", "branch"):
        if getattr(filters, name):
            runs = runs.filter(**{name: getattr(filters, name)})
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    export = QueryDict(filters.query(runs=0, days=0), mutable=True)
    export["project"], export["format"] = nav.project.slug, "csv"
    context = _page(nav, filters, "runs") | {
        "page": page,
        "runs": list(page.object_list),
        "export_url": f"{reverse('api:test-run-list')}?{export.urlencode()}",
    }
    return render(request, "dashboard/test_runs.html", context)


def object_nav(request: HttpRequest, project: Any) -> Nav:
    remember(request, project)
    return Nav(user_projects(request), project, reverse("dashboard:tests"))


@login_required
@require_GET
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    visible = queries.test_runs_for_projects(queries.projects_for_user(request.user))
    run = visible.filter(pk=pk).select_related("project").first()
    if run is None:
        raise Http404("No such test run")
    duration = None
    if run.started_at and run.ended_at:
        duration = (run.ended_at - run.started_at).total_seconds() * 1000
    context = {
        "nav": object_nav(request, run.project),
        "run": run,
        "duration_ms": duration,
        "results": queries.test_run_results(run),
        "tab": "runs",
    }
    return render(request, "dashboard/test_run_detail.html", context)


# --- One result ----------------------------------------------------------------------------------


def _linked_sessions(result: TestResult) -> list[dict[str, Any]]:
    pks = queries.session_pks_by_external_id(result.project_id, result.session_ids or [])
    return [{"external_id": sid, "pk": pks.get(sid)} for sid in result.session_ids or []]


@login_required
@require_GET
def result_detail(request: HttpRequest, pk: int) -> HttpResponse:
    result = queries.test_result_with_trace(queries.projects_for_user(request.user), pk)
    if result is None:
        raise Http404("No such test result")
    run: TestRun = result.run
    context = {
        "result": result,
        "run": run,
        "sessions": _linked_sessions(result),
        "history": queries.test_history(result, limit=HISTORY_LENGTH),
        "metrics": sorted((result.metrics or {}).items()),
    }
    if htmx_partial(request):
        return vary_on_htmx(render(request, "dashboard/test_result.html#panel", context))
    context |= {"nav": object_nav(request, run.project), "tab": "heatmap"}
    return vary_on_htmx(render(request, "dashboard/test_result.html", context))


# --- Flaky tests and regressions -----------------------------------------------------------------


def _api_url(name: str, nav: Nav, filters: TestFilters) -> str:
    params = QueryDict(filters.query(days=0), mutable=True)
    params["project"], params["format"] = nav.project.slug, "csv"
    return f"{reverse(name)}?{params.urlencode()}"


@login_required
@require_GET
@project_page
def flaky(request: HttpRequest, nav: Nav) -> HttpResponse:
    filters = _filters(request)
    stored = _stored_analysis(nav, filters)
    if stored.window is not None:
        scores = queries.stored_flaky_frame(nav.project.pk, stored.window)
    else:
        scores = flakiness_scores(_window(nav, filters)[1])
    context = (
        _page(nav, filters, "flaky")
        | stored.context
        | {
            "flaky": _records(scores[scores["is_flaky"].astype(bool)]),
            "watch": _records(scores[~scores["is_flaky"].astype(bool) & (scores["flips"] > 0)]),
            "export_url": _api_url("api:flaky-test-list", nav, filters),
        }
    )
    return render(request, "dashboard/tests_flaky.html", context)


@login_required
@require_GET
@project_page
def regressions(request: HttpRequest, nav: Nav) -> HttpResponse:
    filters = _filters(request)
    stored = _stored_analysis(nav, filters)
    if stored.window is not None:
        found = queries.stored_regression_frame(nav.project.pk, stored.window)
        slower = queries.stored_duration_frame(nav.project.pk, stored.window)
    else:
        results = _window(nav, filters)[1]
        found, slower = outcome_regressions(results), duration_regressions(results)
    regressions = _records(found)
    context = (
        _page(nav, filters, "regressions")
        | stored.context
        | {
            "regressions": regressions,
            # Rows whose first failing result names a session get "compare with last pass".
            "with_sessions": queries.results_with_sessions(
                [
                    row["first_failing_result_pk"]
                    for row in regressions
                    if row["first_failing_result_pk"]
                ]
            ),
            "slower": _records(slower),
            "export_url": _api_url("api:test-regression-list", nav, filters),
            "slower_export_url": _api_url("api:test-duration-regression-list", nav, filters),
        }
    )
    return render(request, "dashboard/tests_regressions.html", context)


# --- Trends and coverage -------------------------------------------------------------------------


def _days_window(nav: Nav, filters: TestFilters) -> tuple[pd.DataFrame, pd.DataFrame]:
    since = timezone.now() - timedelta(days=filters.days)
    runs = queries.test_run_frame(
        nav.project.pk, since=since, suite=filters.suite, branch=filters.branch
    )
    return runs, queries.test_result_frame(runs, tier=filters.tier)


def _trend_frames(
    nav: Nav, filters: TestFilters
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, StoredAnalysis]:
    """(pass rates, durations, tiers) of the filtered range: stored pass-rate days unless a branch
    is chosen, stored durations and tier reliability unless a suite or branch is; the rest
    computed from the range's results (fetched only when something needs them)."""
    since = timezone.now() - timedelta(days=filters.days)
    pk, tier = nav.project.pk, filters.tier
    rated = _stored_analysis(nav, replace(filters, tier="", suite=""), by_runs=False)
    stored = _stored_analysis(nav, replace(filters, tier=""), by_runs=False)
    needs_results = rated.window is None or stored.window is None
    results = _days_window(nav, filters)[1] if needs_results else pd.DataFrame(columns=RESULTS)
    if rated.window is not None:
        rates = queries.stored_pass_rate_frame(pk, since=since, tier=tier, suite=filters.suite)
    else:
        rates = pass_rate_trend(results)
    if stored.window is not None:
        durations = queries.stored_duration_trend_frame(pk, since=since, tier=tier)
        tiers = queries.stored_tier_reliability_frame(pk, filters.days, tier=tier)
    else:
        durations, tiers = duration_trend(results), _tier_reliability(results)
    return rates, durations, tiers, rated


def _tier_reliability(results: pd.DataFrame) -> pd.DataFrame:
    scores = flakiness_scores(results)
    tiers = scores.groupby("tier").agg(
        tests=("test_id", "size"), reliability=("reliability", "mean")
    )
    return tiers.reset_index()


@login_required
@require_GET
@project_page
def trends(request: HttpRequest, nav: Nav) -> HttpResponse:
    filters = _filters(request)
    rates, durations, tiers, stored = _trend_frames(nav, filters)
    context = (
        _page(nav, filters, "trends")
        | stored.context
        | {
            "pass_rate": charts.figure_data(charts.pass_rate_chart(rates)) if len(rates) else None,
            "duration": charts.figure_data(charts.run_duration_chart(durations))
            if len(durations)
            else None,
            "tiers": _records(tiers),
        }
    )
    return render(request, "dashboard/tests_trends.html", context)


def _coverage_frame(nav: Nav, filters: TestFilters) -> tuple[pd.DataFrame, int, StoredAnalysis]:
    """(coverage table, test-linked session count): stored per range of days unless a suite or
    branch is chosen (the tier filter does not apply to coverage)."""
    stored = _stored_analysis(nav, replace(filters, tier=""), by_runs=False)
    if stored.window is not None:
        table, session_count = queries.stored_coverage_frame(nav.project.pk, filters.days)
        return table, session_count, stored
    runs = _days_window(nav, filters)[0]
    tested_ids = queries.tested_session_ids(list(runs["run_pk"]))
    since = timezone.now() - timedelta(days=filters.days)
    production, tested = queries.coverage_usage(nav.project.pk, tested_ids, since=since)
    return coverage_table(production, tested), len(tested_ids), stored


@login_required
@require_GET
@project_page
def coverage(request: HttpRequest, nav: Nav) -> HttpResponse:
    filters = _filters(request)
    table, session_count, stored = _coverage_frame(nav, filters)
    context = (
        _page(nav, filters, "coverage")
        | stored.context
        | {
            "rows": _records(table.head(COVERAGE_ROWS)),
            "row_count": len(table),
            "summary": coverage_summary(table),
            "tested_session_count": session_count,
        }
    )
    return render(request, "dashboard/tests_coverage.html", context)
