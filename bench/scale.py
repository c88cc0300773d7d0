"""Scale (issue 15): every dashboard page's server time at 1M spans (10M with --spans), the events
CSV rate and memory, and bytes per span. Prints one table, asserts nothing.

Against the empty (or already loaded) database DATABASE_URL names, as bench/run_scale.sh sets up
with a throwaway durable PostgreSQL:

1. load: `--spans` spans in 20-span agentops-shaped agent traces (bench/otlp_bench.py's
   `build_trace`: session > workflow > agent > tasks of LLM call + tool, 3 % failing tools),
   one trace a session, spread evenly over the last `--days` days, plus one session of
   `--big-session` spans (one trace sent in requests of 500 spans). The load path is OTLP through
   the store, in this process: each request's protobuf body goes through
   `ingest.formats.otlp.parse_otlp_traces` and `ingest.store.save_records_or_reject`, exactly
   what POST /v1/traces runs, without HTTP and gunicorn (they are not what this bench measures).
   A database that already holds spans is not loaded again (--keep in run_scale.sh).
2. derive: the session summaries (`summarize_sessions_task`, 500 sessions at a time, as the beat
   sweep does) and `manage.py recompute_analytics`.
3. time: every dashboard page as a logged-in member through Django's test client (server time,
   no network), for the ranges 24 h, 7 d, 14 d and 90 d where the page has a range: one warm-up,
   then the median of `--requests` (3); the big session's page; the whole events CSV
   (`/api/v1/events/?format=csv`) read to the end, in rows/s, with the growth of this process's
   RSS while it streamed (the server is this process); and the on-disk size of the span tables.

    bash bench/run_scale.sh                       # 1M spans
    bash bench/run_scale.sh --keep -- --spans 100000
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 300
TRACE_SPANS = 20
TRACES_PER_REQUEST = 25  # 500 spans a request, as the agentops exporter batches them
BIG_SESSION_ID = "scale-big-session"
RANGES = ("24h", "7d", "14d", "90d")
# Pages with a range parameter, and the pages without one.
RANGED_PAGES = ("/", "/trends/", "/workflows/", "/sessions/", "/errors/", "/agents/", "/messages/")
PLAIN_PAGES = (
    "/compare/",
    "/anomalies/",
    "/incidents/",
    "/dead-letters/",
    "/tests/",
    "/alerts/",
    "/reports/",
    "/api/v1/events/",
)


def configure() -> None:
    """Production-like settings (DEBUG off) on DATABASE_URL, then django.setup()."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    os.environ["DEBUG"] = "false"
    os.environ["ALLOWED_HOSTS"] = "testserver"  # Django's test client
    os.environ.setdefault("SECRET_KEY", secrets.token_hex(32))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")  # derived data is run inline below
    import django

    django.setup()


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def database_cpu_s() -> float:
    """CPU seconds of this connection's PostgreSQL backend so far (the server runs on this
    machine: /proc), or 0 on SQLite."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    connection.ensure_connection()
    with open(f"/proc/{connection.connection.info.backend_pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def shifted(trace: Any, offset_ns: int) -> Any:
    """The trace moved by offset_ns (its spans, and their exception events)."""
    for _, span in trace.spans:
        span.start_time_unix_nano += offset_ns
        span.end_time_unix_nano += offset_ns
        for event in span.events:
            event.time_unix_nano += offset_ns
    return trace


def store_body(project: Any, raw: bytes, key: str) -> int:
    from django.conf import settings

    from ingest.formats.otlp import parse_otlp_traces
    from ingest.store import save_records_or_reject

    parsed = parse_otlp_traces(
        raw, "application/x-protobuf", max_string_chars=settings.OBSERVATORY_MAX_STRING_CHARS
    )
    _saved, errors = save_records_or_reject(
        project, parsed.records, parsed.errors, source="otlp-traces", request_key=key
    )
    if errors:
        raise SystemExit(f"load: {len(errors)} records refused, first: {errors[0]}")
    return len(parsed.records)


def load(project: Any, *, spans: int, days: int, big: int, seed: int) -> None:
    """The OTLP load (see the module docstring); prints its rate."""
    from otlp_bench import START_NS, build_trace, encode

    rng = random.Random(seed)
    traces = max(1, spans // TRACE_SPANS)
    end_ns = int((datetime.now(UTC) - timedelta(minutes=30)).timestamp() * 1e9)
    step_ns = days * 86_400 * 10**9 // traces
    started, cpu, sent = time.perf_counter(), cpu_s(), 0
    for first in range(0, traces, TRACES_PER_REQUEST):
        batch = []
        for i in range(first, min(traces, first + TRACES_PER_REQUEST)):
            at = end_ns - (traces - i) * step_ns  # the trace's start
            batch.append(shifted(build_trace(rng, i, TRACE_SPANS), at - (START_NS + i * 10**9)))
        body = encode(batch, compress=False)
        store_body(project, body.raw, f"scale-{first}")
        sent += body.spans
        if (first // TRACES_PER_REQUEST) % 200 == 0:
            rate = sent / (time.perf_counter() - started)
            print(f"  load: {sent:,} spans ({rate:,.0f} spans/s)", flush=True)
    big_trace = build_trace(rng, traces, big, BIG_SESSION_ID)
    shifted(big_trace, end_ns - 3600 * 10**9 - (START_NS + traces * 10**9))
    for n, i in enumerate(range(0, len(big_trace.spans), 500)):
        body = encode_slice(big_trace.spans[i : i + 500])
        store_body(project, body, f"scale-big-{n}")
        sent += len(big_trace.spans[i : i + 500])
    wall = time.perf_counter() - started
    print(
        f"load: {sent:,} OTLP spans in {wall:.0f} s = {sent / wall:,.0f} spans/s "
        f"({(cpu_s() - cpu) / sent * 1e6:.0f} µs CPU of this process per span, "
        "PostgreSQL's not counted)",
        flush=True,
    )


def encode_slice(spans: list[Any]) -> bytes:
    from otlp_bench import encode_spans

    return encode_spans(spans, compress=False).raw


def derive(project: Any) -> None:
    """Session summaries for every stale session, then recompute_analytics; prints the times."""
    from django.core.management import call_command

    from analytics.queries import stale_session_pks
    from analytics.tasks import summarize_sessions_task

    started, done = time.perf_counter(), 0
    while pks := stale_session_pks(limit=500):
        done += summarize_sessions_task(pks)
    print(f"summaries: {done:,} sessions in {time.perf_counter() - started:.0f} s", flush=True)
    started = time.perf_counter()
    call_command("recompute_analytics", project=project.slug, stdout=sys.stdout)
    print(f"recompute_analytics: {time.perf_counter() - started:.0f} s", flush=True)


def upgrade(project: Any) -> None:
    """A database loaded before: finish what its run did not (summaries, analytics), or build
    what this commit reads and an older one did not store (the rollups by agent name, from the
    stored rollups, and the agent-name rollups, from the instances), as an upgraded install
    would."""
    from django.core.management import call_command

    from analytics.models import Rollup
    from ingest.models import Session

    stale = Session.objects.filter(project=project, is_summary_stale=True).exists()
    if stale or not Rollup.objects.filter(project=project).exists():
        derive(project)
        return

    try:
        from analytics.models import NamedRollup
    except ImportError:  # before the rollups by agent name, or since they are the only Rollup
        return
    try:
        from analytics.models import AgentNameRollup
    except ImportError:  # a commit from before the agent-name rollups
        AgentNameRollup = NamedRollup
    missing = [
        table
        for table in (NamedRollup, AgentNameRollup)
        if not table.objects.filter(project=project).exists()
    ]
    if missing:
        started = time.perf_counter()
        call_command("recompute_analytics", project=project.slug, named_only=True)
        print(f"recompute_analytics --named-only: {time.perf_counter() - started:.0f} s")


def time_page(client: Any, url: str, requests: int) -> tuple[float, float, float, int, int]:
    """Median server time (ms) of `requests` GETs after one warm-up, the median CPU time (ms) of
    this process (the web side) and of its PostgreSQL backend (figures the shared host's load
    does not inflate as the wall time), the body's bytes and the number of queries of the last
    request."""
    from django.db import connection, reset_queries

    timings, cpu, db_cpu, size, queries = [], [], [], 0, 0
    for n in range(requests + 1):
        reset_queries()
        started, cpu_started, db_started = time.perf_counter(), cpu_s(), database_cpu_s()
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}: {body[:300]!r}")
        if n:
            timings.append(elapsed)
            cpu.append((cpu_s() - cpu_started) * 1000)
            db_cpu.append((database_cpu_s() - db_started) * 1000)
        size, queries = len(body), len(connection.queries)
    medians = (statistics.median(values) for values in (timings, cpu, db_cpu))
    return (*medians, size, queries)


def time_csv(client: Any) -> tuple[int, float, float, float, float]:
    """Rows, rows/s, RSS growth (MB) of reading the whole events CSV to its end, and the CPU
    µs per row of this process (web) and of its PostgreSQL backend."""
    warm = client.get("/api/v1/events/?format=csv&project=scale&started_after=2100-01-01T00:00Z")
    b"".join(warm.streaming_content)  # the first request's imports are not the export's
    started, before, peak, rows = time.perf_counter(), rss_mb(), 0.0, -1  # -1: the header
    cpu, db_cpu = cpu_s(), database_cpu_s()
    response = client.get("/api/v1/events/?format=csv&project=scale")
    if response.status_code != 200:
        raise SystemExit(f"CSV answered {response.status_code}")
    chunks = response.streaming_content if response.streaming else [response.content]
    for n, chunk in enumerate(chunks):
        rows += chunk.count(b"\n")
        if n % 256 == 0:
            peak = max(peak, rss_mb())
    seconds = time.perf_counter() - started
    per_row = (1e6 * (cpu_s() - cpu) / rows, 1e6 * (database_cpu_s() - db_cpu) / rows)
    return rows, rows / seconds, max(peak, rss_mb()) - before, *per_row


RELATIONS_SQL = """
    SELECT c.oid, c.relname, pg_relation_size(c.oid),
           COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0),
           pg_total_relation_size(c.oid), c.reltuples::bigint
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
    ORDER BY pg_total_relation_size(c.oid) DESC
"""
INDEXES_SQL = """
    SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid)
    FROM pg_index i WHERE i.indrelid = %s ORDER BY pg_relation_size(i.indexrelid) DESC
"""


def bytes_report(spans: int, *, vacuum: bool = True) -> list[str]:
    """Bytes per span of every table (heap, TOAST, each index) and of the whole database, after
    VACUUM ANALYZE (dead rows and stale statistics would blur the figures), as Markdown rows.
    Tables under 1 B per span are summed in one row. PostgreSQL only."""
    from django.db import connection

    if connection.vendor != "postgresql" or not spans:
        return []
    with connection.cursor() as cursor:
        if vacuum:
            cursor.execute("VACUUM (ANALYZE)")
        cursor.execute(RELATIONS_SQL)
        tables = cursor.fetchall()
        lines = [
            f"bytes per span ({spans:,} spans), after VACUUM ANALYZE:",
            "",
            "| relation | rows | MB | B per span |",
            "| --- | ---: | ---: | ---: |",
        ]
        small, small_bytes = 0, 0
        for oid, name, heap, toast, total, rows in tables:
            if total / spans < 1:
                small, small_bytes = small + 1, small_bytes + total
                continue
            lines.append(row_of(f"**{name}** (all)", rows, total, spans))
            lines.append(row_of(f"{name}: heap", rows, heap, spans))
            if toast:
                lines.append(row_of(f"{name}: TOAST", None, toast, spans))
            cursor.execute(INDEXES_SQL, [oid])
            for index, size in cursor.fetchall():
                lines.append(row_of(f"{name}: index {index}", None, size, spans))
        lines.append(
            row_of(f"the other {small} tables, with their indexes", None, small_bytes, spans)
        )
        cursor.execute("SELECT pg_database_size(current_database())")
        lines.append(row_of("**whole database**", None, cursor.fetchone()[0], spans))
    return lines


def row_of(label: str, rows: int | None, size: int, spans: int) -> str:
    shown_rows = "" if rows is None else f"{rows:,}"
    return f"| {label} | {shown_rows} | {size / 2**20:,.1f} | {size / spans:,.1f} |"


def page_rows(
    client: Any, session_pk: int, requests: int, only: str
) -> list[tuple[str, float, float, float, int, int]]:
    urls = [f"{page}?range={key}" for page in RANGED_PAGES for key in RANGES]
    urls += [*PLAIN_PAGES, f"/sessions/{session_pk}/"]
    rows = []
    for url in urls:
        if only and not any(part in url for part in only.split(",")):
            continue
        rows.append((url, *time_page(client, url, requests)))
        print(
            f"  {url:<28} {rows[-1][1]:8.1f} ms  (CPU: web {rows[-1][2]:6.1f} ms,"
            f" database {rows[-1][3]:6.1f} ms)",
            flush=True,
        )
    return rows


def print_table(rows: list[tuple[str, float, float, float, int, int]], extra: list[str]) -> None:
    print()
    print("| page | median ms | CPU ms: web + database | KB | queries | < 300 ms |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for url, median, cpu, db_cpu, size, queries in rows:
        verdict = "yes" if median < TARGET_MS else "**no**"
        print(
            f"| `{url}` | {median:,.0f} | {cpu:,.0f} + {db_cpu:,.0f} | {size / 1024:,.0f} "
            f"| {queries} | {verdict} |"
        )
    print()
    for line in extra:
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument(
        "--big-session",
        type=int,
        default=10_400,
        help="Spans sent in one session (~10,000 stored: tool-call requests join their LLM span)",
    )
    parser.add_argument("--requests", type=int, default=3, help="Timed requests per page")
    parser.add_argument("--skip-csv", action="store_true")
    parser.add_argument(
        "--as-is", action="store_true", help="Time a loaded database as it is (no derive step)"
    )
    parser.add_argument(
        "--only",
        default="",
        help="Time only the pages whose URL holds one of these (comma-separated)",
    )
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--bytes-only", action="store_true", help="Print only the bytes per span (no pages, no CSV)"
    )
    parser.add_argument("--no-vacuum", action="store_true", help="Bytes as they are, no VACUUM")
    args = parser.parse_args()
    configure()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from ingest.models import Membership, Project, Session, Span

    project, created = Project.objects.get_or_create(slug="scale", defaults={"name": "Scale"})
    user = get_user_model().objects.filter(username="scale").first()
    if user is None:
        user = get_user_model().objects.create_user("scale", password="scale")
        Membership.objects.create(user=user, project=project, role="member")
    if created or not Span.objects.filter(project=project).exists():
        load(project, spans=args.spans, days=args.days, big=args.big_session, seed=args.seed)
        derive(project)
    elif not args.as_is:
        upgrade(project)
    spans = Span.objects.filter(project=project).count()
    sessions = Session.objects.filter(project=project).count()
    big = Session.objects.get(project=project, external_id=BIG_SESSION_ID)
    big_spans = Span.objects.filter(session=big).count()
    print(f"database: {connection.vendor}; {spans:,} spans in {sessions:,} sessions; ", end="")
    print(f"session {big.pk} holds {big_spans:,} spans")
    if args.bytes_only:
        print("\n".join(bytes_report(spans, vacuum=not args.no_vacuum)))
        return

    client = Client()
    client.force_login(user)
    connection.force_debug_cursor = True  # count queries without DEBUG's other costs
    print(f"pages (median of {args.requests} after a warm-up):", flush=True)
    rows = page_rows(client, big.pk, args.requests, args.only)
    connection.force_debug_cursor = False
    extra = []
    if not args.skip_csv:
        csv_rows, rate, growth, web_us, db_us = time_csv(client)
        extra.append(
            f"events CSV: {csv_rows:,} rows at {rate:,.0f} rows/s; RSS growth {growth:,.0f} MB;"
            f" CPU per row: web {web_us:.1f} µs + database {db_us:.1f} µs"
            f" (= {1e6 / (web_us + db_us):,.0f} rows per CPU second)"
        )
    extra += ["", *bytes_report(spans, vacuum=not args.no_vacuum)]
    print_table(rows, extra)


if __name__ == "__main__":
    main()
