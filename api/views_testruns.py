"""REST endpoints for test runs: runs and results (cursor lists), and flaky tests and regressions
over a window of recent runs: read from the stored analysis (analytics.tasks) for the windows it
keeps, computed on request for other filters. Every one answers `?format=csv` too."""

from __future__ import annotations

from typing import Any

import pandas as pd
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from analytics import queries
from analytics.flakiness import flakiness_scores
from analytics.refresh import TEST_ANALYSIS_WINDOWS
from analytics.regressions import duration_regressions, outcome_regressions
from api import filters, serializers_testruns
from api.scope import visible_projects
from api.views import FrameList, ListView
from ingest.models import Project

DEFAULT_WINDOW_RUNS = 200
MAX_WINDOW_RUNS = 1000
WINDOW_PARAMS = [
    OpenApiParameter("project", str, description="Project slug (not needed with an API key)."),
    OpenApiParameter(
        "runs", int, description=f"The newest N runs (default {DEFAULT_WINDOW_RUNS})."
    ),
    OpenApiParameter("tier", str, description="Only results of this tier."),
    OpenApiParameter("suite", str, description="Only runs of this suite."),
    OpenApiParameter("branch", str, description="Only runs on this branch."),
]


class TestRunList(ListView):
    """Test runs, newest first, with a count of results per outcome."""

    __test__ = False  # pytest: not a test class
    serializer_class = serializers_testruns.TestRunSerializer
    filterset_class = filters.TestRunFilter
    csv_filename = "test-runs.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.test_runs_for_projects(visible_projects(self.request))


class TestResultList(ListView):
    """Test results (without traces), newest first."""

    __test__ = False  # pytest: not a test class
    serializer_class = serializers_testruns.TestResultSerializer
    filterset_class = filters.TestResultFilter
    csv_filename = "test-results.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.test_results_for_projects(visible_projects(self.request))


def window_results(request: Request) -> pd.DataFrame:
    """The results of the window the query string asks for, in one project."""
    runs = request.query_params.get("runs", str(DEFAULT_WINDOW_RUNS))
    if not runs.isdecimal() or not 1 <= int(runs) <= MAX_WINDOW_RUNS:
        raise ValidationError({"runs": f"A whole number from 1 to {MAX_WINDOW_RUNS}"})
    params = request.query_params
    run_frame = queries.test_run_frame(
        _project_id(request),
        limit=int(runs),
        suite=params.get("suite", ""),
        branch=params.get("branch", ""),
    )
    return queries.test_result_frame(run_frame, tier=params.get("tier", ""))


def stored_window(request: Request) -> tuple[int, int] | None:
    """(project id, window) when the query asks for a window whose analysis the refresh task
    stores (no tier, suite or branch filter) and it has been computed; else None."""
    params = request.query_params
    runs = params.get("runs", str(DEFAULT_WINDOW_RUNS))
    if any(params.get(name) for name in ("tier", "suite", "branch")):
        return None
    if not runs.isdecimal() or int(runs) not in TEST_ANALYSIS_WINDOWS:
        return None
    project_id = _project_id(request)
    if queries.test_analysis_computed_at(project_id) is None:
        return None
    return project_id, int(runs)


def _project_id(request: Request) -> int:
    if isinstance(request.auth, Project):
        return request.auth.pk
    slug = request.query_params.get("project", "")
    projects = queries.project_list(visible_projects(request))
    found = list(projects.filter(slug=slug).values_list("pk", flat=True)) if slug else []
    if not found:
        raise ValidationError({"project": "Name one of your projects: ?project=<slug>"})
    return found[0]


@extend_schema(parameters=WINDOW_PARAMS)
class FlakyTestList(FrameList):
    """Tests ranked by flakiness over the newest runs; `?all=true` lists the stable ones too."""

    serializer_class = serializers_testruns.FlakyTestSerializer
    csv_filename = "flaky-tests.csv"

    def frame(self, request: Request) -> pd.DataFrame:
        stored = stored_window(request)
        if stored is not None:
            scores = queries.stored_flaky_frame(*stored)
        else:
            scores = flakiness_scores(window_results(request))
        if request.query_params.get("all") in ("true", "1"):
            return scores
        return scores[scores["is_flaky"].astype(bool)]


@extend_schema(parameters=WINDOW_PARAMS)
class TestRegressionList(FrameList):
    """Tests failing since a run after passing before it, per branch, newest breakage first."""

    __test__ = False  # pytest: not a test class
    serializer_class = serializers_testruns.TestRegressionSerializer
    csv_filename = "test-regressions.csv"

    def frame(self, request: Request) -> pd.DataFrame:
        stored = stored_window(request)
        if stored is not None:
            return queries.stored_regression_frame(*stored)
        return outcome_regressions(window_results(request))


@extend_schema(parameters=WINDOW_PARAMS)
class DurationRegressionList(FrameList):
    """Tests whose last 5 passing runs take at least 1.5 times their earlier median."""

    serializer_class = serializers_testruns.DurationRegressionSerializer
    csv_filename = "test-duration-regressions.csv"

    def frame(self, request: Request) -> pd.DataFrame:
        stored = stored_window(request)
        if stored is not None:
            return queries.stored_duration_frame(*stored)
        return duration_regressions(window_results(request))
