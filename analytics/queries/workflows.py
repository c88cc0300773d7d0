"""Reads of workflows and their steps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from django.db.models import Count, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from analytics.queries.scope import ProjectScope
from analytics.workflows import RUN_COLUMNS as WORKFLOW_RUN_COLUMNS
from analytics.workflows import STEP_COLUMNS as WORKFLOW_STEP_COLUMNS
from ingest.models import Project, Session, Step, Workflow


def workflows_for_projects(projects: ProjectScope) -> QuerySet[Workflow]:
    """Workflow runs, newest first, with `session_external_id`, `project_slug` and step counts.

    The step count is a correlated subquery, counted only for the rows a page fetches: a join
    with GROUP BY counted the steps of every run in the range first (1 s at 50,000 runs), and
    made the paginator's COUNT do the same. The session id and project slug are subqueries too,
    so that COUNT (which drops annotations it does not need, not joins) reads only the runs."""
    steps = (
        Step.objects.filter(workflow=OuterRef("pk"))
        .order_by()
        .values("workflow")
        .annotate(n=Count("pk"))
        .values("n")
    )
    session = Session.objects.filter(pk=OuterRef("session_id")).values("external_id")
    project = Project.objects.filter(pk=OuterRef("project_id")).values("slug")
    return (
        Workflow.objects.filter(project__in=projects)
        .annotate(
            session_external_id=Subquery(session),
            project_slug=Subquery(project),
            step_count=Coalesce(Subquery(steps), 0),
        )
        .order_by("-started_at", "-id")
    )


def steps_for_projects(projects: ProjectScope) -> QuerySet[Step]:
    """Workflow steps, newest first, with their run's workflow id and session id annotated."""
    return (
        Step.objects.filter(project__in=projects)
        .annotate(
            workflow_external_id=F("workflow__workflow_id"),
            workflow_name=F("workflow__name"),
            session_external_id=F("workflow__session__external_id"),
        )
        .order_by("-started_at", "-id")
    )


def workflow_for_projects(projects: ProjectScope, pk: int) -> Workflow | None:
    rows = Workflow.objects.filter(project__in=projects).select_related("session", "project")
    return rows.filter(pk=pk).first()


WORKFLOW_STEP_FIELDS = [
    "pk",
    "step_id",
    "name",
    "agent_external_id",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "depends_on",
    "error_type",
    "result_summary",
]


def workflow_steps(workflow: Workflow) -> list[dict[str, Any]]:
    """A run's steps in start order (WORKFLOW_STEP_FIELDS dicts)."""
    steps = Step.objects.filter(workflow=workflow).order_by(F("started_at").asc(nulls_last=True))
    return list(steps.values(*WORKFLOW_STEP_FIELDS))


def workflow_run_frames(
    project_id: int, *, since: datetime, until: datetime, limit: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The newest `limit` runs started in [since, until) (analytics.workflows.RUN_COLUMNS) and
    their steps (STEP_COLUMNS): two queries, whatever the number of runs."""
    runs, steps = _runs_and_steps(
        Workflow.objects.filter(project_id=project_id, started_at__gte=since, started_at__lt=until),
        limit=limit,
    )
    # Steps stay Python objects (dtype object): the statistics walk them one by one, and
    # converting thousands of times to datetime64 and boxing them back cost more than the walk.
    return (
        pd.DataFrame.from_records(runs, columns=WORKFLOW_RUN_COLUMNS),
        pd.DataFrame(steps, columns=WORKFLOW_STEP_COLUMNS, dtype=object),
    )


def workflow_history_frames(
    project_id: int, name: str, *, limit: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The newest `limit` successful, ended runs named `name` (analytics.workflows.RUN_COLUMNS)
    and their steps (STEP_COLUMNS): two queries."""
    runs, steps = _runs_and_steps(
        Workflow.objects.filter(
            project_id=project_id,
            name=name,
            status=Workflow.Status.SUCCESS,
            started_at__isnull=False,
            ended_at__isnull=False,
        ),
        limit=limit,
    )
    return (
        pd.DataFrame.from_records(runs, columns=WORKFLOW_RUN_COLUMNS),
        pd.DataFrame.from_records(steps, columns=WORKFLOW_STEP_COLUMNS),
    )


def _runs_and_steps(
    workflows: QuerySet[Workflow], *, limit: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The newest `limit` of these runs (RUN_COLUMNS rows) and their steps' rows (STEP_COLUMNS,
    the run's pk first): two queries."""
    runs = list(workflows.order_by("-started_at", "-id").values_list(*WORKFLOW_RUN_COLUMNS)[:limit])
    steps = Step.objects.filter(workflow_id__in=[run[0] for run in runs]).values_list(
        "workflow_id", *WORKFLOW_STEP_COLUMNS[1:]
    )
    return runs, list(steps)


def steps_of_workflows(workflow_pks: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """The steps (WORKFLOW_STEP_FIELDS dicts) of these runs, by run pk: one query."""
    steps: dict[int, list[dict[str, Any]]] = {pk: [] for pk in workflow_pks}
    rows = Step.objects.filter(workflow_id__in=workflow_pks).values(
        "workflow_id", *WORKFLOW_STEP_FIELDS
    )
    for row in rows:
        steps[row.pop("workflow_id")].append(row)
    return steps
