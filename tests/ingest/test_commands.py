"""Administration from the command line: create_project and create_api_key."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from ingest.models import ApiKey, Membership, Project

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_create_project_prints_a_working_key_on_its_last_line(client: Client) -> None:
    key = last_line(run("create_project", "Red Team Arena"))
    project = Project.objects.get(slug="red-team-arena")
    assert project.name == "Red Team Arena"
    response = client.post(
        "/api/v1/ingest",
        data="[]",
        content_type="application/json",
        headers={"X-API-Key": key},
    )
    assert response.status_code == 200


def test_the_key_is_stored_only_as_a_hash_with_a_visible_prefix() -> None:
    key = last_line(run("create_project", "Hashing"))
    stored = ApiKey.objects.get()
    assert key not in (stored.key_hash, stored.prefix)
    assert key.startswith(stored.prefix)


def test_create_project_reuses_an_existing_project_and_makes_the_owner_admin(
    django_user_model: Any,
) -> None:
    owner = django_user_model.objects.create_user("owner", password="pw")
    run("create_project", "Arena")
    run("create_project", "Arena", "--owner", "owner")
    assert Project.objects.count() == 1
    assert ApiKey.objects.count() == 2
    assert Membership.objects.get(user=owner).role == "admin"


def test_create_api_key_adds_a_second_key_to_a_project() -> None:
    first = last_line(run("create_project", "Arena"))
    second = last_line(run("create_api_key", "arena", "--name", "ci"))
    assert first != second
    assert ApiKey.objects.filter(project__slug="arena").count() == 2


def test_unknown_project_or_owner_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="No project with slug or name 'nope'"):
        run("create_api_key", "nope")
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        run("create_project", "Arena", "--owner", "ghost")
