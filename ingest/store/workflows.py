"""Workflow runs and their steps (records workflow.start/end, step.start/end, OTLP workflow and task
spans): merged commutatively, implicit runs adopted once their workflow is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from django.db import (
    connection,
)

from ingest import sql
from ingest.formats.records import (
    SpanRecord,
    StepRecord,
    WorkflowRecord,
)
from ingest.models import (
    Project,
    Session,
    Span,
    Step,
    Workflow,
)
from ingest.store.agents import _ancestors
from ingest.store.bulk import _create, _insert_rows, _json_bytes, _stored_rows, _update_rows
from ingest.workflow_merge import WorkflowChange, merge_workflow_change, workflow_change

WORKFLOW_MERGE_FIELDS = (
    "name",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "result_summary",
    "metadata",
    "is_inferred",
)


STEP_MERGE_FIELDS = (
    "name",
    "agent_external_id",
    "depends_on",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "result_summary",
    "error_type",
    "error_message",
)


FlowRecord = WorkflowRecord | StepRecord


def _upsert_workflows(
    project: Project,
    sessions: dict[str, Session],
    new_sessions: set[int],
    records: list[FlowRecord],
    claimed: set[int] | None = None,
) -> None:
    """Workflows by (session, workflow_id), inferred until their start arrives, then their steps
    by (workflow, step_id); start and end merge in any order. A fixed number of queries.
    `claimed`: pks of workflows _claim_shared_rows created for this batch (no steps yet)."""
    if not records:
        return
    keys = {(sessions[r.session_id].pk, r.workflow_id) for r in records}
    workflows = _stored_rows(Workflow, ("session", "workflow_id"), keys, new_sessions)
    existing = sorted(workflows.values(), key=lambda w: w.pk)  # id order: no deadlocks
    before = {w.pk: _workflow_snapshot(w) for w in existing}
    created = []
    for key in keys - workflows.keys():
        workflow = Workflow(
            project=project, session_id=key[0], workflow_id=key[1], is_inferred=True
        )
        workflows[key] = workflow
        created.append(workflow)
    by_key: dict[tuple[int, str], list[FlowRecord]] = {}
    for record in records:
        by_key.setdefault((sessions[record.session_id].pk, record.workflow_id), []).append(record)
    changes = {key: workflow_change(group) for key, group in by_key.items()}
    for key, change in changes.items():
        merge_workflow_change(workflows[key], change)
    _create(created)
    # Only changed rows: an UPDATE locks the row until commit.
    changed = [w for w in existing if _workflow_snapshot(w) != before[w.pk]]
    if changed and connection.vendor == "postgresql":
        _update_stored_workflows({w.pk: changes[(w.session_id, w.workflow_id)] for w in changed})
    elif changed:
        _update_rows(changed, WORKFLOW_MERGE_FIELDS)  # SQLite: one writer, the rows are current
    if created and created[0].pk is None:
        pks = Workflow.objects.filter(
            session_id__in={k[0] for k in keys}, workflow_id__in={k[1] for k in keys}
        ).values_list("session_id", "workflow_id", "pk")
        for session_pk, workflow_id, pk in pks:
            workflows[(session_pk, workflow_id)].pk = pk
    steps = [r for r in records if isinstance(r, StepRecord)]
    _upsert_steps(
        project,
        {k: w.pk for k, w in workflows.items()},
        {w.pk for w in created} | (claimed or set()),
        sessions,
        steps,
    )


def _adopt_implicit_steps(
    sessions: dict[str, Session],
    spans: list[SpanRecord],
    parent_of: dict[tuple[int, str], str] | None = None,
) -> None:
    """OTLP: a task span that came before the spans leading up to its workflow span was put
    in its trace's implicit run (keyed by the trace id: otlp_flows._step_records). Once the
    stored trace leads from the task to a workflow span, the step moves to that workflow's run,
    and the implicit run goes when nothing is left in it; so traceloop's `disable_batch=True`
    (one span per request, children first) stores the run its batches would. `parent_of`: the
    stored spans' parents of these traces, when the batch read them already (TraceWalk)."""
    traces = {(sessions[r.session_id].pk, r.trace_id) for r in spans if r.trace_id}
    if not traces:
        return
    session_pks = sorted({pk for pk, _ in traces})
    trace_ids = sorted({t for _, t in traces})
    in_sessions, session_params = sql.in_values("w.session_id", session_pks)
    in_traces, trace_params = sql.in_values("w.workflow_id", trace_ids)
    # Written out (ingest/sql.py): nearly every request with a task span runs it. Only the
    # implicit runs' steps: reading every run of the sessions (and later every step of them)
    # grew with each session's length and was the top statement of steady-5k (bench/README.md).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT st.id, w.id, w.session_id, st.step_id FROM ingest_workflow w "
            f"JOIN ingest_step st ON st.workflow_id = w.id WHERE {in_sessions} AND {in_traces}",
            [*session_params, *trace_params],
        )
        implicit = cursor.fetchall()
    if not implicit:
        return
    if parent_of is None:
        parent_of = {
            (session, span): parent
            for session, span, parent in Span.objects.filter(
                session_id__in=session_pks, trace_id__in=trace_ids
            ).values_list("session_id", "span_id", "parent_span_id")
        }
    runs, taken = _runs_above(implicit, parent_of)
    moved: list[Step] = []
    doubles: list[int] = []
    emptied: set[int] = set()
    for pk, implicit_run, session, step_id in implicit:
        start = parent_of.get((session, step_id), "")
        target = next((runs[k] for k in _ancestors(session, start, parent_of) if k in runs), None)
        if target is None:
            continue
        emptied.add(implicit_run)
        if (target, step_id) in taken:
            doubles.append(pk)
        else:
            moved.append(Step(pk=pk, workflow_id=target))
    if doubles:
        Step.objects.filter(pk__in=doubles).delete()
    _update_rows(moved, ["workflow"])
    _delete_empty_runs(emptied)


def _delete_empty_runs(pks: set[int]) -> None:
    """Delete those of these workflow runs that have no step left, in one statement: the ORM's
    delete() read the runs first and deleted their (no) steps by cascade, three statements and
    their compile under the trace lock. Only steps point at a run (ingest.models.Step)."""
    if not pks:
        return
    in_runs, params = sql.in_values("id", sorted(pks))
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM ingest_workflow WHERE {in_runs} AND NOT EXISTS "
            "(SELECT 1 FROM ingest_step st WHERE st.workflow_id = ingest_workflow.id)",
            params,
        )


def _runs_above(
    implicit: list[tuple[int, int, int, str]], parent_of: dict[tuple[int, str], str]
) -> tuple[dict[tuple[int, str], int], set[tuple[int, str]]]:
    """The workflow runs keyed by a span above one of these implicit steps (by session pk and
    workflow id), and which of those steps' ids each run holds already (run pk, step id): one
    statement on the runs that can take a step, not every run of the sessions."""
    above = {
        key
        for _, _, session, step in implicit
        for key in _ancestors(session, parent_of.get((session, step), ""), parent_of)
    }
    if not above:
        return {}, set()
    in_sessions, session_params = sql.in_values("w.session_id", sorted({k[0] for k in above}))
    in_runs, run_params = sql.in_values("w.workflow_id", sorted({k[1] for k in above}))
    in_steps, step_params = sql.in_values("st.step_id", sorted({row[3] for row in implicit}))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT w.id, w.session_id, w.workflow_id, st.step_id FROM ingest_workflow w "
            f"LEFT JOIN ingest_step st ON st.workflow_id = w.id AND {in_steps} "
            f"WHERE {in_sessions} AND {in_runs}",
            [*step_params, *session_params, *run_params],
        )
        rows = cursor.fetchall()
    runs = {(session, workflow_id): run for run, session, workflow_id, _ in rows}
    runs = {key: run for key, run in runs.items() if key in above}
    taken = {(run, step) for run, _, _, step in rows if step is not None}
    return runs, taken


def _has_stored_children(
    sessions: dict[str, Session],
    spans: list[SpanRecord],
    parent_of: dict[tuple[int, str], str] | None,
) -> bool:
    """Whether a span of the batch may sit between a stored task and its workflow span: it has
    a parent and stored spans under it (taken as yes when the walk did not read the trace). A
    leaf, as most one-span requests are (an LLM call, a tool), cannot complete a path."""
    inner = {
        (sessions[r.session_id].pk, r.span_id) for r in spans if r.trace_id and r.parent_span_id
    }
    if not inner:
        return False
    if parent_of is None:
        return True
    return any((session, parent) in inner for (session, _), parent in parent_of.items())


# workflow_merge.merge_workflow_change() in one statement, as UPDATE_STORED_SESSIONS does for
# sessions: `w` is the row as it is when the UPDATE runs (after a concurrent writer's commit),
# `v` the batch's change; rows locked in id order first. SET sees the old row, so the duration
# repeats the start and end expressions.
WORKFLOW_START = (
    "CASE WHEN v.is_started THEN v.started_at WHEN v.earliest IS NOT NULL AND "
    "(w.started_at IS NULL OR (w.is_inferred AND v.earliest < w.started_at)) THEN v.earliest "
    "ELSE w.started_at END"
)


TAKE_WORKFLOW_END = "v.has_end AND (w.ended_at IS NULL OR v.ended_at >= w.ended_at)"


WORKFLOW_END = f"CASE WHEN {TAKE_WORKFLOW_END} THEN v.ended_at ELSE w.ended_at END"


UPDATE_STORED_WORKFLOWS = f"""
WITH v AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb) AS v(
        id bigint, is_started boolean, started_at timestamptz, earliest timestamptz,
        has_end boolean, ended_at timestamptz, status text, name text, result_summary text,
        metadata jsonb
    )
), locked AS (
    SELECT id FROM ingest_workflow WHERE id IN (SELECT id FROM v) ORDER BY id FOR NO KEY UPDATE
)
UPDATE ingest_workflow w SET
    started_at = {WORKFLOW_START},
    is_inferred = w.is_inferred AND NOT v.is_started,
    ended_at = {WORKFLOW_END},
    status = CASE WHEN {TAKE_WORKFLOW_END} THEN v.status ELSE w.status END,
    name = CASE WHEN v.name <> '' THEN v.name ELSE w.name END,
    result_summary = COALESCE(v.result_summary, w.result_summary),
    metadata = CASE WHEN v.metadata IS NULL THEN w.metadata
        ELSE COALESCE(w.metadata, '{{}}'::jsonb) || v.metadata END,
    duration_ms = EXTRACT(EPOCH FROM ({WORKFLOW_END}) - ({WORKFLOW_START})) * 1000
FROM v JOIN locked USING (id)
WHERE w.id = v.id
"""


WORKFLOW_CHANGE_COLUMNS = tuple(f.name for f in fields(WorkflowChange))


def _update_stored_workflows(changes: dict[int, WorkflowChange]) -> None:
    """PostgreSQL: merge each change into its stored workflow (by pk) in one statement, so a
    concurrent batch's change to the same run is kept (the rows this batch read may be old).
    One JSON document, as _update_stored_sessions sends (a JSON null is SQL NULL)."""
    rows = [
        {"id": pk, **{name: getattr(changes[pk], name) for name in WORKFLOW_CHANGE_COLUMNS}}
        for pk in sorted(changes)
    ]
    with connection.cursor() as cursor:
        cursor.execute(UPDATE_STORED_WORKFLOWS, [_json_bytes(rows).decode()])


def _workflow_snapshot(workflow: Workflow) -> tuple[Any, ...]:
    return tuple(getattr(workflow, name) for name in WORKFLOW_MERGE_FIELDS)


def _duration_ms(started_at: datetime | None, ended_at: datetime | None) -> float | None:
    if started_at is None or ended_at is None:
        return None
    return (ended_at - started_at).total_seconds() * 1000


@dataclass(slots=True)
class _NewStep:
    """A step not stored yet, merged like a Step row (same attributes and defaults) and then
    inserted as a plain tuple: building a model instance per step was most of its cost."""

    workflow_id: int
    step_id: str
    name: str = ""
    agent_external_id: str = ""
    depends_on: list[str] = field(default_factory=list)
    status: str = Step.Status.RUNNING
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: float | None = None
    result_summary: str = ""
    error_type: str = ""
    error_message: str = ""


STEP_COPY_COLUMNS = ("project_id", "workflow_id", "step_id", *STEP_MERGE_FIELDS)


def _upsert_steps(
    project: Project,
    workflow_pks: dict[tuple[int, str], int],
    new_workflows: set[int],
    sessions: dict[str, Session],
    records: list[StepRecord],
) -> None:
    if not records:
        return
    keyed = [
        ((workflow_pks[(sessions[r.session_id].pk, r.workflow_id)], r.step_id), r) for r in records
    ]
    keys = {key for key, _ in keyed}
    steps: dict[tuple[int, str], Step | _NewStep] = {
        **_stored_rows(Step, ("workflow", "step_id"), keys, new_workflows)
    }
    existing = [step for step in steps.values() if isinstance(step, Step)]  # all stored rows
    created = []
    for key in keys - steps.keys():
        steps[key] = _NewStep(workflow_id=key[0], step_id=key[1])
        created.append(steps[key])
    for key, record in keyed:
        _merge_step(steps[key], record)
    rows = [
        (project.pk, step.workflow_id, step.step_id, *(getattr(step, n) for n in STEP_MERGE_FIELDS))
        for step in created
    ]
    _insert_rows(Step, STEP_COPY_COLUMNS, rows)
    _update_rows(existing, STEP_MERGE_FIELDS)


def _merge_step(step: Step | _NewStep, record: StepRecord) -> None:
    if record.action == "start":
        if record.at and (step.started_at is None or record.at < step.started_at):
            step.started_at = record.at
    elif step.ended_at is None or (record.at and record.at >= step.ended_at):
        step.ended_at = record.at
        step.status = record.status or Step.Status.OK
    for attr, value in (
        ("name", record.name),
        ("agent_external_id", record.agent_id),
        ("result_summary", record.result_summary),
        ("error_type", record.error_type),
    ):
        if value:
            setattr(step, attr, value[:200] if attr == "error_type" else value)
    if record.error_message:
        step.error_message = record.error_message[:2000]
    if record.depends_on is not None:
        step.depends_on = list(record.depends_on)
    step.duration_ms = _duration_ms(step.started_at, step.ended_at)
