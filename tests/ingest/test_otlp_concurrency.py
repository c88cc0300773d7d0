"""Concurrent OTLP requests of one session on real PostgreSQL: the session rows they share are
claimed outside the request's transaction and merged last by one UPDATE, so a request never
overwrites another's change, and a request that fails leaves at most an empty inferred session
that its retry fills."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from ingest.models import (
    PendingRequest,
    Project,
    ReceivedRecord,
    Session,
    Step,
    TraceLink,
    Workflow,
)
from ingest.models import Span as SpanRow
from ingest.tasks import land_pending_requests_task

START = 1_795_286_852_000_000_000
SECOND = 1_000_000_000
SESSION = "chat-7f3a"


def value(v: str | list[str]) -> AnyValue:
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=s) for s in v]))
    return AnyValue(string_value=v)


def trace(number: int, tags: list[str]) -> list[Span]:
    """Trace `number` of SESSION: an agentops session root (with tags) and two tool spans, each
    span carrying session.id as OpenInference and OpenLLMetry send it."""
    trace_id = number.to_bytes(16, "big")
    root = (number * 100).to_bytes(8, "big")

    def one(n: int, kind: str, parent: bytes, **extra: str | list[str]) -> Span:
        attributes = {"agentops.span.kind": kind, "session.id": SESSION, **extra}
        return Span(
            trace_id=trace_id,
            span_id=root if n == 0 else (number * 100 + n).to_bytes(8, "big"),
            parent_span_id=parent,
            name=f"step{n}.{kind}",
            start_time_unix_nano=START + number * 10 * SECOND + n * SECOND,
            end_time_unix_nano=START + number * 10 * SECOND + (n + 1) * SECOND,
            attributes=[KeyValue(key=k, value=value(v)) for k, v in attributes.items()],
        )

    return [
        one(1, "tool", root),
        one(2, "tool", root),
        one(0, "session", b"", **{"agentops.tags": tags}),
    ]


def body(spans: list[Span]) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    )
    return request.SerializeToString()


def post(key: str, data: bytes) -> int:
    answer = Client().post(
        "/v1/traces", data, content_type="application/x-protobuf", headers={"X-API-Key": key}
    )
    return answer.status_code


@pytest.fixture
def postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks and lock timeouts are PostgreSQL's; CI runs PostgreSQL")


def while_another_writer_holds(change: Callable[[], None], send: Callable[[], int]) -> list[int]:
    """Run `change` in a transaction of another thread and keep it open while `send` runs in a
    third one, long enough for the request to read the row and wait on its lock; then commit
    the change and let the request finish. Returns the request's status."""
    locked, release, statuses = threading.Event(), threading.Event(), []

    def other_writer() -> None:
        with transaction.atomic():
            change()
            locked.set()
            release.wait(10)
        connection.close()

    def request() -> None:
        statuses.append(send())
        connection.close()

    holder = threading.Thread(target=other_writer)
    holder.start()
    assert locked.wait(10)
    sender = threading.Thread(target=request)
    sender.start()
    sender.join(1.0)  # it has read the row by now and waits on its lock
    release.set()
    holder.join()
    sender.join(20)
    return statuses


@pytest.mark.django_db(transaction=True)
def test_a_request_changing_a_session_keeps_a_concurrent_change_to_it(
    postgres: None, project_with_key: tuple[Project, str]
) -> None:
    """Request 2 ends the session's second trace while another transaction holds the session
    row with its own change: request 2 waits for that commit, then merges into the row as it
    is now, so both changes and every span are kept."""
    _, key = project_with_key
    assert post(key, body(trace(1, ["round-1"]))) == 200

    def change_the_session() -> None:
        row = Session.objects.select_for_update().get(external_id=SESSION)
        Session.objects.filter(pk=row.pk).update(user_query="set by another writer")

    statuses = while_another_writer_holds(
        change_the_session, lambda: post(key, body(trace(2, ["round-2"])))
    )
    assert statuses == [200]
    session = Session.objects.get(external_id=SESSION)
    assert session.user_query == "set by another writer"
    assert session.tags == ["round-2"]
    assert not session.is_inferred
    assert SpanRow.objects.filter(session=session).count() == 6


def task(number: int, start_second: int) -> Span:
    """A task span of trace 9 (no workflow span: its trace's implicit run holds the step)."""
    return Span(
        trace_id=(9).to_bytes(16, "big"),
        span_id=(900 + number).to_bytes(8, "big"),
        parent_span_id=(900).to_bytes(8, "big"),
        name=f"task{number}",
        start_time_unix_nano=START + start_second * SECOND,
        end_time_unix_nano=START + (start_second + 1) * SECOND,
        attributes=[KeyValue(key="agentops.span.kind", value=value("task"))],
    )


@pytest.mark.django_db(transaction=True)
def test_a_request_extending_a_run_keeps_a_concurrent_change_to_it(
    postgres: None, project_with_key: tuple[Project, str]
) -> None:
    """Request 2 brings an earlier step of the trace's (inferred) run while another transaction
    holds the run's row with its own change: request 2 waits for that commit, then merges its
    earlier start into the row as it is now instead of writing back the row it read before."""
    _, key = project_with_key
    assert post(key, body([task(1, 5)])) == 200

    def change_the_run() -> None:
        row = Workflow.objects.select_for_update().get()
        Workflow.objects.filter(pk=row.pk).update(result_summary="set by another writer")

    statuses = while_another_writer_holds(change_the_run, lambda: post(key, body([task(2, 1)])))
    assert statuses == [200]
    run = Workflow.objects.get()
    assert run.result_summary == "set by another writer"
    assert run.is_inferred
    assert run.started_at == datetime.fromtimestamp((START + SECOND) / SECOND, UTC)
    assert Step.objects.filter(workflow=run).count() == 2


@contextmanager
def span_table_locked() -> Iterator[None]:
    """Another transaction holds ingest_span exclusively; this connection waits 500 ms for it."""
    locked, release = threading.Event(), threading.Event()

    def table_locker() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("LOCK TABLE ingest_span IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(20)
        connection.close()

    locker = threading.Thread(target=table_locker)
    locker.start()
    assert locked.wait(10)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '500ms'")
        yield
    finally:
        release.set()
        locker.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


@pytest.mark.django_db(transaction=True)
def test_a_failed_request_leaves_an_empty_inferred_session_that_its_retry_fills(
    postgres: None, project_with_key: tuple[Project, str], settings: Any
) -> None:
    """The span table is locked by another transaction, so the request cannot store its spans
    in time: it answers 503 and keeps no spans and no ledger row (its retry is not a
    duplicate); only its session, created before the transaction, is left, inferred and
    empty. The retry stores everything into that same session. (A request stored before its
    answer: a small one is deferred, the next test.)"""
    settings.OBSERVATORY_DEFER_BELOW_RECORDS = 0
    _, key = project_with_key
    request = body(trace(1, ["round-1"]))
    with span_table_locked():
        assert post(key, request) == 503
    assert not ReceivedRecord.objects.exists()
    assert not SpanRow.objects.exists()
    session = Session.objects.get()
    assert (session.external_id, session.is_inferred, session.tags) == (SESSION, True, [])

    assert post(key, request) == 200
    session = Session.objects.get()
    assert not session.is_inferred
    assert session.tags == ["round-1"]
    assert SpanRow.objects.filter(session=session).count() == 3
    assert TraceLink.objects.get().session == session


@pytest.mark.django_db(transaction=True)
def test_a_deferred_request_whose_landing_fails_is_kept_pending_and_landed_by_the_sweep(
    postgres: None, project_with_key: tuple[Project, str]
) -> None:
    """A small request is answered once it is pending; its landing after the answer cannot
    store the spans in time, so it keeps the pending row (its lease runs out), and the sweep
    lands it once the table is free."""
    _, key = project_with_key
    with span_table_locked():
        assert post(key, body(trace(1, ["round-1"]))) == 200
    pending = PendingRequest.objects.get()
    assert not SpanRow.objects.exists()
    PendingRequest.objects.update(
        received_at=pending.received_at - timedelta(seconds=30),
        leased_until=timezone.now() - timedelta(seconds=1),
    )

    assert land_pending_requests_task() == 1

    assert not PendingRequest.objects.exists()
    session = Session.objects.get()
    assert session.tags == ["round-1"]
    assert SpanRow.objects.filter(session=session).count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_session_deleted_after_this_process_claimed_it_is_stored_again(
    postgres: None, project_with_key: tuple[Project, str]
) -> None:
    """The claim remembers the sessions, links and workflows this process claimed and skips
    them next time. A session deleted since (pruned) must still get the next request's
    spans: whether that request names only remembered rows (the claim is skipped and the
    transaction creates the session) or a new trace too (its link would point at the
    remembered, deleted session: the claim forgets and starts again)."""
    _, key = project_with_key
    first, second = trace(1, ["round-1"]), trace(2, ["round-2"])
    assert post(key, body(first[:1])) == 200
    Session.objects.all().delete()

    assert post(key, body(first[1:2])) == 200
    session = Session.objects.get(external_id=SESSION)
    assert list(SpanRow.objects.values_list("session", "name")) == [(session.pk, "step2.tool")]
    Session.objects.all().delete()

    assert post(key, body(second)) == 200
    session = Session.objects.get(external_id=SESSION)
    assert session.tags == ["round-2"]
    assert SpanRow.objects.filter(session=session).count() == 3
    assert set(TraceLink.objects.values_list("session", flat=True)) == {session.pk}


def session_row(project: Project) -> tuple[object, ...]:
    session = Session.objects.get(project=project, external_id=SESSION)
    spans = SpanRow.objects.filter(session=session).count()
    return (
        session.started_at,
        session.ended_at,
        session.end_state,
        session.name,
        session.is_inferred,
        spans,
    )


@pytest.mark.django_db(transaction=True)
def test_a_sessions_start_and_end_do_not_depend_on_the_order_its_traces_arrive_in() -> None:
    """Three traces of one session (each an agentops session root that starts and ends it),
    sent one request each in two orders, and all in one request: the session starts at the
    earliest root and ends at the latest whatever came first. Stored sessions are merged by the
    database's UPDATE and a new one in Python; both give the same row."""
    from ingest.models import ApiKey

    traces = {n: trace(n, [f"round-{n}"]) for n in (1, 2, 3)}
    rows = []
    for name, requests in (
        ("late first", [traces[3], traces[1], traces[2]]),
        ("in order", [traces[1], traces[2], traces[3]]),
        ("one request", [traces[1] + traces[2] + traces[3]]),
    ):
        project = Project.objects.create(name=name, slug=name.replace(" ", "-"))
        _, key = ApiKey.generate(project)
        for spans in requests:
            assert post(key, body(spans)) == 200
        rows.append(session_row(project))
    first_root, last_root = traces[1][-1], traces[3][-1]
    started, ended = rows[0][0], rows[0][1]
    assert isinstance(started, datetime) and isinstance(ended, datetime)
    assert int(started.timestamp()) == first_root.start_time_unix_nano // SECOND
    assert int(ended.timestamp()) == last_root.end_time_unix_nano // SECOND
    assert rows[0] == rows[1] == rows[2]
    assert rows[0][2:] == ("indeterminate", "step0", False, 9)
