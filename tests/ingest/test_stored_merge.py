"""A later batch merges into a stored session and a stored workflow run (the UPDATEs of
ingest/store/sessions.py and workflows.py): every field a later record says reaches the row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.formats.records import Record, SessionRecord, WorkflowRecord
from ingest.models import Project, Session, Workflow
from ingest.store import save_records

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def batch(*records: Record) -> list[tuple[int, Record]]:
    return list(enumerate(records))


@pytest.mark.django_db
def test_a_later_batch_merges_every_field_into_the_stored_session_and_run() -> None:
    project = Project.objects.create(name="Merge", slug="merge")
    save_records(
        project,
        batch(
            SessionRecord(
                record_id="start",
                session_id="run-1",
                action="start",
                name="first name",
                started_at=T0,
                tags=("nightly",),
                metadata={"team": "a", "attempt": 1},
                config={"model": "m-1"},
            ),
            WorkflowRecord(
                record_id="plan-start",
                session_id="run-1",
                workflow_id="plan",
                action="start",
                at=T0 + timedelta(seconds=1),
                name="plan",
                metadata={"steps": 3},
            ),
        ),
    )

    save_records(
        project,
        batch(
            SessionRecord(
                record_id="end",
                session_id="run-1",
                action="end",
                ended_at=T0 + timedelta(seconds=60),
                end_state="fail",
                end_state_reason='tool said "no" \\ gave up',
                metadata={"attempt": 2, "note": None},
                user_query="Why?",
                parent_session_id="parent-run",
                group_key="group-1",
            ),
            WorkflowRecord(
                record_id="plan-end",
                session_id="run-1",
                workflow_id="plan",
                action="end",
                at=T0 + timedelta(seconds=50),
                status="fail",
                result_summary="half done",
                metadata={"left": ["b", "c"]},
            ),
        ),
    )

    session = Session.objects.get(project=project, external_id="run-1")
    assert (session.name, session.started_at, session.ended_at) == (
        "first name",
        T0,
        T0 + timedelta(seconds=60),
    )
    assert (session.end_state, session.end_state_reason) == ("fail", 'tool said "no" \\ gave up')
    assert session.metadata == {"team": "a", "attempt": 2, "note": None}
    assert (session.tags, session.config) == (["nightly"], {"model": "m-1"})
    assert (session.user_query, session.parent_external_id, session.group_key) == (
        "Why?",
        "parent-run",
        "group-1",
    )
    assert session.is_summary_stale
    run = Workflow.objects.get(session=session, workflow_id="plan")
    assert (run.name, run.status, run.result_summary) == ("plan", "fail", "half done")
    assert (run.started_at, run.ended_at, run.duration_ms) == (
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=50),
        49_000,
    )
    assert run.metadata == {"steps": 3, "left": ["b", "c"]}
