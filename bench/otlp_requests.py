"""What one POST /v1/traces request costs, whole, in one process: prints figures.

Builds the bodies of an otlp_bench.py profile (`--profile one-span`, `small-traces`, ...) and
hands each to the WSGI application (`config.wsgi`, as gunicorn does: middleware, auth, parse,
store, the on_commit Celery send, the answer), one request at a time. It counts this process's
CPU and its PostgreSQL backend's CPU (from /proc: the database must be on this machine), the
SQL statements and transactions of each request, and with `--profile-top N` prints a cProfile
timed by CPU (time.process_time), so waiting on the database or the broker does not count.

No HTTP server and no concurrency: the load-independent cost that otlp_bench.py's "server cpu
per 1,000 spans" adds up to, minus gunicorn's own socket handling. Run it on a freshly migrated
database with CELERY_BROKER_URL pointing at a broker (bench/run_otlp_requests.sh does both).

    python bench/otlp_requests.py --profile one-span --requests 2000 --profile-top 40
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(BASE_DIR), str(BASE_DIR / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def backend_cpu(pid: int | None) -> float:
    """CPU seconds of one PostgreSQL backend so far (0 when it is not on this machine)."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return 0.0
    rest = text[text.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


class StatementCounter:
    """A connection.execute_wrapper that counts statements by their first words."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.total = 0

    def __call__(self, execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        self.total += 1
        self.counts[" ".join(sql.split()[:3])[:60]] += 1
        return execute(sql, *args)


# --stages: (module, function) pairs timed by CPU; a function is patched where the caller
# looks it up (views_otlp imports its helpers by name).
STAGES = (
    ("ingest.auth", "_live_key_by_hash"),  # the view holds project_for_otlp_request itself
    ("ingest.views_otlp", "read_body"),
    ("ingest.views_otlp", "decoded_traces"),
    ("ingest.views_otlp", "mapped_traces"),
    ("ingest.otlp_parsing", "message_rules"),
    ("ingest.otlp_parsing", "parse_otlp_traces"),
    ("ingest.views_otlp", "request_key"),
    ("ingest.views_otlp", "save_records_or_reject"),
    ("ingest.store.batch", "redact_records"),
    ("ingest.views_otlp", "announce_sessions_stored"),
    ("ingest.views_otlp", "export_response"),
    ("ingest.views_otlp", "defer_request"),
    ("ingest.landing", "land_pending"),
    ("ingest.landing", "claim_pending"),
    ("ingest.landing", "parser_for"),
    ("ingest.landing", "save_records_or_reject"),  # counted with the inline call's
    ("ingest.store.traces", "_follow_trace_links"),
    # The store is a package: its steps are patched in ingest.store.batch, where _save_batch
    # looks them up.
    *(
        ("ingest.store.batch", name)
        for name in (
            "_claim_shared_rows",
            "_claim_request",
            "_upsert_sessions",
            "_save_trace_links",
            "_upsert_agents",
            "_upsert_spans",
            "_lock_traces",
            "_relink_span_agents",
            "_insert_transcript",
            "_insert_metrics",
            "_upsert_scores",
            "_upsert_messages",
            "_upsert_workflows",
            "_adopt_implicit_steps",
            "_fill_pending_ends",
            "_adopt_definitions",
            "_stored_session_changes",
            "_merge_stored_sessions",
            "save_rejections",
        )
    ),
)


def time_stages(clock: dict[str, float], walls: dict[str, float]) -> None:
    """Replace each function in STAGES by a wrapper that adds its CPU time to `clock` and its
    wall time (the database's share and waits included) to `walls`."""
    import importlib

    for module_name, name in STAGES:
        module = importlib.import_module(module_name)
        original = getattr(module, name)

        def timed(*args: Any, _original: Any = original, _name: str = name, **kw: Any) -> Any:
            started, wall = time.process_time(), time.perf_counter()
            try:
                return _original(*args, **kw)
            finally:
                clock[_name] = clock.get(_name, 0.0) + time.process_time() - started
                walls[_name] = walls.get(_name, 0.0) + time.perf_counter() - wall

        setattr(module, name, timed)
    time_trace_lock(walls)


def time_trace_lock(walls: dict[str, float]) -> None:
    """Add to `walls` the wall time from taking the trace lock (store._lock_traces returning)
    to the commit that releases it (save_records returning): what a concurrent request of one
    of the batch's traces waits at most."""
    from ingest.store import batch

    taken: list[float] = []
    lock, save = batch._lock_traces, batch.save_records

    def locked(*args: Any, **kw: Any) -> Any:
        result = lock(*args, **kw)
        taken.append(time.perf_counter())
        return result

    def saved(*args: Any, **kw: Any) -> Any:
        try:
            return save(*args, **kw)
        finally:
            if taken:
                name = "trace lock held: lock to commit"
                walls[name] = walls.get(name, 0.0) + time.perf_counter() - taken[-1]
            taken.clear()

    batch._lock_traces, batch.save_records = locked, saved


def server_counters() -> dict[str, float]:
    """PostgreSQL's own counts for this database: transactions committed and rolled back, WAL
    flushes (each an fsync: the cost of durability) and WAL bytes. Empty off PostgreSQL."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return {}
    time.sleep(1.2)  # backends report their counts to pg_stat at most once a second
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit, xact_rollback, wal_sync, wal_bytes FROM pg_stat_database, "
            "pg_stat_wal WHERE datname = current_database()"
        )
        row = cursor.fetchone()
    return dict(zip(("commits", "rollbacks", "WAL flushes", "WAL bytes"), row, strict=True))


def print_server_counters(requests: int, before: dict[str, float]) -> None:
    after = server_counters()
    if not before:
        return
    each = ", ".join(f"{name} {(after[name] - before[name]) / requests:.2f}" for name in before)
    print(f"postgres per request (pg_stat_database, pg_stat_wal): {each}")


def environ(body: bytes, api_key: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/v1/traces",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/x-protobuf",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_API_KEY": api_key,
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def call(application: Any, body: bytes, api_key: str) -> str:
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(line)

    chunks = application(environ(body, api_key), start_response)
    b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return status[0]


def batched_landing(project: Any) -> Callable[[], int]:
    """Stop landing after each answer; return what lands the project's pending requests."""
    from django.core.signals import request_finished

    from ingest import landing

    request_finished.disconnect(dispatch_uid="ingest-land-pending")
    print("landing: every --land-every requests, not after each answer")
    return lambda: landing.land_pending(project)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from otlp_bench import PROFILES

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=PROFILES, default="one-span")
    parser.add_argument("--requests", type=int, default=2000, help="Requests to time")
    parser.add_argument("--warm", type=int, default=50, help="Untimed requests first")
    parser.add_argument("--profile-top", type=int, default=0, help="Print the top N of a cProfile")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumtime)")
    parser.add_argument("--only", default="", help="Print only profile lines matching this regex")
    parser.add_argument(
        "--callers", default="", help="Print the callers of profile lines matching this regex"
    )
    parser.add_argument("--stages", action="store_true", help="CPU per request of each stage")
    parser.add_argument(
        "--redaction",
        action="store_true",
        help="Turn the project's PII redaction on (every built-in detector) before sending",
    )
    parser.add_argument(
        "--land-every",
        type=int,
        default=0,
        help="Land deferred requests every N requests instead of after each answer, as a "
        "busy server's landings take the requests that came in meanwhile (their CPU counts)",
    )
    parser.add_argument("--seed", type=int, default=3)
    return parser.parse_args(argv)


def bodies_for(args: argparse.Namespace) -> list[bytes]:
    from otlp_bench import PROFILES, generate

    preset = PROFILES[args.profile]
    batch = preset["batch"]
    generator_args = argparse.Namespace(
        session_ids=preset["session_ids"],
        live_sessions=64,
        session_traces=4,
        seed=args.seed,
        batch=batch,
        trace_spans=64,
        spans=(args.requests + args.warm) * batch,
        concurrency=1,
        gzip=False,
    )
    _, bodies = generate(generator_args)
    return [body.raw for body in bodies]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bodies = bodies_for(args)
    from django.db import connection

    from config.wsgi import application  # as gunicorn loads it (gc.freeze() included)
    from ingest.models import ApiKey, Project, Span

    stamp = time.time_ns()
    project = Project.objects.create(name=f"requests {stamp}", slug=f"requests-{stamp}")
    _, api_key = ApiKey.generate(project, name="bench", scopes=["ingest"], created_by="bench")
    if args.redaction:
        from ingest.redaction import BUILTIN_NAMES

        project.is_redaction_enabled = True
        project.redaction_detectors = list(BUILTIN_NAMES)
        project.save()
    print(f"PII redaction: {'on, every built-in detector' if args.redaction else 'off'}")
    for body in bodies[: args.warm]:
        call(application, body, api_key)
    clock: dict[str, float] = {}
    walls: dict[str, float] = {}
    if args.stages:
        time_stages(clock, walls)
    timed = bodies[args.warm :]
    counter = StatementCounter()
    # Wall-clock timer: a CPU timer costs a system call per event and swamps the profile. Time
    # spent waiting on the database shows as psycopg's wait and _execute_send.
    profiler = cProfile.Profile() if args.profile_top else None
    python = database = 0.0
    statuses: Counter[str] = Counter()
    spans_before = Span.objects.filter(project=project).count()
    counters_before = server_counters()
    land = batched_landing(project) if args.land_every else None
    with connection.execute_wrapper(counter):
        for n, body in enumerate(timed, 1):
            pid = connection.connection.info.backend_pid if connection.connection else None
            cpu, db = time.process_time(), backend_cpu(pid)
            if profiler:
                profiler.enable()
            statuses[call(application, body, api_key)] += 1
            if land and (n % args.land_every == 0 or n == len(timed)):
                land()
            if profiler:
                profiler.disable()
            python += time.process_time() - cpu
            database += backend_cpu(pid) - db
    stored = Span.objects.filter(project=project).count() - spans_before
    report(args, timed, statuses, stored, python, database, counter)
    print_server_counters(len(timed), counters_before)
    for name in walls:
        cpu = f"python {1000 * clock[name] / len(timed):6.2f}" if name in clock else " " * 13
        wall = 1000 * walls[name] / len(timed)
        print(f"  stage {name:<32} {cpu}  wall {wall:6.2f} ms per request")
    if profiler:
        print_profile(args, profiler)
    return 0 if set(statuses) == {"200 OK"} else 1


def print_profile(args: argparse.Namespace, profiler: cProfile.Profile) -> None:
    stats = pstats.Stats(profiler)
    restrictions: list[Any] = [args.only] if args.only else []
    stats.sort_stats(args.sort).print_stats(*restrictions, args.profile_top)
    if args.callers:
        stats.print_callers(args.callers)


def report(
    args: argparse.Namespace,
    timed: list[bytes],
    statuses: Counter[str],
    stored: int,
    python: float,
    database: float,
    counter: StatementCounter,
) -> None:
    from otlp_bench import PROFILES

    requests = len(timed)
    spans = requests * PROFILES[args.profile]["batch"]
    print(f"date: {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}  load {os.getloadavg()}")
    print(
        f"profile {args.profile}: {requests} requests, {spans} spans, answers {dict(statuses)}, "
        f"{stored} Span rows stored"
    )
    print(
        f"cpu per request: python {1000 * python / requests:.2f} ms, postgres backend "
        f"{1000 * database / requests:.2f} ms"
    )
    print(
        f"cpu per 1,000 spans: python {1e6 * python / spans:.0f} ms, postgres backend "
        f"{1e6 * database / spans:.0f} ms"
    )
    print(f"statements per request: {counter.total / requests:.1f}")
    for text, n in counter.counts.most_common(25):
        print(f"  {n / requests:6.2f}  {text}")


if __name__ == "__main__":
    sys.exit(main())
