"""Load generator for OTLP/HTTP traces (POST /v1/traces, protobuf): prints throughput figures.

Sends `--spans` realistic agent spans as ExportTraceServiceRequest bodies of `--batch` spans (512:
what the agentops SDK's BatchSpanProcessor sends at most) from `--concurrency` threads that each
keep one HTTP connection alive. Spans follow the agentops 0.4 and GenAI conventions: session,
workflow, agent and task spans, LLM spans (gen_ai.* with a few hundred bytes of prompt and
completion, token usage), tool spans (agentops.tool.input/output, cost), tool-call request spans
and 3 % failing tools with two exception events each, as the SDK records them. Bodies are built
before the clock starts. Afterwards it parses the same bodies in this process with
ingest.formats.otlp.parse_otlp_traces, one core, to show the parser's ceiling.

With --count-db (and the server's DATABASE_URL in the environment) the Span rows are counted back
from the database and compared with what the bodies should produce.

Exit status: 0 when every request got a 200 without rejected spans (and, with --count-db, the
database holds the expected rows); 1 otherwise.

    python bench/otlp_bench.py --url http://127.0.0.1:8000 --api-key <key> --spans 204800
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import queue
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from ingest_bench import check_url, cpu_seconds, parse_cpu_roots, percentile, sentence
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

BASE_DIR = Path(__file__).resolve().parent.parent
MODELS = (
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "OpenAI"),
    ("gpt-4o", "gpt-4o-2024-08-06", "OpenAI"),
    ("claude-sonnet-4", "claude-sonnet-4-20250514", "Anthropic"),
)
TOOLS = ("search_web", "fetch_page", "run_sql", "read_file", "calculator")
TASKS = ("plan", "research", "draft_answer", "review", "summarize")
AGENTS = ("ResearchAgent", "WriterAgent", "ReviewerAgent")
TOOL_ERROR_RATE = 0.03
TOOL_CALL_REQUEST_RATE = 0.15
SCOPE_TOOL_CALLS = "agentops.instrumentation.providers.openai.wrappers.chat"
START_NS = 1_795_286_852_000_000_000  # 2026-11-21


def kv(key: str, value: str | int | float | bool | list[str]) -> KeyValue:
    if isinstance(value, bool):
        any_value = AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = AnyValue(int_value=value)
    elif isinstance(value, float):
        any_value = AnyValue(double_value=value)
    elif isinstance(value, list):
        any_value = AnyValue(
            array_value=ArrayValue(values=[AnyValue(string_value=v) for v in value])
        )
    else:
        any_value = AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def attributes(values: dict[str, Any]) -> list[KeyValue]:
    return [kv(key, value) for key, value in values.items()]


@dataclass
class TraceBuilder:
    """The spans of one agentops trace in the order the SDK exports them: each span after its
    children (a span is exported when it ends), the session root last."""

    rng: random.Random
    trace_id: bytes
    clock: int
    spans: list[tuple[str, Span]] = field(default_factory=list)  # (scope name, span)
    session_id: str = ""  # set: `session.id` on every span, as OpenInference/OpenLLMetry do
    tool_call_rate: float = TOOL_CALL_REQUEST_RATE

    def add(
        self,
        scope: str,
        name: str,
        parent: bytes,
        values: dict[str, Any],
        *,
        kind: int = Span.SPAN_KIND_INTERNAL,
        duration_ms: int = 0,
        span_id: bytes | None = None,
        start: int | None = None,
    ) -> bytes:
        """A span that starts now and lasts duration_ms or, given `start`, one that began then
        and ends now (a parent whose children were added first)."""
        span_id = span_id or self.rng.randbytes(8)
        began = self.clock if start is None else start
        self.clock += max(duration_ms, 1) * 1_000_000
        if self.session_id:
            values = {**values, "session.id": self.session_id, "user.id": "bench-user"}
        span = Span(
            trace_id=self.trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name=name,
            kind=kind,
            start_time_unix_nano=began,
            end_time_unix_nano=self.clock,
            attributes=attributes(values),
            flags=256,
        )
        self.spans.append((scope, span))
        return span_id

    def llm(self, parent: bytes) -> None:
        rng = self.rng
        request_model, response_model, system = rng.choice(MODELS)
        prompt_tokens, completion_tokens = rng.randint(200, 4000), rng.randint(20, 600)
        wants_tool = rng.random() < self.tool_call_rate
        values: dict[str, Any] = {
            "gen_ai.system": system,
            "gen_ai.request.type": "chat",
            "gen_ai.request.model": request_model,
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 1024,
            "gen_ai.request.streaming": False,
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "You are a careful research assistant. Cite sources.",
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": sentence(rng, 300),
            "gen_ai.response.model": response_model,
            "gen_ai.response.id": f"chatcmpl-{rng.randbytes(12).hex()}",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": sentence(rng, 250),
            "gen_ai.completion.0.finish_reason": "tool_calls" if wants_tool else "stop",
            "gen_ai.usage.prompt_tokens": prompt_tokens,
            "gen_ai.usage.completion_tokens": completion_tokens,
            "gen_ai.usage.total_tokens": prompt_tokens + completion_tokens,
            "gen_ai.openai.system_fingerprint": "fp_44709d6fcb",
        }
        llm_id, start = rng.randbytes(8), self.clock
        self.clock += rng.randint(300, 3000) * 1_000_000
        if wants_tool:
            tool = rng.choice(TOOLS)
            call = {
                "tool.name": tool,
                "tool.parameters": json.dumps({"query": sentence(rng, 60)}),
                "tool.call.id": f"call_{rng.randbytes(12).hex()}",
                "tool.call.type": "function",
            }
            self.add(SCOPE_TOOL_CALLS, f"tool_call.{tool}", llm_id, call)
        self.add(
            "openai",
            "openai.chat.completion",
            parent,
            values,
            kind=Span.SPAN_KIND_CLIENT,
            span_id=llm_id,
            start=start,
        )

    def tool(self, parent: bytes) -> None:
        rng = self.rng
        name = rng.choice(TOOLS)
        values: dict[str, Any] = {
            "agentops.span.kind": "tool",
            "operation.name": name,
            "agentops.tool.input": json.dumps(
                {"args": [sentence(rng, 120)], "kwargs": {"limit": 10, "timeout_s": 30}}
            ),
            "gen_ai.usage.total_cost": 0.01,
        }
        failed = rng.random() < TOOL_ERROR_RATE
        if not failed:
            values["agentops.tool.output"] = json.dumps(
                {"hits": rng.randint(0, 10), "first": sentence(rng, 120)}
            )
        self.add("agentops", f"{name}.tool", parent, values, duration_ms=rng.randint(5, 800))
        if failed:
            fail(self.spans[-1][1])

    def task(self, parent: bytes) -> None:
        """A task that asks the model and then runs a tool: 3 or 4 spans."""
        task_id, start, name = self.rng.randbytes(8), self.clock, self.rng.choice(TASKS)
        self.llm(task_id)
        self.tool(task_id)
        values = {
            "agentops.span.kind": "task",
            "operation.name": name,
            "agentops.task.input": json.dumps({"args": [sentence(self.rng, 80)], "kwargs": {}}),
            "agentops.task.output": sentence(self.rng, 60),
        }
        self.add("agentops", f"{name}.task", parent, values, span_id=task_id, start=start)


def fail(span: Span) -> None:
    """As agentops records an exception: ERROR status and the same exception event twice."""
    span.status.CopyFrom(
        Status(code=Status.STATUS_CODE_ERROR, message="TimeoutError: upstream timed out")
    )
    event = Span.Event(
        time_unix_nano=span.end_time_unix_nano,
        name="exception",
        attributes=attributes(
            {
                "exception.type": "TimeoutError",
                "exception.message": "upstream timed out",
                "exception.stacktrace": "Traceback (most recent call last):\n"
                '  File "agent.py", line 42, in search\nTimeoutError: upstream timed out\n',
                "exception.escaped": "False",
            }
        ),
    )
    span.events.extend([event, event])


def build_trace(
    rng: random.Random, index: int, size: int, session_id: str = "", *, small: bool = False
) -> TraceBuilder:
    """One trace of exactly `size` spans: session root > workflow > agent > tasks (each an LLM
    call, sometimes with a tool-call request, and a tool), topped up with tool spans. `small`:
    the 10-span trace of the small-traces profile (2 tasks, one more LLM call, no tool-call
    requests), with `session_id` as `session.id` on every span."""
    trace = TraceBuilder(
        rng=rng,
        trace_id=uuid.uuid4().bytes,
        clock=START_NS + index * 10**9,
        session_id=session_id,
        tool_call_rate=0.0 if small else TOOL_CALL_REQUEST_RATE,
    )
    start = trace.clock
    root_id, workflow_id, agent_id = rng.randbytes(8), rng.randbytes(8), rng.randbytes(8)
    if small:
        trace.task(agent_id)
        trace.task(agent_id)
        trace.llm(agent_id)
    else:
        while len(trace.spans) <= size - 3 - 4:
            trace.task(agent_id)
        while len(trace.spans) < size - 3:
            trace.tool(agent_id)
    agent = rng.choice(AGENTS)
    trace.add(
        "agentops",
        f"{agent}.agent",
        workflow_id,
        {
            "agentops.span.kind": "agent",
            "operation.name": agent,
            "agentops.entity.input": json.dumps({"args": [], "kwargs": {"model": "gpt-4o"}}),
        },
        span_id=agent_id,
        start=start,
    )
    trace.add(
        "agentops",
        "research.workflow",
        root_id,
        {
            "agentops.span.kind": "workflow",
            "operation.name": "research",
            "agentops.workflow.input": json.dumps({"args": [sentence(rng, 100)], "kwargs": {}}),
        },
        span_id=workflow_id,
        start=start,
    )
    trace.add(
        "agentops",
        f"bench-run-{index}.session",
        b"",
        {
            "agentops.span.kind": "session",
            "operation.name": f"bench-run-{index}",
            "agentops.tags": ["bench", f"shard-{index % 4}"],
            "agentops.session.end_state": "Success",
        },
        span_id=root_id,
        start=start,
    )
    return trace


def expected_rows(spans: list[tuple[str, Span]]) -> int:
    """Span rows the server should store: one per span except tool-call requests (attached to
    their LLM call), plus one error row per failed span (its two exception events are one)."""
    rows = 0
    for _, span in spans:
        rows += not span.name.startswith("tool_call.")
        rows += span.status.code == Status.STATUS_CODE_ERROR
    return rows


RESOURCE = Resource(
    attributes=attributes(
        {
            "service.name": "agentops",
            "agentops.project.id": "temporary",
            "imported_libraries": ["agentops", "openai", "asyncio"],
        }
    )
)


@dataclass(frozen=True)
class Body:
    data: bytes
    raw: bytes  # uncompressed, for the in-process parse
    spans: int
    rows: int


def encode(traces: list[TraceBuilder], compress: bool) -> Body:
    return encode_spans([s for trace in traces for s in trace.spans], compress)


def encode_spans(spans: list[tuple[str, Span]], compress: bool) -> Body:
    by_scope: dict[str, list[Span]] = {}
    for scope, span in spans:
        by_scope.setdefault(scope, []).append(span)
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=RESOURCE,
                scope_spans=[
                    ScopeSpans(scope=InstrumentationScope(name=scope), spans=spans)
                    for scope, spans in by_scope.items()
                ],
            )
        ]
    )
    raw = request.SerializeToString()
    return Body(
        data=gzip.compress(raw, compresslevel=1) if compress else raw,
        raw=raw,
        spans=len(spans),
        rows=expected_rows(spans),
    )


def generate(args: argparse.Namespace) -> tuple[list[Body], list[Body]]:
    """Warm-up bodies (one small trace per request, to start every gunicorn worker) and the
    measured bodies (args.batch // args.trace_spans whole traces each)."""
    rng = random.Random(args.seed)
    if args.session_ids:
        return generate_sessions(args, rng)
    per_body = max(1, args.batch // args.trace_spans)
    traces = -(-args.spans // args.trace_spans)
    warm = [encode([build_trace(rng, -1 - i, 16)], args.gzip) for i in range(2 * args.concurrency)]
    bodies = []
    for first in range(0, traces, per_body):
        last = min(traces, first + per_body)
        bodies.append(
            encode([build_trace(rng, i, args.trace_spans) for i in range(first, last)], args.gzip)
        )
    return warm, bodies


def generate_sessions(
    args: argparse.Namespace, rng: random.Random
) -> tuple[list[Body], list[Body]]:
    """Small traces with `session.id` on every span, each session's traces spread over several
    requests, as when agents run for minutes: `--live-sessions` sessions run side by side, each
    ending a trace in turn, `--session-traces` traces each; the spans go out in the order they
    end, `--batch` to a request (so traces, too, are sometimes split between two requests)."""
    warm = [
        encode([build_trace(rng, -1 - i, 10, f"warm-{uuid.uuid4()}", small=True)], args.gzip)
        for i in range(2 * args.concurrency)
    ]
    stream: list[tuple[str, Span]] = []
    index = 0
    while len(stream) < args.spans:
        cohort = [str(uuid.uuid4()) for _ in range(args.live_sessions)]
        for _ in range(args.session_traces):
            for session_id in cohort:
                stream.extend(build_trace(rng, index, 10, session_id, small=True).spans)
                index += 1
    stream = stream[: args.spans]
    bodies = [
        encode_spans(stream[i : i + args.batch], args.gzip)
        for i in range(0, len(stream), args.batch)
    ]
    return warm, bodies


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    spans: int = 0
    requests_ok: int = 0
    rejected: int = 0
    non_200: int = 0
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


def post_all(
    args: argparse.Namespace, bodies: list[Body], tally: Tally, deadline: float, rate: float = 0
) -> None:
    """Send every body from --concurrency connections: as fast as the server answers, or with
    `rate` (spans/s) each request at its due time, its latency counted from then (an open loop:
    a server that falls behind shows it in the latency, not in a slower offered load)."""
    work: queue.SimpleQueue[tuple[float, Body]] = queue.SimpleQueue()
    start = time.perf_counter() + 0.05
    sent = 0
    for body in bodies:
        work.put((start + sent / rate if rate else 0.0, body))
        sent += body.spans
    threads = [
        threading.Thread(target=worker, args=(args, work, tally, deadline), daemon=True)
        for _ in range(args.concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + args.timeout + 5)


def worker(
    args: argparse.Namespace,
    work: queue.SimpleQueue[tuple[float, Body]],
    tally: Tally,
    deadline: float,
) -> None:
    endpoint = args.url.rstrip("/") + "/v1/traces"
    headers = {"x-api-key": args.api_key, "Content-Type": "application/x-protobuf"}
    if args.gzip:
        headers["Content-Encoding"] = "gzip"
    with requests.Session() as http:
        while time.monotonic() < deadline:
            try:
                due, body = work.get_nowait()
            except queue.Empty:
                return
            started = time.perf_counter()
            if due > started:
                time.sleep(due - started)
            started = due or started
            try:
                response = http.post(
                    endpoint, data=body.data, headers=headers, timeout=args.timeout
                )
            except requests.RequestException as exc:
                record(tally, body, None, 0.0, f"{type(exc).__name__}: {exc}")
                continue
            record(tally, body, response, (time.perf_counter() - started) * 1000, "")


def record(
    tally: Tally, body: Body, response: requests.Response | None, ms: float, failure: str
) -> None:
    rejected = 0
    if response is not None and response.status_code == 200:
        answer = ExportTraceServiceResponse.FromString(response.content)
        rejected = answer.partial_success.rejected_spans
        failure = answer.partial_success.error_message if rejected else ""
    elif response is not None:
        failure = f"HTTP {response.status_code}: {response.text[:300]}"
    with tally.lock:
        tally.spans += body.spans
        if response is not None:
            tally.latencies_ms.append(ms)
        if response is None or response.status_code != 200:
            tally.non_200 += 1
        else:
            tally.requests_ok += 1
            tally.rejected += rejected
        if failure and len(tally.errors) < 5:
            tally.errors.append(failure[:300])


def parse_rate(bodies: list[Body], max_seconds: float) -> tuple[float, float, float]:
    """Spans/s of parse_otlp_traces on one core over the bodies (as long as max_seconds allows),
    and the share of that time spent decoding vs mapping."""
    sys.path.insert(0, str(BASE_DIR))
    from ingest.formats.otlp import decode_protobuf_traces, map_spans, parse_otlp_traces

    limit = 1_000_000
    spans = 0
    started = time.perf_counter()
    for body in bodies:
        parse_otlp_traces(body.raw, "application/x-protobuf", max_string_chars=limit)
        spans += body.spans
        if time.perf_counter() - started > max_seconds:
            break
    elapsed = time.perf_counter() - started
    sample = bodies[: max(1, len(bodies) // 10)]
    decode = mapping = 0.0
    for body in sample:
        t0 = time.perf_counter()
        batch = decode_protobuf_traces(body.raw, max_string_chars=limit)
        t1 = time.perf_counter()
        map_spans(batch.items)
        decode, mapping = decode + t1 - t0, mapping + time.perf_counter() - t1
    return spans / elapsed, decode / (decode + mapping), mapping / (decode + mapping)


def span_rows_in_database() -> int:
    """Span rows in the server's database (DATABASE_URL), through the project's own models."""
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from ingest.models import Span as SpanRow

    return int(SpanRow.objects.count())


class WaitSampler:
    """Samples pg_stat_activity every 50 ms while the bench sends: the wait event of each active
    client backend (CPU when it waits on nothing) and its query's first words, so the figures
    show whether requests queue on locks."""

    QUERY = (
        "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), "
        "regexp_replace(left(query, 40), '\\s+', ' ', 'g') FROM pg_stat_activity "
        "WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )

    def __init__(self, url: str) -> None:
        self.url = url
        self.counts: dict[tuple[str, str], int] = {}
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.wait(0.05):
                rows = conn.execute(self.QUERY).fetchall()
                self.samples += 1
                for event, query in rows:
                    key = (event, query.strip())
                    self.counts[key] = self.counts.get(key, 0) + 1

    def lines(self, top: int = 8) -> list[str]:
        active = sum(self.counts.values())
        waiting = sum(n for (event, _), n in self.counts.items() if event.startswith("Lock"))
        lines = [
            f"pg_stat_activity, {self.samples} samples: {active / max(1, self.samples):.2f} "
            f"active backends on average, {100 * waiting / max(1, active):.0f} % of them "
            "waiting on a lock"
        ]
        ranked = sorted(self.counts.items(), key=lambda item: -item[1])[:top]
        lines += [f"  {n:>5}  {event:<28} {query}" for (event, query), n in ranked]
        return lines


class LagProbe:
    """Every 0.25 s while the bench sends, one more one-span request (session `lag-probe`), then
    polls the database every 5 ms until its span is there: the time from the answer to the span
    being visible to pages and the API (deferred landing stores small requests after the
    answer). Index lookups only: (project, external_id) for the session, (session, span_id)."""

    QUERY = (
        "SELECT 1 FROM ingest_span s JOIN ingest_session ss ON ss.id = s.session_id "
        "WHERE ss.external_id = 'lag-probe' AND s.span_id = %s"
    )

    def __init__(self, args: argparse.Namespace, db_url: str) -> None:
        self.args, self.db_url = args, db_url
        self.lags_ms: list[float] = []
        self.sent = self.lost = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def body(self, number: int) -> tuple[bytes, str]:
        span_id = os.urandom(8)
        now = time.time_ns()
        attributes = {"session.id": "lag-probe", "agentops.span.kind": "task"}
        span = Span(
            trace_id=os.urandom(16),
            span_id=span_id,
            name=f"probe {number}",
            start_time_unix_nano=now - 1_000_000,
            end_time_unix_nano=now,
            attributes=[
                KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items()
            ],
        )
        request = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
        )
        return request.SerializeToString(), span_id.hex()

    def run(self) -> None:
        import psycopg

        endpoint = self.args.url.rstrip("/") + "/v1/traces"
        headers = {"x-api-key": self.args.api_key, "Content-Type": "application/x-protobuf"}
        with psycopg.connect(self.db_url, autocommit=True) as conn, requests.Session() as http:
            while not self.stop.wait(0.25):
                data, span_id = self.body(self.sent)
                try:
                    answer = http.post(endpoint, data=data, headers=headers, timeout=60)
                except requests.RequestException:
                    continue
                answered = time.perf_counter()
                if answer.status_code != 200:
                    continue
                self.sent += 1
                while conn.execute(self.QUERY, [span_id]).fetchone() is None:
                    if time.perf_counter() - answered > 60:
                        self.lost += 1
                        break
                    time.sleep(0.005)
                else:
                    self.lags_ms.append((time.perf_counter() - answered) * 1000)

    def line(self) -> str:
        lags = sorted(self.lags_ms)
        if not lags:
            return "landing lag: no probe answered"
        return (
            f"landing lag (answer -> span visible, {len(lags)} probe requests every 0.25 s): "
            f"p50={percentile(lags, 0.50):.0f} ms p99={percentile(lags, 0.99):.0f} ms "
            f"max={lags[-1]:.0f} ms"
            + (f", {self.lost} not visible after 60 s" if self.lost else "")
        )


def wait_for_landings(seconds: float) -> float:
    """Seconds until no pending request is left (deferred landing), at most `seconds`."""
    from ingest.models import PendingRequest

    started = time.perf_counter()
    while PendingRequest.objects.exists() and time.perf_counter() - started < seconds:
        time.sleep(0.05)
    return time.perf_counter() - started


def cpu_lines(
    before: dict[str, float] | None, wall: float, spans: int, roots: dict[str, int]
) -> list[str]:
    """Where the cores went while sending, and the server's CPU per 1,000 spans (the figure that
    does not depend on other load on the machine)."""
    after = cpu_seconds(roots)
    if not before or not after or wall <= 0:
        return ["cpu: not measured (no /proc)"]
    cores = os.cpu_count() or 1
    spent = {k: after[k] - before.get(k, 0.0) for k in after}
    machine = spent.pop("machine")
    other = max(0.0, machine - sum(spent.values()))
    parts = ", ".join(f"{k} {100 * v / wall / cores:.0f} %" for k, v in spent.items())
    lines = [
        f"cpu while sending, % of {cores} cores: machine busy {100 * machine / wall / cores:.0f} %"
        f" = {parts}, other processes {100 * other / wall / cores:.0f} %"
    ]
    server = {k: v for k, v in spent.items() if k != "bench client"}
    if server:
        lines.append(f"server cores busy: {sum(server.values()) / wall:.2f} of {cores}")
    if server and spans:
        total = sum(server.values())
        each = ", ".join(f"{k} {1e6 * v / spans:.0f}" for k, v in server.items())
        lines.append(
            f"server cpu per 1,000 spans: {1e6 * total / spans:.0f} ms ({each}); "
            f"ceiling if the server had all {cores} cores: {spans * cores / total:,.0f} spans/s"
        )
    return lines


def report(args: argparse.Namespace, bodies: list[Body], tally: Tally, wall: float) -> bool:
    size = sum(len(b.raw) for b in bodies)
    total = sum(b.spans for b in bodies)
    lat = tally.latencies_ms
    shape = (
        f"spans/trace=10 session.id on every span, {args.live_sessions} sessions at a time, "
        f"{args.session_traces} traces each"
        if args.session_ids
        else f"spans/trace={args.trace_spans} no session.id"
    )
    print(
        f"profile: {args.profile}  target: {args.url}/v1/traces  batch={args.batch} {shape} "
        f"concurrency={args.concurrency} gzip={args.gzip}"
        + (f" offered={args.rate:,.0f} spans/s" if args.rate else "")
    )
    print(
        f"bodies: {len(bodies)} of {size / len(bodies) / 1024:.0f} KiB ({size / total:.0f} B/span)"
    )
    print(f"spans sent: {tally.spans} of {total}  wall time: {wall:.2f} s")
    print(f"spans/s: {tally.spans / wall if wall else 0:,.0f}")
    print(f"requests/s: {len(lat) / wall if wall else 0:,.0f}")
    print(
        f"latency ms: p50={percentile(lat, 0.50):.1f} p95={percentile(lat, 0.95):.1f} "
        f"p99={percentile(lat, 0.99):.1f} max={max(lat, default=float('nan')):.1f}"
    )
    print(f"non-200 responses: {tally.non_200}  rejected spans: {tally.rejected}")
    for message in tally.errors:
        print(f"error: {message}")
    return tally.spans == total and tally.non_200 == 0 and tally.rejected == 0


# Named workloads (--profile); an option given on the command line overrides its value.
PROFILES: dict[str, dict[str, Any]] = {
    # The headline: what OpenInference, OpenLLMetry and agentops send from running agents.
    "small-traces": {"spans": 204_800, "batch": 512, "concurrency": 8, "session_ids": True},
    # SimpleSpanProcessor: every span exported alone as it ends.
    "one-span": {"spans": 20_000, "batch": 1, "concurrency": 8, "session_ids": True},
    # A steady offered load: 5,000 spans/s in requests of 128 spans (many small exporters).
    "steady-5k": {
        "spans": 150_000,
        "batch": 128,
        "concurrency": 16,
        "session_ids": True,
        "rate": 5000.0,
    },
    # The profile published first: 64-span agentops traces, no session.id.
    "bigger-traces": {"spans": 204_800, "batch": 512, "concurrency": 8, "session_ids": False},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="Server root, e.g. http://127.0.0.1:8000")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--profile", choices=PROFILES, default="small-traces")
    parser.add_argument("--spans", type=int)
    parser.add_argument("--batch", type=int, help="Spans per request")
    parser.add_argument(
        "--trace-spans", type=int, default=64, help="Spans per trace (bigger-traces)"
    )
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--rate", type=float, help="Offered load in spans/s (0: as fast as can be)")
    parser.add_argument("--live-sessions", type=int, default=64, help="Sessions running at once")
    parser.add_argument("--session-traces", type=int, default=4, help="Traces per session")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="Stop sending after this")
    parser.add_argument("--timeout", type=float, default=60.0, help="Per-request timeout (s)")
    parser.add_argument("--gzip", action="store_true", help="Send Content-Encoding: gzip bodies")
    parser.add_argument("--parse-seconds", type=float, default=20.0, help="Parse-rate time cap")
    parser.add_argument("--count-db", action="store_true", help="Count Span rows (DATABASE_URL)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cpu-roots", default="", help="name=pid,... trees to report CPU for")
    args = parser.parse_args(argv)
    preset = {"rate": 0.0, **PROFILES[args.profile]}
    for name, value in preset.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    if min(args.spans, args.batch, args.concurrency) < 1 or args.trace_spans < 8:
        parser.error("--spans, --batch, --concurrency must be >= 1 and --trace-spans >= 8")
    check_url(args.url)
    args.cpu_roots = parse_cpu_roots(parser, args.cpu_roots)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    built = time.perf_counter()
    warm, bodies = generate(args)
    print(f"generated {sum(b.spans for b in bodies)} spans in {time.perf_counter() - built:.1f} s")
    rows_before = span_rows_in_database() if args.count_db else 0
    deadline = time.monotonic() + args.max_seconds
    setup = Tally()
    post_all(args, warm, setup, deadline)
    if setup.non_200 or setup.rejected:
        print(f"warm-up requests failed: {setup.errors}")
        return 1
    tally = Tally()
    url = os.environ.get("DATABASE_URL", "")
    sampler = WaitSampler(url) if args.count_db and url.startswith("postgres") else None
    probe = LagProbe(args, url) if sampler else None
    if sampler and probe:
        sampler.thread.start()
        probe.thread.start()
    cpu_before = cpu_seconds(args.cpu_roots)
    started = time.perf_counter()
    post_all(args, bodies, tally, deadline, args.rate)
    wall = time.perf_counter() - started
    if sampler and probe:
        sampler.stop.set()
        probe.stop.set()
        sampler.thread.join()
        probe.thread.join()
    is_ok = report(args, bodies, tally, wall)
    for line in cpu_lines(cpu_before, wall, tally.spans, args.cpu_roots):
        print(line)
    for line in sampler.lines() if sampler else []:
        print(line)
    if probe:
        print(probe.line())
    if args.count_db:
        expected = sum(b.rows for b in warm + bodies) + (probe.sent - probe.lost if probe else 0)
        print(f"last pending request landed {wait_for_landings(60):.2f} s after the last answer")
        stored = span_rows_in_database() - rows_before
        is_ok = is_ok and stored == expected
        verdict = "all spans stored" if stored == expected else "NOT all spans stored"
        print(
            f"Span rows stored: {stored} of {expected} expected (one per span, none for "
            f"tool-call requests, one more per failed span): {verdict}"
        )
        if stored == expected:
            print(f"stored spans/s: {tally.spans / wall:,.0f}")
    rate, decode_share, map_share = parse_rate(bodies, args.parse_seconds)
    print(
        f"host speed: parse_otlp_traces in-process, one core: {rate:,.0f} spans/s "
        f"(decode {100 * decode_share:.0f} %, map {100 * map_share:.0f} %); "
        f"measured / parse ceiling x {os.cpu_count() or 1} cores: "
        f"{tally.spans / wall / (rate * (os.cpu_count() or 1)) * 100 if wall else 0:.0f} %"
    )
    print(f"result: {'OK' if is_ok else 'FAILED'}")
    return 0 if is_ok else 1


if __name__ == "__main__":
    sys.exit(main())
