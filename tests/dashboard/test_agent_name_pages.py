"""The agents page lists agents by name across sessions; each name has a page with its
instances, messages and daily calls. Agent-written names are escaped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analytics.refresh import refresh_project
from tests.builders import make_message, make_project, make_session, make_user

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def client_in(client: Client) -> Client:
    user = make_user()
    project, _ = make_project(user=user)
    now = timezone.now()
    for hours in (30, 20, 1):
        session = make_session(
            project,
            name=f"run {hours}",
            started_at=now - timedelta(hours=hours),
            agents=("planner", SCRIPT),
        )
    make_message(session, sender="planner", receivers=[SCRIPT], content=SCRIPT, at=now)
    refresh_project(project.pk, since=now - timedelta(days=2), now=now)
    client.force_login(user)
    return client


def test_the_agents_page_lists_each_name_once_with_its_sessions(client_in: Client) -> None:
    page = client_in.get("/agents/?range=7d").content.decode()

    assert "<strong>2</strong> agents by name" in page
    assert page.count(f'href="{reverse("dashboard:agent-name", args=["planner"])}') == 1
    assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'class="sparkline"' in page


def test_an_agent_page_shows_its_instances_messages_and_figures(client_in: Client) -> None:
    answer = client_in.get(reverse("dashboard:agent-name", args=["planner"]), {"range": "7d"})
    assert answer.status_code == 200
    page = answer.content.decode()

    assert "<strong>3</strong> instances" in page
    for hours in (30, 20, 1):
        assert f"run {hours}" in page
    assert "Latest 1 messages" in page
    assert 'id="chart-daily"' in page
    assert SCRIPT not in page


def test_an_agent_name_made_of_markup_has_an_escaped_page(client_in: Client) -> None:
    answer = client_in.get(reverse("dashboard:agent-name", args=[SCRIPT]), {"range": "7d"})
    assert answer.status_code == 200
    page = answer.content.decode()
    assert SCRIPT not in page and "&lt;script&gt;" in page


def test_a_name_without_agents_in_the_range_is_not_found(client_in: Client) -> None:
    assert client_in.get(reverse("dashboard:agent-name", args=["nobody"])).status_code == 404


def test_the_agents_page_takes_a_fixed_number_of_queries(
    client_in: Client, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(14):
        client_in.get("/agents/?range=7d")
