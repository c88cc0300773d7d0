"""Deferred landing (ingest/landing.py): a small OTLP request is answered once its body is
committed as a pending request, and its records are stored just after the answer, together with
the other pending requests of its project."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.signals import request_finished
from django.db import connection
from django.test import Client
from django.utils import timezone
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from ingest.landing import (
    MAX_LANDING_BATCHES,
    land_after_response,
    land_backlog,
    land_pending,
)
from ingest.models import (
    IngestRejection,
    PendingRequest,
    Project,
    ReceivedRecord,
    Session,
    Step,
    Workflow,
)
from ingest.models import Span as SpanRow
from ingest.otlp_parsing import request_key
from ingest.tasks import land_pending_requests_task
from tests.ingest.live import running_gunicorn, send
from tests.waiting import landings_settled, wait_until

START = 1_795_286_852_000_000_000
SECOND = 1_000_000_000
SESSION = "chat-deferred"
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")


def span(n: int, *, kind: str = "task", name: str = "", **extra: str) -> Span:
    """Span n of TRACE: 0 is the agentops session root, the others its task children."""
    attributes = {"agentops.span.kind": kind, "session.id": SESSION, **extra}
    return Span(
        trace_id=TRACE,
        span_id=(1000 + n).to_bytes(8, "big"),
        parent_span_id=b"" if n == 0 else (1000).to_bytes(8, "big"),
        name=name or f"step{n}.{kind}",
        start_time_unix_nano=START + n * SECOND,
        end_time_unix_nano=START + (n + 1) * SECOND if n else START + 3600 * SECOND,
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items()],
    )


def body(*spans: Span) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])]
    )
    return request.SerializeToString()


def post(key: str, data: bytes) -> ExportTraceServiceResponse:
    answer = Client().post(
        "/v1/traces", data, content_type="application/x-protobuf", headers={"X-API-Key": key}
    )
    assert answer.status_code == 200, answer.content
    return ExportTraceServiceResponse.FromString(answer.content)


@pytest.fixture
def without_landing_after_response() -> Iterator[None]:
    """As if the process that answered died before its landing: the pending row stays."""
    request_finished.disconnect(dispatch_uid="ingest-land-pending")
    try:
        yield
    finally:
        request_finished.connect(land_after_response, dispatch_uid="ingest-land-pending")


def test_a_one_span_request_is_visible_through_the_api_right_after_its_answer(
    project_with_key: tuple[Project, str],
) -> None:
    _, key = project_with_key
    post(key, body(span(0, kind="session")))
    post(key, body(span(1, name="search the docs")))

    answer = Client().get("/api/v1/events/", headers={"X-API-Key": key})

    assert answer.status_code == 200
    names = {row["name"] for row in answer.json()["results"]}
    assert "search the docs" in names
    assert not PendingRequest.objects.exists()


def test_a_retried_one_span_request_stores_nothing_twice(
    project_with_key: tuple[Project, str],
) -> None:
    project, key = project_with_key
    data = body(span(1))
    post(key, data)
    post(key, data)

    assert SpanRow.objects.filter(project=project).count() == 1
    assert ReceivedRecord.objects.filter(record_id=request_key("traces", data)).count() == 1
    assert Step.objects.filter(workflow__session__project=project).count() == 1
    assert not PendingRequest.objects.exists()


def test_a_retry_while_the_first_is_still_pending_keeps_one_pending_request(
    project_with_key: tuple[Project, str], without_landing_after_response: None
) -> None:
    project, key = project_with_key
    data = body(span(1))
    post(key, data)
    post(key, data)

    assert PendingRequest.objects.filter(project=project).count() == 1
    assert not SpanRow.objects.filter(project=project).exists()
    assert land_pending(project) == 1
    assert SpanRow.objects.filter(project=project).count() == 1


def test_small_requests_wait_as_pending_and_big_ones_are_stored_before_the_answer(
    project_with_key: tuple[Project, str], without_landing_after_response: None, settings: Any
) -> None:
    project, key = project_with_key
    small, big = body(span(1)), body(span(2), span(3), span(4))
    settings.OBSERVATORY_DEFER_BELOW_RECORDS = 2  # spans, for a protobuf trace request
    post(key, small)
    post(key, big)

    stored = set(SpanRow.objects.filter(project=project).values_list("name", flat=True))
    assert stored == {"step2.task", "step3.task", "step4.task"}
    assert PendingRequest.objects.filter(project=project).count() == 1


def test_many_pending_requests_land_together_in_one_batch(
    project_with_key: tuple[Project, str],
    without_landing_after_response: None,
    django_assert_max_num_queries: object,
) -> None:
    """What makes deferral pay: 30 requests' records are stored by one store call, in about the
    statements one request took before, not 30 times as many."""
    project, key = project_with_key
    post(key, body(span(0, kind="session")))
    for n in range(1, 31):
        post(key, body(span(n)))
    assert PendingRequest.objects.filter(project=project).count() == 31

    with django_assert_max_num_queries(40):  # type: ignore[operator]
        assert land_pending(project) == 31

    assert SpanRow.objects.filter(project=project).count() == 31
    assert Session.objects.filter(project=project).count() == 1
    assert Step.objects.filter(workflow__session__project=project).count() == 30
    assert not PendingRequest.objects.exists()


def test_a_pending_request_whose_landing_was_lost_is_landed_by_the_sweep(
    project_with_key: tuple[Project, str], without_landing_after_response: None
) -> None:
    project, key = project_with_key
    post(key, body(span(1, name="left behind")))
    pending = PendingRequest.objects.get(project=project)
    # A landing that claimed it and died: its lease has run out, and beat's period has passed.
    pending.received_at = timezone.now() - timedelta(seconds=30)
    pending.leased_until = timezone.now() - timedelta(seconds=1)
    pending.save()

    assert land_pending_requests_task() == 1

    assert SpanRow.objects.get(project=project).name == "left behind"
    assert not PendingRequest.objects.exists()


def test_a_pending_request_a_landing_holds_is_not_landed_twice(
    project_with_key: tuple[Project, str], without_landing_after_response: None
) -> None:
    project, key = project_with_key
    post(key, body(span(1)))
    PendingRequest.objects.update(
        received_at=timezone.now() - timedelta(seconds=30),
        leased_until=timezone.now() + timedelta(seconds=30),
    )

    assert land_pending_requests_task() == 0
    assert land_pending(project) == 0
    assert PendingRequest.objects.filter(project=project).count() == 1


def test_a_bad_span_in_a_deferred_request_is_an_ingest_problem_and_the_good_ones_land(
    project_with_key: tuple[Project, str],
) -> None:
    project, key = project_with_key
    bad = span(2, name="ends before it starts")
    bad.end_time_unix_nano = bad.start_time_unix_nano - SECOND

    answer = post(key, body(span(1, name="good one"), bad, span(3, name="good two")))

    assert answer.partial_success.rejected_spans == 1
    assert "endTimeUnixNano" in answer.partial_success.error_message
    stored = set(SpanRow.objects.filter(project=project).values_list("name", flat=True))
    assert stored == {"good one", "good two"}
    problem = IngestRejection.objects.get(project=project)
    assert (problem.source, problem.field) == (
        "otlp-traces",
        "resourceSpans[0].scopeSpans[0].spans[1].endTimeUnixNano",
    )
    assert "ends before it starts" in problem.raw
    assert not PendingRequest.objects.exists()


def test_a_request_of_a_project_with_redaction_is_never_kept_unredacted_as_pending(
    project_with_key: tuple[Project, str], without_landing_after_response: None
) -> None:
    project, key = project_with_key
    project.is_redaction_enabled = True
    project.redaction_detectors = ["email"]
    project.save()

    post(key, body(span(1, **{"gen_ai.prompt": "mail ada@example.com"})))

    assert not PendingRequest.objects.exists()
    assert SpanRow.objects.filter(project=project).count() == 1


def test_what_a_lander_leaves_at_its_bound_is_landed_though_no_request_follows(
    transactional_db: None,
    project_with_key: tuple[Project, str],
    without_landing_after_response: None,
    settings: Any,
) -> None:
    """The spans a one-span bench run left unstored (bench/README.md, "The lost landings"):
    requests answered while another process landed left their rows to it, and that lander
    stopped after MAX_LANDING_BATCHES batches, leaving them to a next request that a server
    gone idle never gets. Here the rows wait as those requests left them, a batch is one
    request, and the request's lander meets its bound."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite (one writer, no landing lock) lands a backlog whole")
    project, key = project_with_key
    settings.OBSERVATORY_LANDING_BATCH_REQUESTS = 1
    sent = MAX_LANDING_BATCHES + 5
    for n in range(sent):
        post(key, body(span(n, kind="session" if n == 0 else "task")))

    assert land_backlog(project) == MAX_LANDING_BATCHES

    wait_until(landings_settled, what="the rest to be landed")
    assert SpanRow.objects.filter(project=project).count() == sent


# --- against a live gunicorn -------------------------------------------------------------------


@pytest.fixture
def gunicorn(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """gunicorn with sync workers on the test database: where request_finished is sent after
    the response is written. Its URL."""
    with running_gunicorn(tmp_path) as url:
        yield url


def test_concurrent_one_span_requests_of_one_trace_give_one_session_and_run_with_every_span(
    gunicorn: str, admin_user: object
) -> None:
    from ingest.models import ApiKey

    project = Project.objects.create(name="Live", slug="live")
    _, key = ApiKey.generate(project)
    bodies = [body(span(n, kind="session" if n == 0 else "task")) for n in range(41)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda data: send(gunicorn, key, data), bodies))
    assert statuses == [200] * 41
    # Each answer came before its landing; the last landings may still be running.
    deadline = time.monotonic() + 30
    while PendingRequest.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)

    assert not PendingRequest.objects.exists()
    assert SpanRow.objects.filter(project=project).count() == 41
    session = Session.objects.get(project=project)
    assert session.external_id == SESSION
    run = Workflow.objects.get(session=session)
    assert Step.objects.filter(workflow=run).count() == 40


def test_an_erasure_lands_the_pending_requests_it_covers_so_they_cannot_bring_its_sessions_back(
    project_with_key: tuple[Project, str], without_landing_after_response: None
) -> None:
    from analytics.deletion import request_erasure, run_erasure
    from ingest.models import ErasureRequest

    project, key = project_with_key
    # Answered, not stored yet: the session root naming the tag, and one of its spans.
    post(key, body(span(0, kind="session", **{"agentops.tags": '["erase-me"]'})))
    post(key, body(span(1, name="personal data")))
    assert PendingRequest.objects.filter(project=project).count() == 2
    assert not Session.objects.filter(project=project).exists()

    erasure = request_erasure(project, ErasureRequest.Kind.TAG, "erase-me", actor="test")
    done = run_erasure(erasure.pk)

    assert done is not None and done.status == ErasureRequest.Status.DONE
    assert done.session_count == 1
    assert not PendingRequest.objects.filter(project=project).exists()
    assert not Session.objects.filter(project=project).exists()
    assert not SpanRow.objects.filter(project=project).exists()
