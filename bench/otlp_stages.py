"""Where OTLP trace ingest spends its CPU, stage by stage, in one process: prints figures.

Builds the same bodies as otlp_bench.py (512 agentops-style spans each), then for each body runs
what POST /v1/traces runs after reading the body — decode, map, store (save_records in one
transaction, committed) — against DATABASE_URL, one request at a time. For every stage it
counts this process's CPU and the CPU of its PostgreSQL backend (from /proc, so the database
must be on this machine), and prints both per 1,000 spans. With --functions the store's own
steps (the private functions save_records calls) are timed the same way.

No HTTP, no gunicorn, no concurrency: this is the cost of the work itself, the figure that adds
up to the server CPU per 1,000 spans that otlp_bench.py reports (which adds HTTP, auth and the
response). Run it on a freshly migrated database; it creates its own project.

    DATABASE_URL=postgres://... python bench/otlp_stages.py --spans 51200 --functions
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(BASE_DIR), str(BASE_DIR / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

STORE_STEPS = (
    "_claim_shared_rows",
    "_claim_request",
    "_claim_record_ids",
    "_follow_trace_links",
    "_upsert_sessions",
    "_upsert_agents",
    "_upsert_spans",
    "_upsert_workflows",
    "_upsert_messages",
    "_insert_transcript",
    "_insert_metrics",
    "_merge_stored_sessions",
    "save_rejections",
)


class Clock:
    """CPU seconds of this process and of one PostgreSQL backend, per named stage."""

    def __init__(self, backend_pid: int | None) -> None:
        self.backend_stat = f"/proc/{backend_pid}/stat" if backend_pid else None
        self.tick = os.sysconf("SC_CLK_TCK")
        self.python: dict[str, float] = defaultdict(float)
        self.database: dict[str, float] = defaultdict(float)

    def backend_cpu(self) -> float:
        if self.backend_stat is None:
            return 0.0
        with open(self.backend_stat) as stat:
            text = stat.read()
        rest = text[text.rindex(")") + 2 :].split()
        return (int(rest[11]) + int(rest[12])) / self.tick

    def timed(self, name: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        python, database = time.process_time(), self.backend_cpu()
        try:
            return call(*args, **kwargs)
        finally:
            self.python[name] += time.process_time() - python
            self.database[name] += self.backend_cpu() - database


def wrap_store_steps(clock: Clock) -> None:
    """Time the store's steps: each of its module-level functions in STORE_STEPS is replaced by
    a timing wrapper around itself (the real code runs; only the clock is added)."""
    from ingest import store

    for name in STORE_STEPS:
        original = getattr(store, name)

        def wrapper(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            return clock.timed(f"  store: {_name}", _original, *args, **kwargs)

        setattr(store, name, wrapper)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=51_200)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--trace-spans", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--session-ids",
        action="store_true",
        help="the small-traces profile of otlp_bench.py: 10-span traces, session.id on every span",
    )
    parser.add_argument("--functions", action="store_true", help="time the store's own steps")
    parser.add_argument("--profile", type=int, default=0, help="print the top N of a cProfile")
    parser.add_argument(
        "--no-freeze",
        action="store_true",
        help="leave the garbage collector as it is (config/wsgi.py freezes it, as this does)",
    )
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from otlp_bench import generate

    from ingest.formats.otlp import decode_protobuf_traces, map_spans
    from ingest.formats.records import ParseResult
    from ingest.models import Project, Span
    from ingest.otlp_parsing import message_rules, request_key, session_attributes
    from ingest.store import save_records

    generator_args = argparse.Namespace(
        session_ids=args.session_ids,
        live_sessions=64,
        session_traces=4,
        seed=args.seed,
        batch=args.batch,
        trace_spans=args.trace_spans,
        spans=args.spans,
        concurrency=1,
        gzip=False,
    )
    _, bodies = generate(generator_args)
    stamp = time.time_ns()
    if not args.no_freeze:
        gc.freeze()
    project = Project.objects.create(name=f"stages {stamp}", slug=f"stages-{stamp}")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_backend_pid()" if connection.vendor == "postgresql" else "SELECT 0"
        )
        backend_pid = cursor.fetchone()[0] or None
    clock = Clock(backend_pid)
    if args.functions:
        wrap_store_steps(clock)
    limit = settings.OBSERVATORY_MAX_STRING_CHARS
    profiler = cProfile.Profile() if args.profile else None
    spans = 0
    started = time.perf_counter()
    for body in bodies:
        if profiler:
            profiler.enable()
        rules, names = message_rules(project), session_attributes(project)
        batch = clock.timed("decode", decode_protobuf_traces, body.raw, max_string_chars=limit)
        records = clock.timed(
            "map", map_spans, batch.items, session_attributes=names, message_rules=rules
        )
        parsed = ParseResult(records=records, errors=batch.errors)

        def store(parsed: ParseResult = parsed, raw: bytes = body.raw) -> None:
            # As the view calls it: outside a transaction, so its shared rows are claimed first.
            save_records(
                project,
                parsed.records,
                parsed.errors,
                source="otlp-traces",
                request_key=request_key("traces", raw),
            )

        clock.timed("store (save_records, committed)", store)
        if profiler:
            profiler.disable()
        spans += body.spans
    wall = time.perf_counter() - started
    stored = Span.objects.filter(project=project).count()
    print(f"{spans:,} spans in {len(bodies)} bodies of {args.batch}; {stored:,} Span rows stored")
    print(f"one request at a time: {spans / wall:,.0f} spans/s wall")
    print(f"{'stage':<44} {'python ms/1k':>13} {'postgres ms/1k':>15}")
    per_k = 1000 / spans
    for name in clock.python:
        print(
            f"{name:<44} {clock.python[name] * 1000 * per_k:>13.1f}"
            f" {clock.database[name] * 1000 * per_k:>15.1f}"
        )
    top = [n for n in clock.python if not n.startswith("  ")]
    total_python = sum(clock.python[n] for n in top) * 1000 * per_k
    total_db = sum(clock.database[n] for n in top) * 1000 * per_k
    print(f"{'total':<44} {total_python:>13.1f} {total_db:>15.1f}")
    print(f"ceiling on 2 cores at this CPU: {2_000_000 / (total_python + total_db):,.0f} spans/s")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
