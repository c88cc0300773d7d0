"""rebuild_search_index: index the text of sessions stored before search existed, or after the
index was lost. Sessions whose text has not changed are skipped, so running it twice is cheap."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from analytics import queries
from analytics.search_index import index_sessions

SESSION_BATCH = 200


class Command(BaseCommand):
    help = (
        "Index the prompts, completions, tool calls, transcripts and messages of stored sessions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", help="Only this project (slug); default: every project.")

    def handle(self, *args: Any, **options: Any) -> None:
        projects = queries.project_ids_for_slug(options["project"])
        if not projects:
            raise CommandError(f"No project {options['project']!r}")
        pks = [pk for project_id in projects for pk in queries.session_pks_of_project(project_id)]
        written = 0
        with tqdm(total=len(pks), desc="sessions", unit="session", disable=None) as bar:
            for start in range(0, len(pks), SESSION_BATCH):
                batch = pks[start : start + SESSION_BATCH]
                written += index_sessions(batch)
                bar.update(len(batch))
        self.stdout.write(f"{len(pks)} sessions looked at, {written} search entries written")
