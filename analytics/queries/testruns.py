"""Reads of test runs and results (api/views_testruns.py, dashboard/views_testruns.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce, NullIf

from analytics.queries.scope import ProjectScope
from analytics.testruns import RESULT_COLUMNS as TEST_RESULT_COLUMNS
from ingest.models import Agent, Session, Span, TestResult, TestRun


def effective_tier() -> Coalesce:
    """A result's tier, or its run's when the result names none."""
    return Coalesce(NullIf(F("tier"), Value("")), F("run__tier"))


def test_runs_for_projects(projects: ProjectScope) -> QuerySet[TestRun]:
    """Test runs, newest first, each with `project_slug`, `result_count` and one count per outcome
    (`pass_count`, `fail_count`, `error_count`, `skip_count`, `xfail_count`). One query."""
    counts = {
        f"{outcome}_count": Count("results", filter=Q(results__outcome=outcome))
        for outcome in TestResult.Outcome.values
    }
    return (
        TestRun.objects.filter(project__in=projects)
        .annotate(project_slug=F("project__slug"), result_count=Count("results"), **counts)
        .order_by("-started_at", "-id")
    )


def test_results_for_projects(projects: ProjectScope) -> QuerySet[TestResult]:
    """Test results, newest first, WITHOUT their trace, with the run's fields annotated:
    `run_external_id`, `run_started_at`, `commit`, `branch`, `suite`, `effective_tier`,
    `project_slug`."""
    return (
        TestResult.objects.filter(project__in=projects)
        .defer("error_trace")
        .annotate(
            run_external_id=F("run__external_id"),
            run_started_at=F("run__started_at"),
            commit=F("run__commit"),
            branch=F("run__branch"),
            suite=F("run__suite"),
            effective_tier=effective_tier(),
            project_slug=F("project__slug"),
        )
        .order_by("-id")
    )


def test_result_with_trace(projects: ProjectScope, pk: int) -> TestResult | None:
    """One visible result with its trace and its run (joined), or None."""
    return (
        TestResult.objects.filter(project__in=projects, pk=pk)
        .select_related("run")
        .annotate(effective_tier=effective_tier())
        .first()
    )


def test_history(result: TestResult, *, limit: int) -> list[dict[str, Any]]:
    """The same test's latest `limit` results in its project, oldest first: pk, outcome,
    duration_ms, run_started_at, commit, branch."""
    rows = (
        TestResult.objects.filter(project_id=result.project_id, test_id=result.test_id)
        .annotate(run_started_at=F("run__started_at"), commit=F("run__commit"))
        .order_by(F("run__started_at").desc(nulls_last=True), "-id")
        .values("pk", "outcome", "duration_ms", "run_started_at", "commit")[:limit]
    )
    return [dict(row) for row in reversed(rows)]


def test_run_results(run: TestRun) -> list[dict[str, Any]]:
    """A run's results without traces, failures and errors first, then by test id."""
    order = {"error": 0, "fail": 1, "xfail": 2, "skip": 3, "pass": 4}
    rows = list(
        TestResult.objects.filter(run=run)
        .annotate(effective_tier=effective_tier())
        .values(
            "pk", "test_id", "name", "effective_tier", "outcome", "duration_ms", "error_message"
        )
    )
    return sorted((dict(r) for r in rows), key=lambda r: (order.get(r["outcome"], 5), r["test_id"]))


TEST_RUN_FRAME_COLUMNS = ["run_pk", "run_started_at", "commit", "branch", "suite", "run_tier"]


def test_run_frame(
    project_id: int,
    *,
    limit: int | None = None,
    since: datetime | None = None,
    suite: str = "",
    branch: str = "",
) -> pd.DataFrame:
    """The newest `limit` runs (or every run since `since`) with this suite and branch when
    given, newest first: TEST_RUN_FRAME_COLUMNS. Runs without a start time are left out."""
    runs = TestRun.objects.filter(project_id=project_id, started_at__isnull=False)
    if since is not None:
        runs = runs.filter(started_at__gte=since)
    if suite:
        runs = runs.filter(suite=suite)
    if branch:
        runs = runs.filter(branch=branch)
    rows = runs.order_by("-started_at", "-id").values_list(
        "pk", "started_at", "commit", "branch", "suite", "tier"
    )
    return pd.DataFrame.from_records(
        list(rows[:limit] if limit is not None else rows), columns=TEST_RUN_FRAME_COLUMNS
    )


def test_result_frame(
    runs: pd.DataFrame, *, tier: str = "", with_details: bool = True
) -> pd.DataFrame:
    """The results of these runs (test_run_frame) as analytics.testruns.RESULT_COLUMNS, tier being
    the result's or else its run's; only `tier`'s when given. One query on the results table
    alone (no join, no messages or traces): the run columns come from `runs`. Without
    `with_details`, name is the test id and duration_ms is missing (the heatmap needs neither,
    and 100,000 fewer strings and floats are a third of its query time)."""
    fields = ["pk", "run_id", "test_id", "tier", "outcome"]
    columns = ["result_pk", "run_pk", "test_id", "tier", "outcome"]
    if with_details:
        fields += ["name", "duration_ms"]
        columns += ["name", "duration_ms"]
    rows = (
        TestResult.objects.filter(run_id__in=[int(pk) for pk in runs["run_pk"]])
        .order_by()
        .values_list(*fields)
    )
    results = pd.DataFrame.from_records(list(rows), columns=columns)
    if not with_details:
        results["name"] = results["test_id"]
    results = results.merge(runs, on="run_pk", how="left")
    results["tier"] = results["tier"].where(results["tier"] != "", results["run_tier"])
    if tier:
        results = results[results["tier"] == tier]
    return results.reindex(columns=TEST_RESULT_COLUMNS).reset_index(drop=True)


def test_filter_choices(project_id: int) -> dict[str, list[str]]:
    """The tiers, suites and branches a project's runs and results use, for filter menus."""
    runs = TestRun.objects.filter(project_id=project_id)
    # Result tiers are read only from runs without a tier (mixed runs), which keeps this off the
    # bulk of the results table: a result overriding its tiered run's tier misses the menu (it
    # still shows on the pages).
    result_tiers = TestResult.objects.filter(run__in=runs.filter(tier="").values("pk")).exclude(
        tier=""
    )
    return {
        "tiers": sorted(
            set(runs.exclude(tier="").values_list("tier", flat=True).distinct())
            | set(result_tiers.values_list("tier", flat=True).distinct())
        ),
        "suites": sorted(runs.exclude(suite="").values_list("suite", flat=True).distinct()),
        "branches": sorted(runs.exclude(branch="").values_list("branch", flat=True).distinct()),
    }


def tested_session_ids(run_pks: Sequence[int]) -> set[str]:
    """Client session ids that results of these runs link to."""
    lists = TestResult.objects.filter(run_id__in=run_pks).exclude(session_ids=[])
    return {sid for ids in lists.values_list("session_ids", flat=True) for sid in ids}


def coverage_usage(
    project_id: int, test_session_ids: set[str], *, since: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(production, tested) usage frames (analytics.coverage.USAGE_COLUMNS): agents (sessions
    each agent name appears in), tools and steps (calls; tool and action spans by name).
    Production is every other session started since `since`; tested is the linked sessions,
    whenever they ran. Six grouped queries."""
    tested_sessions = Session.objects.filter(
        project_id=project_id, external_id__in=test_session_ids
    )
    production_sessions = Session.objects.filter(
        project_id=project_id, started_at__gte=since
    ).exclude(external_id__in=test_session_ids)
    return (
        _usage_frame(production_sessions.values("pk")),
        _usage_frame(tested_sessions.values("pk")),
    )


def _usage_frame(sessions: QuerySet[Any]) -> pd.DataFrame:
    agent_name = Coalesce(NullIf(F("name"), Value("")), F("external_id"))
    agents = (
        Agent.objects.filter(session__in=sessions)
        .annotate(item=agent_name)
        .values("item")
        .annotate(count=Count("session", distinct=True))
        .values_list("item", "count")
    )
    rows = [("agent", name, count) for name, count in agents]
    for kind, span_kind in (("tool", Span.Kind.TOOL), ("step", Span.Kind.ACTION)):
        spans = (
            Span.objects.filter(session__in=sessions, kind=span_kind)
            .values("name")
            .annotate(count=Count("pk"))
            .values_list("name", "count")
        )
        rows += [(kind, name, count) for name, count in spans]
    return pd.DataFrame.from_records(rows, columns=["kind", "name", "count"])
