"""recompute_analytics and seed_analytics_demo, run as commands."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from analytics.detectors import DETECTORS
from analytics.models import Rollup, SessionFlag
from analytics.refresh import detect_session_failures
from ingest.models import ApiKey, Project, Session
from tests.builders import make_project, make_session, make_span


@pytest.mark.django_db
def test_recompute_analytics_rebuilds_a_projects_rollups_and_flags() -> None:
    project, _ = make_project(name="Backfill")
    session = make_session(project, started_at=timezone.now() - timedelta(days=2), spans=3)
    for _ in range(5):
        make_span(session, name="search", params={"q": "same"})
    out = io.StringIO()

    call_command("recompute_analytics", "--project", "backfill", stdout=out)

    assert Rollup.objects.filter(project=project, granularity="day").exists()
    assert SessionFlag.objects.filter(detector="tool_loop").exists()
    assert f"project {project.pk}: " in out.getvalue()
    assert "1 session flags" in out.getvalue()


@pytest.mark.django_db
def test_recompute_analytics_of_an_unknown_project_is_an_error() -> None:
    with pytest.raises(CommandError, match="No project 'nope'"):
        call_command("recompute_analytics", "--project", "nope", stdout=io.StringIO())


def test_the_analytics_demo_sends_one_session_per_failure_pattern(live_server: Any) -> None:
    project = Project.objects.create(name="Demo", slug="demo")
    _, key = ApiKey.generate(project)
    out = io.StringIO()

    call_command(
        "seed_analytics_demo",
        "--url",
        live_server.url,
        "--api-key",
        key,
        "--days",
        "1",
        "--sessions-per-hour",
        "1",
        stdout=out,
    )

    assert "0 rejected" in out.getvalue()
    broken = [pk for pk, tags in Session.objects.values_list("pk", "tags") if "broken" in tags]
    assert len(broken) == len(DETECTORS)
    detect_session_failures(broken)
    assert set(SessionFlag.objects.values_list("detector", flat=True)) == set(DETECTORS)
    assert Session.objects.filter(project=project).count() > len(DETECTORS)
