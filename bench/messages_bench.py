"""Messages between agents: native ingest rate, and server time of the sequence diagram and the
agent graph with 5,000 messages in a session and 1M in the project. Prints figures, asserts
nothing.

Seeds a throwaway database (a temporary SQLite file, or the empty database DATABASE_URL names, as
bench/run_messages_bench.sh does with a throwaway PostgreSQL):

1. ingest: `--ingest-messages` messages, five lifecycle records each (created, sent, delivered,
   received, processed), shuffled so that stages of one message arrive out of order and across
   batches, POSTed to /api/v1/ingest in batches of `--batch` through Django's full stack
   (in-process: no network, no gunicorn);
2. pages: `--project-messages` more messages spread over 14 days (PostgreSQL: one INSERT … SELECT
   generate_series; SQLite: bulk_create) plus one session with `--session-messages`, then
   requests the session's sequence diagram, the agents page (graph over the last 24 hours and
   the last 14 days), the agent-edges API and the dead-letter page, `--requests` times each.

    python bench/messages_bench.py                                   # SQLite, 100k in project
    bash bench/run_messages_bench.sh                                 # PostgreSQL, 1M in project
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 300
AGENTS = ("planner", "researcher", "coder", "critic", "tester", "reviewer", "judge", "router")
STAGES = ("created", "sent", "delivered", "received", "processed")


def configure(data_dir: str) -> None:
    """Production-like settings (DEBUG off) on the throwaway database, then django.setup()."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{data_dir}/bench.sqlite3")
    os.environ["OBSERVATORY_DATA_DIR"] = data_dir
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", secrets.token_hex(32))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    # The bench has no broker: summary tasks are not what it measures.
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    import django

    django.setup()


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def lifecycle_batches(count: int, batch: int, rng: random.Random) -> list[bytes]:
    """`count` messages x 5 stages as native records, shuffled, in bodies of `batch` records."""
    start = datetime.now(UTC) - timedelta(hours=2)
    records = []
    for n in range(count):
        at = start + timedelta(milliseconds=37 * n)
        sender, receiver = rng.sample(AGENTS, 2)
        for i, stage in enumerate(STAGES):
            record: dict[str, Any] = {
                "type": "agent_message",
                "id": f"bench-{n}-{stage}",
                "session_id": f"ingest-{n % 50}",
                "message_id": f"m{n}",
                "stage": stage,
                "at": iso(at + timedelta(milliseconds=40 * i)),
            }
            if stage == "created":
                record |= {"sender": sender, "receivers": [receiver], "channel": "bench",
                           "content": f"task {n}: " + "lorem ipsum " * 8}  # fmt: skip
            records.append(record)
    # Shuffle within windows of a few batches: stages of one message land in different batches.
    window = batch * 4
    for offset in range(0, len(records), window):
        chunk = records[offset : offset + window]
        rng.shuffle(chunk)
        records[offset : offset + window] = chunk
    return [
        json.dumps({"records": records[i : i + batch]}).encode()
        for i in range(0, len(records), batch)
    ]


def bench_ingest(key: str, count: int, batch: int) -> None:
    from django.test import Client

    bodies = lifecycle_batches(count, batch, random.Random(7))
    client = Client()
    started = time.perf_counter()
    accepted = 0
    for body in bodies:
        response = client.post(
            "/api/v1/ingest", data=body, content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )  # fmt: skip
        accepted += response.json()["accepted"]
    seconds = time.perf_counter() - started
    records = count * len(STAGES)
    print(
        f"ingest: {records:,} lifecycle records ({count:,} messages) in {seconds:.1f} s: "
        f"{records / seconds:,.0f} records/s, {count / seconds:,.0f} messages/s "
        f"(batches of {batch}, out of order; {accepted:,} accepted)"
    )


def seed_project(project: Any, total: int) -> None:
    """`total` messages over the last 14 days in 2,000 sessions, 3% failed or dead-lettered."""
    from django.db import connection

    from ingest.models import Session

    now = datetime.now(UTC)
    sessions = Session.objects.bulk_create(
        Session(project=project, external_id=f"bulk-{i}", started_at=now - timedelta(days=14))
        for i in range(2000)
    )
    started = time.perf_counter()
    if connection.vendor == "postgresql":
        _insert_series(project.pk, sessions[0].pk, total, now)
    else:
        _bulk_create(project, sessions, total, now)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh statistics, as autovacuum would have by then
    print(f"seed: {total:,} messages in the project in {time.perf_counter() - started:.0f} s")


def _insert_series(project_pk: int, first_session: int, total: int, now: datetime) -> None:
    from django.db import connection

    agents = list(AGENTS)
    sql = """
        INSERT INTO ingest_message (
            project_id, session_id, message_id, sender, receivers, channel, correlation_id,
            causation_id, content_type, content_size, preview, status, started_at, sent_at,
            delivered_at, processed_at, delivery_ms, processing_ms, end_to_end_ms,
            attempt_count, retry_count, error_type, error_message, dead_letter_state,
            resolution_note, requeue_count, poll_id, updated_at)
        SELECT %(project)s, %(session)s + (n %% 2000), 'bulk-' || n,
            (%(agents)s::text[])[1 + n %% 8],
            jsonb_build_array((%(agents)s::text[])[1 + (n * 7 + 3) %% 8]),
            'bench', '', '', 'text/plain', 40, 'bulk message ' || n,
            CASE WHEN n %% 33 = 0 THEN 'dead_lettered' ELSE 'processed' END,
            t, t, t + (d || ' milliseconds')::interval, t + interval '2 seconds', d, 900, 2000,
            1, 0, CASE WHEN n %% 33 = 0 THEN 'TimeoutError' ELSE '' END, '',
            CASE WHEN n %% 33 = 0 THEN 'open' ELSE '' END, '', 0, '', now()
        FROM (
            SELECT n, %(now)s::timestamptz - (n * (1209600.0 / %(total)s) || ' seconds')::interval
                AS t, 5 + (n * 7919) %% 400 AS d
            FROM generate_series(1::bigint, %(total)s) AS n
        ) AS series
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {"project": project_pk, "session": first_session, "agents": agents,
             "total": total, "now": now},
        )  # fmt: skip


def _bulk_create(project: Any, sessions: list[Any], total: int, now: datetime) -> None:
    from ingest.models import Message

    step = timedelta(seconds=1209600 / total)
    for offset in range(0, total, 20_000):
        Message.objects.bulk_create(
            Message(
                project=project, session=sessions[n % 2000], message_id=f"bulk-{n}",
                sender=AGENTS[n % 8], receivers=[AGENTS[(n * 7 + 3) % 8]], channel="bench",
                preview=f"bulk message {n}", started_at=now - step * n,
                status="dead_lettered" if n % 33 == 0 else "processed",
                delivery_ms=5 + (n * 7919) % 400,
                dead_letter_state="open" if n % 33 == 0 else "",
            )
            for n in range(offset, min(offset + 20_000, total))
        )  # fmt: skip


def seed_session(project: Any, count: int) -> Any:
    from ingest.models import Message, MessageContent, Session

    start = datetime.now(UTC) - timedelta(hours=3)
    session = Session.objects.create(project=project, external_id="big", started_at=start)
    rows = Message.objects.bulk_create(
        Message(
            project=project, session=session, message_id=f"big-{n}", sender=AGENTS[n % 8],
            receivers=[AGENTS[(n + 1) % 8]], preview=f"step {n}: " + "content " * 10,
            started_at=start + timedelta(milliseconds=500 * n), sent_at=start + timedelta(
                milliseconds=500 * n), delivery_ms=12.0,
            status="failed" if n % 50 == 0 else "processed",
        )
        for n in range(count)
    )  # fmt: skip
    MessageContent.objects.bulk_create(MessageContent(message=m, content=m.preview) for m in rows)
    return session


def time_page(client: Any, url: str, requests: int) -> list[float]:
    from django.db import connection, reset_queries

    timings = []
    queries = 0
    for _ in range(requests):
        reset_queries()
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        queries = len(connection.queries)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    median = statistics.median(timings)
    worst = max(timings)
    verdict = "under" if median < TARGET_MS else "OVER"
    print(
        f"  {url:<44} median {median:7.1f} ms  max {worst:7.1f} ms  "
        f"{queries} queries  ({verdict} the {TARGET_MS} ms target)"
    )
    return timings


def build_edge_rollups(project_id: int) -> None:
    """The hourly agent-edge rollups the graph reads, as the analytics refresh builds them."""
    from django.utils import timezone

    from analytics import queries
    from analytics.refresh import DAY, days_between, floor_day, refresh_edge_rollups_of_day

    started = time.perf_counter()
    first = queries.first_message_start(project_id)
    now = timezone.now()
    days = list(days_between(first, floor_day(now) + DAY)) if first else []
    rows = sum(refresh_edge_rollups_of_day(project_id, day) for day in days)
    seconds = time.perf_counter() - started
    print(f"edge rollups: {rows:,} rows over {len(days)} days in {seconds:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingest-messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--project-messages", type=int, default=100_000)
    parser.add_argument("--session-messages", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="messages-bench-") as data_dir:
        configure(data_dir)
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client

        from ingest.models import ApiKey, Membership, Project

        settings.DEBUG = False
        call_command("migrate", verbosity=0)
        print(f"database: {connection.vendor}")
        user = get_user_model().objects.create_user("bench", password="bench")
        project = Project.objects.create(name="Bench", slug="bench")
        Membership.objects.create(user=user, project=project)
        _, key = ApiKey.generate(project)

        bench_ingest(key, args.ingest_messages, args.batch)
        seed_project(project, args.project_messages)
        session = seed_session(project, args.session_messages)
        build_edge_rollups(project.pk)

        client = Client()
        client.force_login(user)
        connection.force_debug_cursor = True  # count queries without DEBUG's other costs
        total = args.project_messages + args.ingest_messages + args.session_messages
        print(f"pages ({args.requests} requests each; {total:,} messages in the project, "
              f"{args.session_messages:,} in the session):")  # fmt: skip
        time_page(client, f"/sessions/{session.pk}/messages/", args.requests)
        time_page(client, f"/sessions/{session.pk}/messages/?start=4800", args.requests)
        time_page(client, "/agents/?range=24h", args.requests)
        time_page(client, "/agents/?range=14d", args.requests)
        time_page(client, "/api/v1/agent-edges/?project=bench", args.requests)
        time_page(client, "/dead-letters/", args.requests)


if __name__ == "__main__":
    main()
