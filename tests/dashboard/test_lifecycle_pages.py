"""Settings → Data lifecycle and the session page's delete button and retention notice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from analytics import deletion
from ingest.models import AuditEntry, ErasureRequest, Membership, Project, Session
from tests.builders import make_project, make_session, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin() -> tuple[Client, Project]:
    user = make_user(username="ada")
    project, _ = make_project(name="Life", user=user, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client, project


def test_the_page_shows_the_retention_in_force_and_saves_a_new_one(
    admin: tuple[Client, Project], settings: Any
) -> None:
    settings.OBSERVATORY_RAW_RETENTION_DAYS = 90
    client, project = admin
    page = client.get("/settings/lifecycle/?project=life").content.decode()
    assert "raw telemetry is kept 90 days" in page

    answer = client.post(
        "/settings/lifecycle/?project=life",
        {"form": "retention", "raw_retention_days": "14", "derived_retention_days": "365"},
    )

    assert answer.status_code == 302
    project.refresh_from_db()
    assert (project.raw_retention_days, project.derived_retention_days) == (14, 365)
    entry = AuditEntry.objects.get(action="lifecycle.update")
    assert entry.changes == {
        "raw_retention_days": [None, 14],
        "derived_retention_days": [None, 365],
    }
    assert "raw telemetry is kept 14 days" in client.get("/settings/lifecycle/").content.decode()


def test_summaries_that_would_go_before_raw_data_are_refused_with_the_reason(
    admin: tuple[Client, Project],
) -> None:
    client, project = admin
    answer = client.post(
        "/settings/lifecycle/?project=life",
        {"form": "retention", "raw_retention_days": "30", "derived_retention_days": "7"},
    )
    assert answer.status_code == 400
    assert "derived_retention_days (7) must be 0 (forever) or at least" in answer.content.decode()
    project.refresh_from_db()
    assert project.raw_retention_days is None


def test_a_custom_pattern_re2_cannot_run_is_refused_and_a_good_one_is_saved(
    admin: tuple[Client, Project],
) -> None:
    client, project = admin
    bad = client.post(
        "/settings/lifecycle/?project=life",
        {"form": "redaction", "is_redaction_enabled": "on", "redaction_patterns": "x: (a)\\1"},
    )
    assert bad.status_code == 400
    assert "Line 1: Pattern &#x27;x&#x27; is not one RE2 accepts" in bad.content.decode()

    good = client.post(
        "/settings/lifecycle/?project=life",
        {
            "form": "redaction",
            "is_redaction_enabled": "on",
            "redaction_detectors": ["email", "card"],
            "redaction_patterns": "ticket: TCK-[0-9]{4}",
        },
    )
    assert good.status_code == 302
    project.refresh_from_db()
    assert project.is_redaction_enabled
    assert project.redaction_detectors == ["email", "card"]
    assert project.redaction_patterns == [{"name": "ticket", "pattern": "TCK-[0-9]{4}"}]
    page = client.get("/settings/lifecycle/").content.decode()
    assert "ticket: TCK-[0-9]{4}" in page


def test_a_big_erasure_runs_in_the_background_and_then_forgets_the_value(
    admin: tuple[Client, Project], settings: Any
) -> None:
    settings.OBSERVATORY_ERASE_INLINE_SESSIONS = 1
    client, project = admin
    for _ in range(2):
        make_session(project, metadata={"user_id": "<b>u-7</b>"})
    kept = make_session(project, metadata={"user_id": "u-8"})

    answer = client.post(
        "/settings/lifecycle/?project=life",
        {"form": "erasure", "kind": "user_id", "value": "<b>u-7</b>", "confirm": "on"},
        follow=True,
    )

    page = answer.content.decode()
    assert "Erasure #" in page and "of 2 sessions runs in the background" in page
    assert "&lt;b&gt;u-7&lt;/b&gt;" in page and "<b>u-7</b>" not in page
    assert Session.objects.count() == 3
    assert deletion.run_pending_erasures(older_than=timedelta(0)) == 1
    assert list(Session.objects.values_list("pk", flat=True)) == [kept.pk]
    done = ErasureRequest.objects.get()
    assert (done.status, done.session_count, done.value) == ("done", 2, "")
    assert "u-7" not in client.get("/settings/lifecycle/").content.decode()
    assert [e.action for e in AuditEntry.objects.order_by("pk")] == [
        "erasure.request",
        "erasure.done",
    ]


def test_an_erasure_needs_the_confirmation(admin: tuple[Client, Project]) -> None:
    client, project = admin
    make_session(project, metadata={"user_id": "u-1"})
    answer = client.post(
        "/settings/lifecycle/?project=life", {"form": "erasure", "kind": "user_id", "value": "u-1"}
    )
    assert answer.status_code == 400
    assert Session.objects.count() == 1


def test_the_session_page_offers_deletion_to_admins_only_and_deletes(
    admin: tuple[Client, Project],
) -> None:
    client, project = admin
    session = make_session(project)
    viewer = make_user(username="vic")
    Membership.objects.create(user=viewer, project=project, role=Membership.Role.VIEWER)
    viewer_client = Client()
    viewer_client.force_login(viewer)

    assert 'id="session-delete"' in client.get(f"/sessions/{session.pk}/").content.decode()
    assert (
        'id="session-delete"' not in viewer_client.get(f"/sessions/{session.pk}/").content.decode()
    )

    answer = client.post(f"/sessions/{session.pk}/delete/", follow=True)
    assert "and everything under it were deleted" in answer.content.decode()
    assert not Session.objects.exists()
    assert client.get(f"/sessions/{session.pk}/").status_code == 404
    entry = AuditEntry.objects.get(action="session.delete")
    assert entry.target == f"session {session.external_id}"


def test_the_session_page_says_when_retention_removed_its_raw_data(
    admin: tuple[Client, Project],
) -> None:
    client, project = admin
    now = datetime.now(tz=UTC)
    project.raw_retention_days = 7
    project.save()
    old = make_session(project, started_at=now - timedelta(days=8))
    new = make_session(project, started_at=now - timedelta(days=1))
    deletion.enforce_retention(project, now=now)

    old_page = client.get(f"/sessions/{old.pk}/").content.decode()
    assert "Raw data older than 7 days was removed" in old_page
    assert "Raw data older than" not in client.get(f"/sessions/{new.pk}/").content.decode()
    assert "Raw data older than 7 days" in client.get("/?range=30d").content.decode()
    assert "Raw data older than" not in client.get("/?range=24h").content.decode()


def test_the_api_deletes_a_session_and_requests_an_erasure(
    admin: tuple[Client, Project], settings: Any
) -> None:
    client, project = admin
    make_session(project, external_id="gone")
    make_session(project, tags=["t"])
    make_session(project, tags=["t"])

    deleted = client.delete("/api/v1/sessions/gone/")
    assert deleted.status_code == 200 and deleted.json() == {"deleted_sessions": 1}

    settings.OBSERVATORY_ERASE_INLINE_SESSIONS = 0
    queued = client.post(
        "/api/v1/erasures/", {"kind": "tag", "value": "t"}, content_type="application/json"
    )
    assert queued.status_code == 202
    body = queued.json()
    assert (body["status"], body["session_count"], body["value"]) == ("pending", 2, "t")
    deletion.run_erasure(body["id"])
    polled = client.get(f"/api/v1/erasures/{body['id']}/").json()
    assert (polled["status"], polled["value"]) == ("done", "")

    missing = client.post("/api/v1/erasures/", {"kind": "email", "value": ""}, "application/json")
    assert missing.status_code == 400
    assert missing.json()["field"] == "kind"
    assert missing.json()["error"].startswith("kind: ")
