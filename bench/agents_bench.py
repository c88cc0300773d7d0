"""Agents by name: server time of the agents page, an agent's page and /api/v1/agents/ on an
existing database (the demo's: `bash scripts/demo.sh` seeds it). Read-only; prints figures,
asserts nothing.

    OBSERVATORY_DATA_DIR=data python bench/agents_bench.py --project demo
    DATABASE_URL=postgres://… python bench/agents_bench.py --project demo
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.messages_bench import time_page  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="demo", help="Project slug.")
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args()
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", secrets.token_hex(32))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    import django

    django.setup()
    from urllib.parse import quote

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from analytics import queries
    from ingest.models import Agent, Project

    project = Project.objects.get(slug=args.project)
    user = get_user_model().objects.filter(is_superuser=True).first()
    if user is None:
        raise SystemExit("No superuser to log in as (scripts/demo.sh makes admin)")
    instances = Agent.objects.filter(project=project).count()
    since = timezone.now() - timezone.timedelta(days=30)
    table = queries.agent_name_table(project.pk, since=since, until=timezone.now())
    print(f"database: {connection.vendor}; {instances:,} agent instances, {len(table)} names (30d)")
    client = Client()
    client.force_login(user)
    connection.force_debug_cursor = True  # count queries without DEBUG's other costs
    top = quote(str(table.iloc[0]["name"])) if len(table) else "none"
    for url in (
        "/agents/?range=24h",
        "/agents/?range=7d",
        "/agents/?range=30d",
        f"/agents/named/{top}/?range=30d",
        f"/api/v1/agents/?project={project.slug}&days=30",
        f"/api/v1/agents/?project={project.slug}&days=30&format=csv",
    ):
        time_page(client, url, args.requests)


if __name__ == "__main__":
    main()
