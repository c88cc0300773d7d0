"""API keys: UUID-shaped (agentops 0.2/0.3 refuse anything else), hashed, revocable; the `obs_`
keys issued before keep working."""

from __future__ import annotations

import uuid
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from ingest.auth import AuthError, project_for_key
from ingest.models import ApiKey, Project, hash_api_key
from ingest.projects import revoke_key


def new_key() -> tuple[Project, str]:
    out = StringIO()
    call_command("create_project", "Keys", stdout=out)
    return Project.objects.get(slug="keys"), out.getvalue().strip().splitlines()[-1]


def test_create_project_prints_a_random_uuid4_that_is_stored_only_as_its_sha256(db: None) -> None:
    project, raw = new_key()
    assert str(uuid.UUID(raw)) == raw and uuid.UUID(raw).version == 4
    stored = ApiKey.objects.get(project=project)
    assert stored.key_hash == hash_api_key(raw) != raw
    assert raw not in {stored.prefix, stored.name} and raw.startswith(stored.prefix)
    assert project_for_key(raw) == project
    _, second = new_key()
    assert second != raw


def test_spellings_of_the_same_uuid_that_agentops_accepts_find_the_key(db: None) -> None:
    project, raw = new_key()
    for spelling in (raw.upper(), raw.replace("-", ""), "{" + raw + "}", f" {raw}\n"):
        assert project_for_key(spelling) == project


def test_a_key_issued_before_uuid_keys_still_authenticates(db: None) -> None:
    project = Project.objects.create(name="Old", slug="old")
    old = "obs_" + "x" * 43
    ApiKey.objects.create(project=project, prefix=old[:12], key_hash=hash_api_key(old))
    assert project_for_key(old) == project


def test_a_revoked_uuid_key_is_refused(db: None) -> None:
    project, raw = new_key()
    ApiKey.objects.filter(project=project).update(revoked_at=timezone.now())
    with pytest.raises(AuthError, match="Unknown or revoked"):
        project_for_key(raw)


def test_a_key_revoked_elsewhere_works_here_only_until_the_cache_time_has_passed(
    db: None, settings: Any
) -> None:
    """Revoked by another process (here: a bare UPDATE), the key this process read a moment
    ago is still its project's for OBSERVATORY_API_KEY_CACHE_SECONDS; once that much time has
    passed since it was read (a cache time of 0: any time at all), it is refused."""
    settings.OBSERVATORY_API_KEY_CACHE_SECONDS = 60
    project, raw = new_key()
    assert project_for_key(raw) == project
    ApiKey.objects.filter(project=project).update(revoked_at=timezone.now())
    assert project_for_key(raw) == project
    settings.OBSERVATORY_API_KEY_CACHE_SECONDS = 0
    with pytest.raises(AuthError, match="Unknown or revoked"):
        project_for_key(raw)


def test_a_key_revoked_in_this_process_is_refused_at_once(
    db: None, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.OBSERVATORY_API_KEY_CACHE_SECONDS = 60
    project, raw = new_key()
    assert project_for_key(raw) == project
    with django_capture_on_commit_callbacks(execute=True):
        revoke_key(ApiKey.objects.get(project=project))
    with pytest.raises(AuthError, match="Unknown or revoked"):
        project_for_key(raw)


def test_a_key_is_read_once_per_cache_time_and_an_unknown_one_every_time(
    db: None, settings: Any, django_assert_num_queries: Any
) -> None:
    settings.OBSERVATORY_API_KEY_CACHE_SECONDS = 60
    project, raw = new_key()
    project_for_key(raw)
    with django_assert_num_queries(0):
        assert project_for_key(raw) == project
    for _ in range(2):
        with django_assert_num_queries(1), pytest.raises(AuthError):
            project_for_key(str(uuid.uuid4()))


def test_otlp_accepts_a_uuid_key_as_a_bearer_token(client: Any, db: None) -> None:
    _, raw = new_key()
    answer = client.post(
        "/v1/traces", b"{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert answer.status_code == 200, answer.content
