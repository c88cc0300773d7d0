"""Analytics benchmark: prints figures, asserts nothing.

    python bench/analytics_bench.py detect [--seeds 5]        # no database
    python bench/analytics_bench.py rollups [--spans 1000000] # DATABASE_URL (PostgreSQL)
    bash bench/run_analytics_bench.sh                         # both, on a throwaway PostgreSQL

detect: precision and recall of the anomaly detector on synthetic telemetry (three weeks, busy
and quiet hours) with one injected anomaly of each kind per seed at random subjects and hours.
"Found" means a flag of the injected subject and metric overlapping its hours; a flag is
"explained" when an injection of the same metric overlaps it (a slow model makes the agents
that call it slow too), and a false positive otherwise.

rollups: loads --spans synthetic spans (30 days) into the database with COPY, then times the
full recompute (rollups, error clusters, anomalies; in a child process, whose peak RSS is the
memory figure) and the incremental refresh after one more hour of data arrives. Targets
(issue 6): full recompute of 1M spans < 60 s and < 1.5 GB; one new hour < 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.anomalies import detect_anomalies  # noqa: E402
from analytics.synthetic import (  # noqa: E402
    Injection,
    SyntheticData,
    finds,
    is_explained,
    synthetic_telemetry,
)
from analytics.trends import session_rollups, span_rollups  # noqa: E402

SUBJECTS = {
    ("tool", "latency_p95"): ("search", "fetch"),
    ("tool", "error_rate"): ("search", "fetch"),
    ("model", "error_rate"): ("gpt-4o", "gpt-4o-mini", "claude"),
    ("model", "tokens_per_call"): ("gpt-4o", "gpt-4o-mini", "claude"),
    ("agent", "latency_p95"): ("planner", "researcher", "writer"),
    ("project", "cost_per_session"): ("",),
}
FACTORS = {
    "latency_p95": (3.0, 6.0),
    "error_rate": (0.4, 0.7),
    "tokens_per_call": (2.5, 4.0),
    "cost_per_session": (3.0, 5.0),
}
SPANS_PER_SESSION = 7.0  # analytics.synthetic.CALL_PLAN's mean


# --- Precision and recall ---------------------------------------------------------------------


def random_injections(rng: random.Random, now: datetime) -> tuple[Injection, ...]:
    """One injection of each kind in SUBJECTS, 2-4 hours each, in separate daytime hours of the
    last 13 days (so two never overlap)."""
    days = rng.sample(range(1, 14), len(SUBJECTS))
    found = []
    for (subject_type, metric), day in zip(SUBJECTS, days, strict=True):
        subject = rng.choice(SUBJECTS[(subject_type, metric)])
        start = (now - timedelta(days=day)).replace(
            hour=rng.randint(9, 17), minute=0, second=0, microsecond=0
        )
        factor = rng.uniform(*FACTORS[metric])
        found.append(Injection(subject_type, subject, metric, start, rng.randint(2, 4), factor))
    return tuple(found)


def detect(seeds: int) -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    per_kind: dict[str, list[int]] = {}
    found = flags_total = explained = false_positives = 0
    started = time.perf_counter()
    for seed in range(seeds):
        injections = random_injections(random.Random(seed), now)
        data = synthetic_telemetry(
            now=now, days=21, sessions_per_hour=10, injections=injections, seed=seed
        )
        rollups = pd.concat(
            [span_rollups(data.spans), session_rollups(data.sessions)], ignore_index=True
        )
        flags = detect_anomalies(rollups, since=now - timedelta(days=14), until=now)
        keys = [(f.subject_type, f.subject, f.metric, f.window_start, f.window_end) for f in flags]
        for injection in injections:
            hit = any(finds(key, injection) for key in keys)
            per_kind.setdefault(f"{injection.subject_type} {injection.metric}", []).append(int(hit))
            found += hit
        for key in keys:
            flags_total += 1
            if any(finds(key, i) for i in injections):
                continue
            if any(is_explained(key, i) for i in injections):
                explained += 1
            else:
                false_positives += 1
    injected = seeds * len(SUBJECTS)
    direct = flags_total - explained - false_positives
    total = max(flags_total, 1)
    print(
        f"anomaly detector on {seeds} synthetic projects (21 days, ~10 sessions/hour, "
        f"{injected} injected anomalies, 14 days judged):"
    )
    print(
        f"  recall:    {found}/{injected} = {found / injected:.0%} of injected anomalies flagged "
        "(right subject and metric, overlapping hours)"
    )
    print(
        f"  precision: {direct}/{flags_total} = {direct / total:.0%} of flags name an injected "
        f"anomaly; {(direct + explained) / total:.0%} with the {explained} knock-on flags "
        "(same metric, same hours, a subject that depends on it)"
    )
    print(
        f"  false positives: {false_positives} flags in {seeds * 14 * 24} judged hours "
        f"({false_positives / total:.0%} of flags)"
    )
    for kind, hits in sorted(per_kind.items()):
        print(f"    recall {kind:<28} {sum(hits)}/{len(hits)}")
    print(f"  ({time.perf_counter() - started:.1f} s)")


# --- Rollup runtime -----------------------------------------------------------------------------


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def copy_rows(model: Any, columns: list[str], rows: Any) -> None:
    """COPY rows (tuples in `columns` order; every other column gets its field default)."""
    from django.db import connection

    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    given = {name: i for i, name in enumerate(columns)}
    now = datetime.now(UTC)
    defaults = {
        f.attname: now
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
        else f.get_db_prep_save(f.get_default(), connection)
        for f in fields
        if f.attname not in given
    }
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {model._meta.db_table} ({names}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(
                [
                    row[given[f.attname]] if f.attname in given else defaults[f.attname]
                    for f in fields
                ]
            )


SESSION_FIELDS = [
    "project_id",
    "external_id",
    "started_at",
    "ended_at",
    "end_state",
    "duration_ms",
    "cost",
    "prompt_tokens",
    "completion_tokens",
    "event_count",
    "is_summary_stale",
]
SPAN_FIELDS = [
    "project_id",
    "session_id",
    "span_id",
    "kind",
    "name",
    "agent_external_id",
    "model",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "error_type",
    "error_message",
]


def _number(value: Any, kind: type) -> Any:
    return None if pd.isna(value) else kind(value)


def _session_row(project_id: int, external_id: str, row: Any) -> tuple[Any, ...]:
    started = row.started_at.to_pydatetime()
    ended = started + timedelta(milliseconds=row.duration_ms)
    return (
        project_id,
        external_id,
        started,
        ended,
        row.end_state,
        float(row.duration_ms),
        float(row.cost),
        int(row.prompt_tokens),
        int(row.completion_tokens),
        int(row.event_count),
        False,
    )


def _span_row(project_id: int, session_pk: int, span_id: str, row: Any) -> tuple[Any, ...]:
    started = row.started_at.to_pydatetime()
    return (
        project_id,
        session_pk,
        span_id,
        row.kind,
        row.name,
        row.agent_external_id,
        row.model,
        row.status,
        started,
        started + timedelta(milliseconds=row.duration_ms),
        float(row.duration_ms),
        _number(row.prompt_tokens, int),
        _number(row.completion_tokens, int),
        _number(row.cost, float),
        row.error_type,
        row.error_message,
    )


def load(project: Any, data: SyntheticData, prefix: str) -> int:
    """Sessions and spans of `data` into the database with COPY (no payloads); sessions are
    named by `prefix` and their index label in data.sessions."""
    from ingest.models import Session, Span

    rows = data.sessions.itertuples()
    copy_rows(
        Session, SESSION_FIELDS, (_session_row(project.pk, f"{prefix}-{r.Index}", r) for r in rows)
    )
    named = Session.objects.filter(project=project, external_id__startswith=f"{prefix}-")
    pks = dict(named.values_list("external_id", "pk"))
    copy_rows(
        Span,
        SPAN_FIELDS,
        (
            _span_row(project.pk, pks[f"{prefix}-{row.session_index}"], f"{prefix}{i}", row)
            for i, row in enumerate(data.spans.itertuples(index=False))
        ),
    )
    return len(data.spans)


def rollups(span_count: int) -> None:
    setup_django()
    from django.db import connection

    from analytics.store import mark_refresh_pending
    from analytics.tasks import refresh_project_analytics_task
    from ingest.models import Project

    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    days = 30
    per_hour = span_count / (SPANS_PER_SESSION * days * 24)
    project = Project.objects.create(
        name="Analytics bench", slug=f"analytics-bench-{int(time.time())}"
    )
    started = time.perf_counter()
    history = synthetic_telemetry(
        now=now - timedelta(hours=1), days=days, sessions_per_hour=per_hour, seed=1
    )
    loaded = load(project, history, "h")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    took = time.perf_counter() - started
    print(
        f"loaded {loaded:,} spans, {len(history.sessions):,} sessions, {days} days ({took:.0f} s)"
    )

    child = subprocess.run(
        [sys.executable, __file__, "recompute", "--project", str(project.pk)],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"full recompute of {loaded:,} spans: {figures['seconds']:.1f} s (target < 60 s), "
        f"peak memory {peak_mb:,.0f} MB (target < 1,536 MB)"
    )
    print(
        f"  {figures['rollup_rows']:,} rollup rows, {figures['clusters']} error clusters, "
        f"{figures['anomalies']} anomaly flags; {loaded / figures['seconds']:,.0f} spans/s"
    )

    hour = synthetic_telemetry(now=now, days=1, sessions_per_hour=per_hour, seed=2)
    last_hour = hour.spans["started_at"] >= pd.Timestamp(now - timedelta(hours=1))
    sessions = hour.sessions[hour.sessions["started_at"] >= pd.Timestamp(now - timedelta(hours=1))]
    spans = hour.spans[last_hour & hour.spans["session_index"].isin(set(sessions.index))]
    hour_data = SyntheticData(spans, sessions, ())
    new = load(project, hour_data, "n")
    mark_refresh_pending({project.pk: now - timedelta(hours=1)})
    started = time.perf_counter()
    refresh_project_analytics_task(project.pk)
    seconds = time.perf_counter() - started
    print(
        f"incremental refresh after one new hour of {new:,} spans (today's rollups and clusters "
        f"rebuilt, the new hour judged): {seconds:.2f} s (target < 5 s)"
    )


def recompute(project_id: int) -> None:
    setup_django()
    from django.utils import timezone

    from analytics.refresh import recompute_project

    started = time.perf_counter()
    if os.environ.get("ANALYTICS_BENCH_PROFILE"):  # where the time goes, on stderr
        import cProfile
        import pstats

        with cProfile.Profile() as profile:
            result = recompute_project(project_id, now=timezone.now())
        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    else:
        result = recompute_project(project_id, now=timezone.now())
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rollup_rows": result.rollup_rows,
                "clusters": result.clusters,
                "anomalies": result.anomalies,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("detect").add_argument("--seeds", type=int, default=5)
    sub.add_parser("rollups").add_argument("--spans", type=int, default=1_000_000)
    sub.add_parser("recompute").add_argument("--project", type=int, required=True)
    args = parser.parse_args()
    if args.command == "detect":
        detect(args.seeds)
    elif args.command == "rollups":
        rollups(args.spans)
    else:
        recompute(args.project)


if __name__ == "__main__":
    main()
