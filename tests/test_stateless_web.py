"""Web processes keep no state a second one would miss (docs/deployment.md, "Stateless web"), so
any number of them can serve behind one load balancer: logins and lockouts live in the database,
and no app module caches in process memory what others must agree on or writes local files.
Pure checks of settings and source: no database."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

REPO = Path(__file__).resolve().parents[1]
APPS = ("ingest", "analytics", "api", "dashboard")
# Django's cache is per process unless a shared backend is configured; files under DATA_DIR are
# per machine. Neither may hold what every web process must see.
SHARED_STATE = re.compile(r"django\.core\.cache|\bcaches\b|DATA_DIR|FileSystemStorage")


def test_logins_and_lockouts_are_kept_in_the_database() -> None:
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.db"
    assert settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"


def test_no_app_module_uses_a_process_cache_or_local_files() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for app in APPS
        for path in sorted((REPO / app).rglob("*.py"))
        if "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SHARED_STATE.search(line)
    ]

    assert offenders == []


def test_the_check_finds_a_process_cache() -> None:
    assert SHARED_STATE.search("from django.core.cache import cache")
    assert SHARED_STATE.search("path = settings.DATA_DIR / 'exports'")
