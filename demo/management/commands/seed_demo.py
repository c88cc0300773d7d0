"""seed_demo: simulate a red-team arena (demo/arena.py) and send it through the native ingest
API with the SDK.

It never writes rows: every record goes over HTTP in batches, as a real agent system's would, so
the demo also exercises ingest. The same --seed gives the same story; ids are fresh on each run,
so running it again adds another set of sessions.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from demo.arena import ArenaSession, SessionPlan, plan_sessions
from observatory_sdk import Client


class Command(BaseCommand):
    help = "Simulate a red-team agent arena and send it to an Observatory server's ingest API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Server base URL.")
        parser.add_argument("--api-key", required=True, help="A project API key.")
        parser.add_argument("--sessions", type=int, default=300, help="Sessions to simulate.")
        parser.add_argument("--days", type=int, default=14, help="Spread them over N past days.")
        parser.add_argument("--seed", type=int, default=7, help="Same seed, same story.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["sessions"] < 1 or options["days"] < 1:
            raise CommandError("--sessions and --days must be at least 1")
        rng = random.Random(options["seed"])
        now = datetime.now(UTC)
        plans = plan_sessions(rng, count=options["sessions"], days=options["days"], now=now)
        client = Client(
            options["api_key"],
            options["url"],
            batch_size=1000,
            flush_interval=0.2,
            max_retries=3,
            backoff_max=5,
        )
        try:
            record_count = self._send(client, plans, rng, now)
        finally:
            client.close(timeout=120)
        stats = client.stats
        self.stdout.write(
            f"Seeded {len(plans)} sessions: {record_count} records sent ({stats.sent} accepted, "
            f"{stats.duplicates} duplicates), {stats.rejected} rejected, "
            f"{stats.failed_batches} failed batches, {stats.dropped} dropped."
        )
        if stats.rejected or stats.failed_batches or stats.dropped:
            raise CommandError(f"The server did not take everything. {stats.last_error}".strip())

    def _send(
        self, client: Client, plans: list[SessionPlan], rng: random.Random, now: datetime
    ) -> int:
        record_count = 0
        for plan in tqdm(plans, desc="Seeding sessions", unit="session", disable=None):
            for record in ArenaSession(rng, plan, now=now).build():
                client.record(record)
                record_count += 1
            # Stop early on a wrong URL or key instead of failing every batch; keep the queue
            # short so nothing is dropped however many sessions are asked for.
            if plan.index == 0 or plan.index % 100 == 99:
                client.flush()
            if client.stats.failed_batches:
                raise CommandError(f"Could not send: {client.stats.last_error}")
        return record_count
