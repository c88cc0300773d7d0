"""recompute_analytics: rebuild every derived table (rollups, error clusters, anomaly flags,
session flags) from the telemetry, with a progress bar. For backfills and after upgrades."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from analytics import queries
from analytics.refresh import detect_session_failures, recompute_days, recompute_project

SESSION_BATCH = 500


class Command(BaseCommand):
    help = "Recompute rollups, error clusters, anomalies and session flags from the telemetry."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", help="Only this project (slug); default: every project.")
        parser.add_argument(
            "--skip-sessions", action="store_true", help="Leave the session flags as they are."
        )
        parser.add_argument(
            "--wait-for-summaries",
            type=float,
            default=0,
            metavar="SECONDS",
            help="First wait up to this long for the worker to summarise fresh sessions "
            "(session rollups read the summaries); for scripts that ingest just before.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        projects = queries.project_ids_for_slug(options["project"])
        if not projects:
            raise CommandError(f"No project {options['project']!r}")
        self._wait(projects, options["wait_for_summaries"])
        now = timezone.now()
        for project_id in projects:
            days = recompute_days(project_id, now=now)
            with tqdm(
                total=days, desc=f"project {project_id}: days", unit="day", disable=None
            ) as bar:
                result = recompute_project(project_id, now=now, progress=lambda _day: bar.update())
            flags = 0 if options["skip_sessions"] else self._sessions(project_id)
            self.stdout.write(
                f"project {project_id}: {result.rollup_rows} rollup rows, {result.clusters} error "
                f"clusters, {result.anomalies} anomaly flags, {flags} session flags"
            )

    def _wait(self, projects: list[int], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while seconds and time.monotonic() < deadline:
            stale = queries.stale_summary_count(projects)
            if not stale:
                return
            self.stdout.write(f"waiting for {stale} session summaries…")
            time.sleep(2)
        if seconds:
            self.stdout.write("some summaries are still stale; recomputing anyway")

    def _sessions(self, project_id: int) -> int:
        pks = queries.session_pks_of_project(project_id)
        flags = 0
        with tqdm(
            total=len(pks), desc=f"project {project_id}: sessions", unit="session", disable=None
        ) as bar:
            for start in range(0, len(pks), SESSION_BATCH):
                batch = pks[start : start + SESSION_BATCH]
                flags += detect_session_failures(batch)
                bar.update(len(batch))
        return flags
