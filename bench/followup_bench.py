"""What the worker's follow-up work after ingest costs, stage by stage: prints figures.

Replays a fixed set of OTLP requests, the soak's traffic (`small-traces`: 10-span traces,
`session.id` on every span, 64 sessions side by side, `--session-traces` traces each, 512 spans
a request), through the WSGI application one at a time. After each request it runs, in this
process, what the worker would run for it: `summarize_and_analyze_sessions_task` with the
sessions that request announced, and every `--refresh-every` requests the debounced project
refresh (`refresh_project_analytics_task`), as a 10 s debounce does at ≈ 500 spans/s, and every
`--sweep-every` requests (and after the last) the beat sweep of stale summaries, as its 30 s
period does, counted in "follow-up (all)". It counts the CPU of this process and of its
PostgreSQL backend, and the statements, of the ingest requests and of each follow-up stage, and
prints them per 1,000 spans.

The follow-up runs interleaved with ingest, as in the soak, so each summary sees its session as
far as it has arrived. Run it twice, back to back, on the two commits to compare (the host is
shared: alternate, and read the load printed).

    bash bench/run_followup_bench.sh                          # 100 requests, 4 traces a session
    bash bench/run_followup_bench.sh -- --session-traces 16   # longer sessions
"""

from __future__ import annotations

import argparse
import cProfile
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(BASE_DIR), str(BASE_DIR / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# The follow-up's steps as analytics.tasks names them; a name the task module does not have is
# left out (so one bench reads the commits before and after a change).
STAGES = (
    "session_summary_inputs",
    "session_summaries",
    "save_session_summaries",
    "fold_session_summaries",
    "index_sessions",
    "detect_session_failures",
    "session_project_starts",
    "mark_refresh_pending",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100, help="Requests to replay")
    parser.add_argument("--batch", type=int, default=512, help="Spans per request")
    parser.add_argument("--session-traces", type=int, default=4, help="10-span traces a session")
    parser.add_argument("--live-sessions", type=int, default=64)
    parser.add_argument("--refresh-every", type=int, default=10, help="Requests per refresh")
    parser.add_argument(
        "--sweep-every", type=int, default=30, help="Requests per sweep of stale summaries"
    )
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--cprofile", metavar="FILE", help="Write a cProfile of the follow-up")
    return parser.parse_args(argv)


class Meter:
    """CPU of this process and of the connection's PostgreSQL backend, and statements."""

    def __init__(self, counter: Any, *, database: bool = True) -> None:
        self.counter, self.has_database = counter, database
        self.python = self.database = 0.0
        self.statements = self.calls = 0
        self.depth = 0

    def __enter__(self) -> Meter:
        from django.db import connection
        from otlp_requests import backend_cpu

        self.depth += 1
        if self.depth == 1:
            connection.ensure_connection()
            info = getattr(connection.connection, "info", None)
            self._pid = info.backend_pid if info else None
            self._cpu, self._db = time.process_time(), backend_cpu(self._pid)
            self._statements = self.counter.total
        return self

    def __exit__(self, *exc: Any) -> None:
        from otlp_requests import backend_cpu

        self.depth -= 1
        if self.depth == 0:
            self.calls += 1
            self.python += time.process_time() - self._cpu
            self.database += backend_cpu(self._pid) - self._db
            self.statements += self.counter.total - self._statements

    def row(self, name: str, spans: int) -> str:
        python, database = 1e6 * self.python / spans, 1e6 * self.database / spans
        pg, total = f"{database:9.1f}", f"{python + database:9.1f}"
        if not self.has_database:  # a request reconnects: its backend is not the one measured
            pg = total = f"{'-':>9}"
        return (
            f"  {name:<30} {python:9.1f} {pg} {total}"
            f" {1000 * self.statements / spans:9.1f} {self.calls:6d}"
        )


def soak_bodies(args: argparse.Namespace) -> list[bytes]:
    """The soak's requests (otlp_bench.generate_sessions): the same spans for a seed, new ids."""
    import otlp_bench

    # As the soak times them: the last trace ends about now, so the refresh judges live hours.
    otlp_bench.START_NS = time.time_ns() - (args.requests * args.batch // 10) * 10**9
    generator_args = argparse.Namespace(
        spans=args.requests * args.batch,
        live_sessions=args.live_sessions,
        session_traces=args.session_traces,
        batch=args.batch,
        concurrency=0,
        gzip=False,
    )
    _, bodies = otlp_bench.generate_sessions(generator_args, random.Random(args.seed))
    return [body.raw for body in bodies]


def instrument(meters: dict[str, Meter]) -> None:
    """Wrap each stage of analytics.tasks in its meter."""
    from analytics import tasks

    for name in STAGES:
        function = getattr(tasks, name, None)
        if function is not None:
            setattr(tasks, name, _metered(function, meters[name]))


def _metered(function: Callable[..., Any], meter: Meter) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with meter:
            return function(*args, **kwargs)

    return wrapper


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import django

    django.setup()
    from django.db import connection
    from otlp_requests import StatementCounter, call

    from analytics import tasks
    from config.wsgi import application
    from ingest.models import ApiKey, Project, Session, Span
    from ingest.signals import sessions_stored

    bodies = soak_bodies(args)
    announced: list[list[int]] = []
    sessions_stored.disconnect(dispatch_uid="analytics.summarize_stored_sessions")
    sessions_stored.connect(
        lambda session_pks, **_: announced.append(sorted(session_pks)), weak=False
    )
    counter = StatementCounter()
    names = ("ingest", "follow-up (all)", "refresh", "sweep", *STAGES)
    meters = {name: Meter(counter, database=name != "ingest") for name in names}
    profile = cProfile.Profile() if args.cprofile else None
    instrument(meters)

    stamp = time.time_ns()
    project = Project.objects.create(name=f"followup {stamp}", slug=f"followup-{stamp}")
    _, api_key = ApiKey.generate(project, name="bench", scopes=["ingest"], created_by="bench")
    statuses = set()
    load_before = os.getloadavg()
    with connection.execute_wrapper(counter):
        for number, body in enumerate(bodies, start=1):
            with meters["ingest"]:
                statuses.add(call(application, body, api_key))
            if profile:
                profile.enable()
            with meters["follow-up (all)"]:
                while announced:
                    tasks.summarize_and_analyze_sessions_task(announced.pop(0))
            if number % args.refresh_every == 0 or number == len(bodies):
                with meters["refresh"]:
                    tasks.refresh_project_analytics_task(project.pk)
            # The beat sweep (a long session's follow-up waits for it until it has grown
            # enough), and once more at the end, as beat does after the last request.
            if number % args.sweep_every == 0 or number == len(bodies):
                with meters["follow-up (all)"], meters["sweep"]:
                    tasks.sweep_stale_summaries_task()
            if profile:
                profile.disable()
    if profile:
        profile.dump_stats(args.cprofile)
    spans = Span.objects.filter(project=project).count()
    sessions = Session.objects.filter(project=project)
    stale = sessions.filter(is_summary_stale=True).count()

    print(f"date: {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}")
    print(f"load before {load_before}, after {os.getloadavg()}")
    print(
        f"database: {connection.vendor}; {len(bodies)} requests of {args.batch} spans, answers "
        f"{sorted(statuses)}; {spans} spans in {sessions.count()} sessions "
        f"({args.session_traces} traces of 10 spans each), {stale} summaries stale at the end"
    )
    print(
        f"  {'per 1,000 spans':<30} {'python ms':>9} {'pg ms':>9} {'total ms':>9}"
        f" {'stmts':>9} {'calls':>6}"
    )
    for name in names:
        if meters[name].calls:
            print(meters[name].row(name, spans))
    return 0 if statuses == {"200 OK"} and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
