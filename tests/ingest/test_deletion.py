"""Deleting sessions, erasure requests and retention (analytics/deletion.py), against the database:
what goes, what stays, and what the analytics refresh does afterwards."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from analytics import deletion
from analytics.deletion import Retention, retention_cutoffs, retention_error
from analytics.models import Incident, PendingRefresh, Rollup, SearchEntry, SessionFlag
from analytics.refresh import refresh_project
from analytics.search_index import index_sessions
from ingest.models import (
    Agent,
    AuditEntry,
    ErasureRequest,
    IngestRejection,
    Message,
    MessageContent,
    MessageEvent,
    MetricSample,
    Project,
    ReceivedRecord,
    Session,
    Span,
    SpanPayload,
    Step,
    TraceLink,
    TranscriptLine,
    Workflow,
)
from tests.builders import (
    make_anomaly,
    make_message,
    make_metric,
    make_project,
    make_rejection,
    make_session,
    make_user,
    make_workflow,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
SESSION_TABLES = (
    Span,
    SpanPayload,
    TranscriptLine,
    Message,
    MessageContent,
    MessageEvent,
    MetricSample,
    Agent,
    Workflow,
    Step,
    TraceLink,
    SearchEntry,
    SessionFlag,
)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in SESSION_TABLES}


def full_session(project: Project, *, started_at: datetime = NOW, **extra: Any) -> Session:
    """A session with a row in every table that holds session data."""
    session = make_session(
        project,
        started_at=started_at,
        spans=4,
        trace_ids=[uuid.uuid4().hex],
        transcript=[("user", "my card is on file"), ("assistant", "noted")],
        **extra,
    )
    dead = make_message(session, status="dead_lettered", at=started_at)
    MessageEvent.objects.create(
        project=project, message=dead, client_id=f"ev-{dead.pk}", stage="sent", at=started_at
    )
    make_metric(project, session=session, at=started_at)
    make_workflow(session, at=started_at, steps=[("plan", 0, 1, ())])
    SessionFlag.objects.create(
        project=project, session=session, detector="tool_loop", detail="search 5 times"
    )
    index_sessions([session.pk])
    return session


@pytest.mark.django_db
def test_deleting_a_session_removes_it_from_every_table_and_leaves_others() -> None:
    project, _ = make_project()
    doomed, kept = full_session(project), full_session(project)
    before = counts()
    assert all(before.values()), before  # each table holds rows of both sessions

    flag = make_anomaly(project)
    flag.example_session_ids = [doomed.pk, kept.pk]
    flag.save()

    assert deletion.delete_sessions(project.pk, [doomed.pk]) == 1

    flag.refresh_from_db()
    assert flag.example_session_ids == [kept.pk]

    after = counts()
    assert not Session.objects.filter(pk=doomed.pk).exists()
    for table, n in after.items():
        assert 0 < n < before[table], table  # the kept session's rows are still there
    assert Span.objects.filter(session=doomed).count() == 0
    assert SearchEntry.objects.filter(session_id=doomed.pk).count() == 0
    assert Session.objects.filter(pk=kept.pk).exists()
    pending = PendingRefresh.objects.get(project=project)
    assert pending.dirty_from == doomed.started_at  # rollups are rebuilt without it


@pytest.mark.django_db
def test_batches_delete_everything_however_small_they_are() -> None:
    project, _ = make_project()
    make_session(project, spans=7)
    assert deletion.delete_in_batches(Span.objects.all(), batch_rows=2) == 7
    assert Span.objects.count() == SpanPayload.objects.count() == 0


def _post(client: Client, key: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    answer = client.post(
        "/api/v1/ingest",
        json.dumps({"records": records}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.content
    return dict(answer.json())


@pytest.mark.django_db
def test_a_retried_batch_after_deletion_is_a_duplicate_and_new_records_come_back() -> None:
    """Documented behaviour (docs/lifecycle.md): the ledger still knows the ids of the deleted
    session's records, so a retry of the same batch stores nothing; records with new ids make a
    new session of the same id."""
    project, key = make_project()
    client = Client()
    start = {"type": "session.start", "id": "s-start", "session_id": "s"}
    start["started_at"] = "2026-12-01T10:00:00Z"
    _post(client, key, [start])
    deletion.delete_sessions(project.pk, Session.objects.values_list("pk", flat=True))

    retried = _post(client, key, [start])
    assert retried["duplicates"] == 1
    assert not Session.objects.exists()

    later = {"type": "message", "id": "s-line-2", "session_id": "s", "role": "user"}
    later |= {"content": "hello again", "at": "2026-12-01T10:05:00Z"}
    _post(client, key, [later])
    assert Session.objects.get().external_id == "s"


@pytest.mark.django_db
def test_an_erasure_deletes_the_sessions_of_one_user_id_and_forgets_the_value() -> None:
    project, _ = make_project()
    alice = [
        full_session(project, metadata={"user_id": "alice"}),
        full_session(project, metadata={"user.id": "alice"}),
    ]
    bob = full_session(project, metadata={"user_id": "bob"})
    erasure = deletion.request_erasure(project, "user_id", "alice", actor="admin")
    assert erasure.session_count == 2

    done = deletion.run_erasure(erasure.pk)

    assert done is not None
    assert (done.status, done.session_count, done.value) == ("done", 2, "")
    assert done.value_digest == ErasureRequest.digest_of("alice")
    assert not Session.objects.filter(pk__in=[s.pk for s in alice]).exists()
    assert Session.objects.filter(pk=bob.pk).exists()
    entry = AuditEntry.objects.get(action="erasure.done")
    assert entry.actor == "admin (background)"
    assert "alice" not in json.dumps([entry.target, entry.changes])
    assert deletion.run_erasure(erasure.pk) is not None  # again: nothing more happens
    assert AuditEntry.objects.filter(action="erasure.done").count() == 1


@pytest.mark.django_db
def test_an_erasure_by_tag_matches_the_tag_exactly() -> None:
    project, _ = make_project()
    tagged = make_session(project, tags=["customer:42", "beta"])
    make_session(project, tags=["Customer:42"])
    make_session(project, tags=["customer:420"])
    assert deletion.sessions_to_erase(project.pk, "tag", "customer:42") == [tagged.pk]


def test_retention_cutoffs_and_derived_data_never_goes_before_raw() -> None:
    assert retention_cutoffs(Retention(30, 400), now=NOW) == (
        NOW - timedelta(days=30),
        NOW - timedelta(days=400),
    )
    assert retention_cutoffs(Retention(0, 0), now=NOW) == (None, None)
    assert retention_cutoffs(Retention(30, 0), now=NOW) == (NOW - timedelta(days=30), None)


@pytest.mark.parametrize(
    ("raw", "derived", "message"),
    [
        (30, 400, ""),
        (30, 0, ""),
        (0, 0, ""),
        (30, 10, "derived_retention_days (10) must be 0 (forever) or at least"),
        (0, 10, "or at least raw_retention_days (forever)"),
        (40_000, 0, "raw_retention_days: give 0 (forever) to 36500 days"),
    ],
)
def test_a_retention_that_would_drop_summaries_before_raw_data_is_refused(
    raw: int, derived: int, message: str
) -> None:
    error = retention_error(raw, derived)
    assert (message in error) if message else error == ""


@pytest.mark.django_db
def test_retention_removes_old_raw_data_keeps_summaries_and_rollups() -> None:
    project, _ = make_project()
    project.raw_retention_days, project.derived_retention_days = 30, 100
    project.save()
    old = full_session(project, started_at=NOW - timedelta(days=40))
    new = full_session(project, started_at=NOW - timedelta(days=1))
    make_rejection(project)
    IngestRejection.objects.update(received_at=NOW - timedelta(days=40))
    ReceivedRecord.objects.create(project=project, record_id="old-id")
    ReceivedRecord.objects.update(received_at=NOW - timedelta(days=40))
    refresh_project(project.pk, since=NOW - timedelta(days=41), now=NOW)
    old_day = (NOW - timedelta(days=40)).replace(hour=0)
    rollups_before = list(
        Rollup.objects.filter(bucket_start__lt=old_day + timedelta(days=1)).values_list(
            "bucket_start", "kind", "count"
        )
    )
    assert rollups_before

    result = deletion.enforce_retention(project, now=NOW)

    assert result.deleted["spans"] == 4 and result.deleted["ingest problems"] == 1
    assert result.deleted["ledger ids"] == 1
    old.refresh_from_db()  # the session and its summary stay
    assert old.event_count == 4
    for model in (Span, TranscriptLine, Message, MetricSample, SearchEntry):
        assert not model.objects.filter(session_id=old.pk).exists(), model.__name__
        assert model.objects.filter(session_id=new.pk).exists(), model.__name__
    project.refresh_from_db()
    assert project.raw_removed_before == NOW - timedelta(days=30)
    project.raw_retention_days = 60  # a longer retention later does not bring the days back
    deletion.enforce_retention(project, now=NOW)
    project.refresh_from_db()
    assert project.raw_removed_before == NOW - timedelta(days=30)

    # A later refresh that reaches back (a late batch) keeps the old days' rollups.
    refresh_project(project.pk, since=NOW - timedelta(days=41), now=NOW)
    rollups_after = list(
        Rollup.objects.filter(bucket_start__lt=old_day + timedelta(days=1)).values_list(
            "bucket_start", "kind", "count"
        )
    )
    assert sorted(rollups_after) == sorted(rollups_before)


@pytest.mark.django_db
def test_derived_retention_removes_old_sessions_rollups_and_incidents() -> None:
    project, _ = make_project()
    project.raw_retention_days, project.derived_retention_days = 30, 100
    project.save()
    ancient = make_session(project, started_at=NOW - timedelta(days=150))
    recent = make_session(project, started_at=NOW - timedelta(days=50))
    refresh_project(project.pk, since=NOW - timedelta(days=151), now=NOW)
    Incident.objects.create(
        project=project,
        window_start=NOW - timedelta(days=150),
        window_end=NOW - timedelta(days=150) + timedelta(hours=2),
        subject_type="project",
        metric="error_rate",
        observed=0.5,
        baseline=0.01,
        score=9,
        explanation="old",
        opened_at=NOW - timedelta(days=150),
    )

    deletion.enforce_retention(project, now=NOW)

    assert list(Session.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not Session.objects.filter(pk=ancient.pk).exists()
    assert not Rollup.objects.filter(bucket_start__lt=NOW - timedelta(days=100)).exists()
    assert Rollup.objects.filter(bucket_start__lt=NOW - timedelta(days=40)).exists()
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_a_project_without_its_own_retention_uses_the_servers_defaults(settings: Any) -> None:
    settings.OBSERVATORY_RAW_RETENTION_DAYS = 0
    settings.OBSERVATORY_DERIVED_RETENTION_DAYS = 0
    project, _ = make_project()
    make_session(project, started_at=NOW - timedelta(days=3000))

    assert deletion.enforce_retention(project, now=NOW).total == 0
    assert Span.objects.count() == 3


@pytest.mark.django_db
def test_the_beat_task_applies_every_projects_retention() -> None:
    from analytics.tasks import enforce_retention_task

    project, _ = make_project()
    project.raw_retention_days = 7
    project.save()
    make_session(project, started_at=datetime.now(tz=UTC) - timedelta(days=8))

    assert enforce_retention_task() >= 3
    assert not Span.objects.exists()
    assert make_user(username="x")  # the task needs no request or user
