"""Odd query strings are a 4xx (or ignored), never a 500, on every list endpoint and page.

Found by review: `?page_size=²` passed isdigit() and then failed int(); `?since=2026-02-30T00:00:00`
is well-formed ISO and still not a date. Found by schemathesis: `?before=2000-01-01T00:00:00+18:00`
(an offset PostgreSQL refuses) and times that leave the calendar once in UTC.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.builders import make_project, make_session, make_user

ODD_VALUES = [
    "²",
    "٣",
    "-1",
    "99999999999999999999999",
    "2026-02-30T00:00:00",
    "2026-13-01",
    "\x00",
    # schemathesis (bench/fuzz.sh): PostgreSQL refuses offsets past 15:59, and year 1 at +20:00
    # is before year 1 in UTC.
    "2000-01-01T00:00:00+18:00",
    "0001-01-01T00:00:01+20:00",
    "9999-12-31T23:59:59-20:00",
]
PARAMS = [
    "page_size",
    "page",
    "since",
    "until",
    "days",
    "runs",
    "hours",
    "limit",
    "window",
    "range",
    "after",
    "before",
    "started_before",
    "run_started_after",
]


def _paths_without_arguments(prefix: str) -> list[str]:
    """Every URL of the namespace that takes no path argument (lists and pages)."""
    found = []

    def walk(patterns: list[Any], base: str) -> None:
        for entry in patterns:
            route = str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, base + route)
            elif isinstance(entry, URLPattern) and "<" not in route:
                found.append("/" + base + route)

    walk(get_resolver().url_patterns, "")
    return sorted(p for p in found if p.startswith(prefix) and "^" not in p and "(" not in p)


@pytest.fixture
def member(db: None) -> Client:
    user = make_user()
    project, _ = make_project(name="Odd", user=user)
    make_session(project)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.mark.parametrize("value", ODD_VALUES)
def test_odd_values_of_the_usual_parameters_never_give_a_500(member: Client, value: str) -> None:
    paths = _paths_without_arguments("/")
    assert len([p for p in paths if p.startswith("/api/v1/")]) > 20
    query = dict.fromkeys(PARAMS, value)
    failures = []
    for path in paths:
        if path.startswith(("/admin", "/v1/", "/v2/", "/v3/", "/v4/", "/accounts/logout")):
            continue
        response = member.get(path, query)
        if response.status_code >= 500:
            failures.append(f"{path}: {response.status_code}")
    assert not failures, f"?{{param}}={value!r}: " + ", ".join(failures)


@pytest.mark.parametrize("suffix", ["", "events/", "transcript/"])
def test_a_project_slug_holding_nul_is_a_400_on_the_session_endpoints(
    member: Client, suffix: str
) -> None:
    """schemathesis: `/api/v1/sessions/<id>/?project=%00*` reached PostgreSQL (500)."""
    response = member.get(f"/api/v1/sessions/s1/{suffix}", {"project": "\x00*"})

    assert response.status_code == 400
    assert response.json()["field"] == "project"
