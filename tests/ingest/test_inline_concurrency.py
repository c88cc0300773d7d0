"""The inline path (requests stored before their answer, as with redaction on or deferral
off) under concurrent one-span requests of shared agentops traces, against a live gunicorn:
every accepted span, step and run is stored, the same as when the requests come one by one."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from ingest.models import ApiKey, Project, Step, Workflow
from ingest.models import Span as SpanRow
from tests.ingest.live import running_gunicorn, send

START = 1_795_286_852_000_000_000
MS = 1_000_000
SESSIONS = 4
TRACES_PER_SESSION = 6


@pytest.fixture
def inline_gunicorn(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """gunicorn that stores every request before answering it (deferral off)."""
    with running_gunicorn(tmp_path, OBSERVATORY_DEFER_BELOW_RECORDS="0") as url:
        yield url


def agentops_trace(number: int, session_id: str) -> list[Span]:
    """The small trace bench/otlp_bench.py builds, in export order (a span when it ends:
    children first, the session root last): session > workflow > agent > two tasks (each an LLM
    call and a tool, the second tool failing) and one more LLM call, `session.id` on every
    span."""
    rng = random.Random(number)
    trace_id = rng.randbytes(16)
    spans: list[Span] = []
    clock = START + number * 1000 * MS

    def add(name: str, parent: bytes, kind: str, *, begin: int, span_id: bytes) -> None:
        nonlocal clock
        clock += 10 * MS
        values = {"session.id": session_id, "user.id": "bench-user"}
        values |= {"agentops.span.kind": kind} if kind else {"gen_ai.system": "openai"}
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=parent,
                name=name,
                start_time_unix_nano=begin,
                end_time_unix_nano=clock,
                attributes=[
                    KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in values.items()
                ],
            )
        )

    root, workflow, agent = rng.randbytes(8), rng.randbytes(8), rng.randbytes(8)
    begin = clock
    for n in range(2):
        task, task_begin = rng.randbytes(8), clock
        add("openai.chat.completion", task, "", begin=clock, span_id=rng.randbytes(8))
        add(f"search{n}.tool", task, "tool", begin=clock, span_id=rng.randbytes(8))
        if n == 1:
            spans[-1].status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="timeout"))
        add(f"task{n}.task", agent, "task", begin=task_begin, span_id=task)
    add("openai.chat.completion", agent, "", begin=clock, span_id=rng.randbytes(8))
    add("researcher.agent", workflow, "agent", begin=begin, span_id=agent)
    add("research.workflow", root, "workflow", begin=begin, span_id=workflow)
    add(f"run-{number}.session", b"", "session", begin=begin, span_id=root)
    return spans


def one_span_bodies() -> list[bytes]:
    """The traces' spans one per request, as the bench's one-span profile sends them:
    SESSIONS sessions side by side, each ending a trace in turn, TRACES_PER_SESSION each."""
    spans = [
        span
        for turn in range(TRACES_PER_SESSION)
        for session in range(SESSIONS)
        for span in agentops_trace(turn * SESSIONS + session, f"live-{session}")
    ]
    return [
        ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
        ).SerializeToString()
        for span in spans
    ]


def stored(project: Project) -> dict[str, Any]:
    """What a user sees of the project: its spans (with their error rows), each run by its
    workflow id with its steps' ids."""
    runs = {
        w.workflow_id: sorted(Step.objects.filter(workflow=w).values_list("step_id", flat=True))
        for w in Workflow.objects.filter(project=project)
    }
    spans = sorted(SpanRow.objects.filter(project=project).values_list("span_id", "kind", "status"))
    return {"spans": spans, "runs": runs}


def test_concurrent_one_span_requests_of_shared_traces_store_what_one_by_one_requests_do(
    inline_gunicorn: str,
) -> None:
    bodies = one_span_bodies()
    one_by_one = Project.objects.create(name="One by one", slug="one-by-one")
    concurrent = Project.objects.create(name="Concurrent", slug="concurrent")
    _, one_key = ApiKey.generate(one_by_one)
    _, concurrent_key = ApiKey.generate(concurrent)

    assert [send(inline_gunicorn, one_key, data) for data in bodies] == [200] * len(bodies)
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda data: send(inline_gunicorn, concurrent_key, data), bodies))

    assert statuses == [200] * len(bodies)
    expected = stored(one_by_one)
    assert (
        len(expected["runs"]) == SESSIONS * TRACES_PER_SESSION
    )  # every step in its workflow's run, no implicit run
    assert stored(concurrent) == expected
