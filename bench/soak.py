"""Scale-out soak (issue 15): a steady OTLP load on two web servers, then the counts that say
nothing was lost and the workers kept up. Run by bench/run_soak.sh, which starts the servers.

1. Calibrate (unless --rate): a burst of small traces as fast as both servers answer; the soak
   rate is half of what it stored per second.
2. Soak: `otlp_bench.generate_sessions` small traces (10 spans, `session.id` on every span, 64
   sessions at a time) at --rate spans/s for --minutes, each request at its due time (an open
   loop) from --concurrency connections, half of them to each web server.
3. Catch up: wait until no session summary is stale, every session is in the search index, no
   analytics refresh is pending and the queues are empty.

Meanwhile every --sample-seconds it records the Redis queue lengths, the stale summaries, the
pending refreshes and when the alert rule was last judged. It prints spans sent and stored,
duplicates, non-2xx answers, p50/p99, what is left behind, the alert evaluations and their
longest gap, the queue lengths over time and the CPU of every process.

Exit status 0 when every span was stored once, every answer was a 2xx and the workers caught up.
"""

from __future__ import annotations

import argparse
import itertools
import os
import queue
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import otlp_bench
from ingest_bench import check_url, cpu_seconds, parse_cpu_roots, percentile
from otlp_bench import Body, Tally

BASE_DIR = Path(__file__).resolve().parent.parent
QUEUES = ("ingest", "analytics", "alerts", "reports")


def setup_django() -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def make_bodies(args: argparse.Namespace, spans: int) -> tuple[list[Body], list[Body]]:
    """Warm-up and load bodies of `spans` spans, timed so that the last trace ends about now
    (the live window of rollups and alert rules, not two weeks ago)."""
    otlp_bench.START_NS = time.time_ns() - (spans // 10) * 10**9
    shape = argparse.Namespace(
        spans=spans,
        batch=args.batch,
        gzip=False,
        concurrency=args.concurrency,
        live_sessions=args.live_sessions,
        session_traces=args.session_traces,
    )
    return otlp_bench.generate_sessions(shape, random.Random(time.time_ns()))


def send(args: argparse.Namespace, bodies: list[Body], rate: float, tally: Tally) -> float:
    """Send the bodies from args.concurrency threads, alternately bound to each web server; at
    `rate` spans/s (0: as fast as they answer). Returns the wall time."""
    work: queue.SimpleQueue[tuple[float, Body]] = queue.SimpleQueue()
    start = time.perf_counter() + 0.05
    sent = 0
    for body in bodies:
        work.put((start + sent / rate if rate else 0.0, body))
        sent += body.spans
    deadline = time.monotonic() + args.minutes * 60 * 2 + 600
    threads = []
    for i in range(args.concurrency):
        thread_args = argparse.Namespace(**{**vars(args), "url": args.urls[i % len(args.urls)]})
        threads.append(
            threading.Thread(
                target=otlp_bench.worker, args=(thread_args, work, tally, deadline), daemon=True
            )
        )
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


@dataclass
class Sample:
    at: float
    queues: dict[str, int]
    stale_summaries: int
    pending_refreshes: int
    alert_evaluated_at: datetime | None


@dataclass
class Sampler:
    redis_url: str
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        import redis
        from django.db import connection

        client = redis.Redis.from_url(self.redis_url)
        began = time.monotonic()
        while not self.stop.is_set():
            self.samples.append(take_sample(client, time.monotonic() - began))
            self.stop.wait(self.seconds)
        connection.close()


def take_sample(client: Any, at: float) -> Sample:
    from analytics.models import AlertRule, PendingRefresh
    from ingest.models import Session

    rule = AlertRule.objects.order_by("pk").values_list("last_evaluated_at", flat=True).first()
    return Sample(
        at=at,
        queues={name: int(client.llen(name)) for name in QUEUES},
        stale_summaries=Session.objects.filter(is_summary_stale=True).count(),
        pending_refreshes=PendingRefresh.objects.exclude(
            dirty_from=None, is_scheduled=False
        ).count(),
        alert_evaluated_at=rule,
    )


def sessions_not_indexed() -> int:
    from django.db.models import Exists, OuterRef

    from analytics.models import SearchEntry
    from ingest.models import Session

    entries = SearchEntry.objects.filter(session=OuterRef("pk"))
    return Session.objects.filter(~Exists(entries)).count()


def is_caught_up(sample: Sample) -> bool:
    return (
        sample.stale_summaries == 0
        and sample.pending_refreshes == 0
        and not any(sample.queues.values())
        and sessions_not_indexed() == 0
    )


def create_alert_rule() -> None:
    """An email rule that stays quiet (error rate > 50 %), so the soak can watch beat judge it."""
    from analytics.models import AlertRule
    from ingest.models import Project

    AlertRule.objects.create(
        project=Project.objects.get(slug="soak"),
        name="Soak error rate",
        metric="error_rate",
        comparator=">",
        threshold=0.5,
        window_minutes=60,
        channel=AlertRule.Channel.EMAIL,
        target="ops@example.com",
    )


def stored_counts() -> dict[str, int]:
    from django.db import connection

    from analytics.models import Rollup, SearchEntry
    from ingest.models import Session, Span

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) - count(DISTINCT (session_id, span_id)) FROM ingest_span")
        duplicates = cursor.fetchone()[0]
    return {
        "spans": Span.objects.count(),
        "duplicates": duplicates,
        "sessions": Session.objects.count(),
        "search_entries": SearchEntry.objects.count(),
        "rollups": Rollup.objects.count(),
    }


def evaluation_lines(samples: list[Sample]) -> list[str]:
    seen = sorted({s.alert_evaluated_at for s in samples if s.alert_evaluated_at})
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(seen)]
    return [
        f"alert evaluations seen: {len(seen)}; longest gap between two: "
        f"{max(gaps, default=float('nan')):.0f} s (beat every "
        f"{os.environ.get('OBSERVATORY_ALERT_SECONDS', '60')} s; sampled every few seconds)"
    ]


def queue_lines(samples: list[Sample], every: float) -> list[str]:
    lines = ["queue lengths over time (s: ingest analytics alerts reports | stale pending):"]
    next_at = 0.0
    for sample in samples:
        if sample.at + 1e-6 < next_at and sample is not samples[-1]:
            continue
        next_at = sample.at + every
        q = " ".join(f"{sample.queues[name]:>5}" for name in QUEUES)
        lines.append(
            f"  {sample.at:>6.0f}: {q} | {sample.stale_summaries:>6} {sample.pending_refreshes:>3}"
        )
    peak = {name: max(s.queues[name] for s in samples) for name in QUEUES}
    lines.append("  peak: " + ", ".join(f"{k} {v}" for k, v in peak.items()))
    return lines


def cpu_lines(
    before: dict[str, float] | None, after: dict[str, float] | None, wall: float, spans: int
) -> list[str]:
    if not before or not after or wall <= 0:
        return ["cpu: not measured (no /proc)"]
    spent = {k: after[k] - before.get(k, 0.0) for k in after}
    machine = spent.pop("machine")
    spent.pop("bench client", None)
    total = sum(spent.values())
    cores = os.cpu_count() or 1
    lines = [
        f"cpu from the first soak request to caught up ({wall:.0f} s): machine busy "
        f"{100 * machine / wall / cores:.0f} % of {cores} cores; ours {total / wall:.2f} cores"
    ]
    for name, seconds in spent.items():
        lines.append(
            f"  {name:<18} {seconds:>8.1f} s  {seconds / wall:.2f} cores  "
            f"{1e6 * seconds / max(1, spans):>6.0f} ms per 1,000 spans"
        )
    lines.append(f"  {'all':<18} {total:>8.1f} s  {1e6 * total / max(1, spans):.0f} ms/1,000 spans")
    return lines


def calibrate(args: argparse.Namespace, sent: list[Body]) -> float:
    """Half the spans/s both servers store when sent as fast as they answer."""
    warm, bodies = make_bodies(args, args.calibrate_spans)
    send(args, warm, 0.0, Tally())
    tally = Tally()
    wall = send(args, bodies, 0.0, tally)
    sent += warm + bodies
    if tally.non_200:
        sys.exit(f"calibration failed: {tally.errors}")
    measured = tally.spans / wall
    print(f"calibration: {tally.spans} spans in {wall:.1f} s = {measured:,.0f} spans/s stored")
    return measured / 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_django()
    create_alert_rule()
    sent: list[Body] = []
    rate = args.rate or calibrate(args, sent)
    warm, bodies = make_bodies(args, int(rate * args.minutes * 60))
    print(
        f"soak: {sum(b.spans for b in bodies)} spans at {rate:,.0f} spans/s for "
        f"{args.minutes:g} min, {args.batch} spans per request, {args.concurrency} connections "
        f"over {', '.join(args.urls)}"
    )
    send(args, warm, 0.0, Tally())
    sent += warm + bodies

    sampler = Sampler(args.redis_url, args.sample_seconds)
    threading.Thread(target=sampler.run, daemon=True).start()
    cpu_before = cpu_seconds(args.cpu_roots)
    began = time.perf_counter()
    tally = Tally()
    send_wall = send(args, bodies, rate, tally)
    deadline = time.monotonic() + args.catchup_minutes * 60
    caught_up = False
    while time.monotonic() < deadline and not caught_up:
        time.sleep(args.sample_seconds)
        caught_up = bool(sampler.samples) and is_caught_up(sampler.samples[-1])
    wall = time.perf_counter() - began
    cpu_after = cpu_seconds(args.cpu_roots)
    sampler.stop.set()
    print(f"spans sent: {tally.spans} in {send_wall:.0f} s ({tally.spans / send_wall:,.0f}/s)")
    verdict = "caught up" if caught_up else f"NOT caught up after {args.catchup_minutes:g} min"
    print(f"catch-up after the last request: {wall - send_wall:.0f} s, {verdict}")
    is_ok = report(args, tally, sent, sampler) and caught_up
    for line in cpu_lines(cpu_before, cpu_after, wall, tally.spans):
        print(line)
    print(f"result: {'OK' if is_ok else 'FAILED'}")
    return 0 if is_ok else 1


def report(args: argparse.Namespace, tally: Tally, sent: list[Body], sampler: Sampler) -> bool:
    """Print what was stored and what is left; True when every span was stored once and every
    answer was a 2xx."""
    counts = stored_counts()
    expected = sum(b.rows for b in sent)
    lat = tally.latencies_ms
    last = take_sample_safely(args)
    print(f"span rows stored: {counts['spans']} (expected {expected} from everything sent)")
    print(f"duplicates: {counts['duplicates']}  sessions: {counts['sessions']}")
    print(f"non-2xx answers: {tally.non_200}  rejected spans: {tally.rejected}")
    print(
        f"latency ms: p50={percentile(lat, 0.50):.0f} p99={percentile(lat, 0.99):.0f} "
        f"max={max(lat, default=float('nan')):.0f} ({len(lat)} requests)"
    )
    print(
        f"left behind: stale summaries {last.stale_summaries}, sessions not in the search index "
        f"{sessions_not_indexed()}, pending analytics refreshes {last.pending_refreshes}, "
        f"queued tasks {sum(last.queues.values())}"
    )
    print(f"search entries: {counts['search_entries']}  rollup rows: {counts['rollups']}")
    for line in evaluation_lines(sampler.samples) + queue_lines(sampler.samples, 30.0):
        print(line)
    for message in tally.errors:
        print(f"error: {message}")
    return (
        counts["spans"] == expected
        and counts["duplicates"] == 0
        and tally.non_200 == 0
        and tally.rejected == 0
    )


def take_sample_safely(args: argparse.Namespace) -> Sample:
    import redis

    return take_sample(redis.Redis.from_url(args.redis_url), 0.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", required=True, help="Web servers, comma-separated")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--redis-url", required=True, help="The Celery broker, for queue lengths")
    parser.add_argument("--rate", type=float, default=0.0, help="spans/s (0: half of capacity)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--calibrate-spans", type=int, default=20_480)
    parser.add_argument("--catchup-minutes", type=float, default=15.0)
    parser.add_argument("--batch", type=int, default=512, help="Spans per request")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--live-sessions", type=int, default=64)
    parser.add_argument("--session-traces", type=int, default=4)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=60.0, help="Per-request timeout (s)")
    parser.add_argument("--cpu-roots", default="", help="name=pid,... trees to report CPU for")
    args = parser.parse_args(argv)
    args.urls = [url.strip().rstrip("/") for url in args.urls.split(",") if url.strip()]
    for url in args.urls:
        check_url(url)
    args.cpu_roots = parse_cpu_roots(parser, args.cpu_roots)
    args.gzip = False
    return args


if __name__ == "__main__":
    sys.exit(main())
