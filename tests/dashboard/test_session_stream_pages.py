"""The session page shows the end of a long transcript, each line cut, with links to the rest
(issue 14: it loaded every line whole, and a line can be a million characters)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from dashboard.views import STREAM_LINE_CHARS, STREAM_TAIL_LINES
from ingest.models import TranscriptLine
from tests.builders import make_project, make_session, make_user

pytestmark = pytest.mark.django_db

LINES = 2 * STREAM_TAIL_LINES + 50
HUGE = "h" * 1_000_000


@pytest.fixture
def user() -> Any:
    return make_user()


@pytest.fixture
def logged_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def long_session(user: Any) -> Any:
    project, _ = make_project(name="Acme", user=user)
    transcript = [("user", f"question {n}") for n in range(LINES - 1)] + [("assistant", HUGE)]
    return make_session(project, external_id="long", transcript=transcript)


def _shown(html: str) -> list[str]:
    return re.findall(r"question (\d+)<", html)


def test_the_page_shows_the_last_lines_cut_and_links_to_earlier_ones(
    logged_in: Client, long_session: Any
) -> None:
    url = reverse("dashboard:session-detail", args=[long_session.pk])
    html = logged_in.get(url).content.decode()

    shown = _shown(html)
    assert len(shown) == STREAM_TAIL_LINES - 1  # plus the huge answer, the last line
    assert shown[-1] == str(LINES - 2)
    assert "h" * STREAM_LINE_CHARS in html and "h" * (STREAM_LINE_CHARS + 1) not in html
    assert f"whole line ({len(HUGE)} characters)" in html
    assert f"Showing {STREAM_TAIL_LINES} of {LINES} lines" in html
    earlier = re.search(r'href="\?([^"]*before=\d+)#stream"', html)
    assert earlier is not None

    page = logged_in.get(f"{url}?{earlier.group(1).replace('&amp;', '&')}").content.decode()

    first_shown = LINES - STREAM_TAIL_LINES  # index of the first line of the newest page
    expected = range(first_shown - STREAM_TAIL_LINES, first_shown)
    assert _shown(page) == [str(n) for n in expected]
    assert "Newest lines" in page


def test_the_whole_line_link_gives_the_line_as_plain_text(
    logged_in: Client, long_session: Any
) -> None:
    line = TranscriptLine.objects.get(session=long_session, role="assistant")
    response = logged_in.get(reverse("dashboard:session-line", args=[long_session.pk, line.pk]))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == HUGE
