"""Deleting a score: DELETE /api/v1/scores/<id>/ and the button on the session and span pages.
A person may delete the human scores they gave (members and above), admins any score, a key
with the `actions` scope any score of its project; each delete is audited."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from ingest.models import ApiKey, AuditEntry, Membership, Project, Score
from tests.builders import make_session, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(project_with_key: tuple[Project, str]) -> Project:
    """Session s1 with ann's human score, a program's score and bob's human score."""
    project, key = project_with_key
    for name in ("ann", "bob"):
        Membership.objects.create(
            user=make_user(username=name), project=project, role=Membership.Role.MEMBER
        )
    answer = Client().post(
        "/api/v1/scores/",
        data=json.dumps(
            [
                {"id": "judge-1", "session_id": "s1", "name": "judge", "value": 0.2},
                {"id": "ann-1", "session_id": "s1", "name": "helpful", "value": True},
                {"id": "bob-1", "session_id": "s1", "name": "helpful", "value": False},
            ]
        ),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.content
    # What the page and the people's POST store: human scores in their author's name.
    Score.objects.filter(client_id="ann-1").update(source="human", author="ann")
    Score.objects.filter(client_id="bob-1").update(source="human", author="bob")
    return project


def _as(username: str) -> Client:
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def _left() -> list[str]:
    return sorted(Score.objects.values_list("client_id", flat=True))


def test_a_member_deletes_their_own_human_score_and_it_is_audited(scored: Project) -> None:
    answer = _as("ann").delete("/api/v1/scores/ann-1/")

    assert answer.status_code == 204, answer.content
    assert _left() == ["bob-1", "judge-1"]
    entry = AuditEntry.objects.get(project=scored, action=AuditEntry.Action.SCORE_DELETE)
    assert (entry.actor, entry.target) == ("ann", "score helpful of session s1")
    assert entry.changes["author"] == ["ann", None] and entry.changes["value"] == ["true", None]


@pytest.mark.parametrize("score_id", ["bob-1", "judge-1"])
def test_a_member_may_not_delete_someone_else_s_score(scored: Project, score_id: str) -> None:
    answer = _as("ann").delete(f"/api/v1/scores/{score_id}/")

    assert answer.status_code == 403
    assert "admin" in answer.json()["error"]
    assert _left() == ["ann-1", "bob-1", "judge-1"]
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.SCORE_DELETE).exists()


def test_an_admin_deletes_anyone_s_score(scored: Project, admin_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)

    assert client.delete("/api/v1/scores/bob-1/").status_code == 204
    assert client.delete("/api/v1/scores/judge-1/").status_code == 204
    assert _left() == ["ann-1"]
    assert AuditEntry.objects.filter(action=AuditEntry.Action.SCORE_DELETE).count() == 2


def test_a_viewer_who_became_one_after_scoring_may_not_delete_it(scored: Project) -> None:
    Membership.objects.filter(user__username="ann").update(role=Membership.Role.VIEWER)

    assert _as("ann").delete("/api/v1/scores/ann-1/").status_code == 403
    assert "ann-1" in _left()


def test_a_key_needs_the_actions_scope_to_delete_a_score(scored: Project) -> None:
    _, reader = ApiKey.generate(scored, "reader", scopes=["read"])
    _, actor = ApiKey.generate(scored, "bot", scopes=["actions"])

    refused = Client().delete(
        "/api/v1/scores/judge-1/", headers={"Authorization": f"Bearer {reader}"}
    )
    shown = Client().get("/api/v1/scores/judge-1/", headers={"Authorization": f"Bearer {reader}"})
    deleted = Client().delete(
        "/api/v1/scores/judge-1/", headers={"Authorization": f"Bearer {actor}"}
    )

    assert refused.status_code == 403 and "actions" in refused.json()["error"]
    assert shown.status_code == 200 and shown.json()["value"] == 0.2
    assert deleted.status_code == 204
    entry = AuditEntry.objects.get(action=AuditEntry.Action.SCORE_DELETE)
    assert entry.actor.startswith("key ") and "bot" in entry.actor


def test_a_score_of_another_project_or_none_is_a_404(scored: Project) -> None:
    other = Project.objects.create(name="Other", slug="other")
    _, other_key = ApiKey.generate(other, "other", scopes=["actions", "read"])
    outsider = make_user(username="outsider")
    client = Client()
    client.force_login(outsider)

    headers = {"Authorization": f"Bearer {other_key}"}
    assert Client().delete("/api/v1/scores/ann-1/", headers=headers).status_code == 404
    assert client.delete("/api/v1/scores/ann-1/").status_code == 404
    assert _as("ann").delete("/api/v1/scores/nothing/").status_code == 404
    assert _left() == ["ann-1", "bob-1", "judge-1"]


def test_the_session_page_offers_delete_only_where_the_person_may(scored: Project) -> None:
    session = scored.sessions.get(external_id="s1")
    page = _as("ann").get(f"/sessions/{session.pk}/").content.decode()
    ann, bob = Score.objects.get(client_id="ann-1"), Score.objects.get(client_id="bob-1")

    assert page.count('class="score-delete"') == 1
    assert f"/sessions/{session.pk}/scores/{ann.pk}/delete/" in page
    refused = _as("ann").post(f"/sessions/{session.pk}/scores/{bob.pk}/delete/")
    deleted = _as("ann").post(f"/sessions/{session.pk}/scores/{ann.pk}/delete/")

    assert refused.status_code == 403
    assert deleted.status_code == 302 and deleted.url.endswith(  # type: ignore[attr-defined]  # a redirect's url; not in the stubs' response
        f"/sessions/{session.pk}/#scores"
    )
    assert _left() == ["bob-1", "judge-1"]


def test_the_sessions_page_shows_each_score_name_s_mean_linking_to_its_filter(
    project_with_key: tuple[Project, str], admin_user: Any
) -> None:
    project, key = project_with_key
    make_session(project, external_id="quiet")
    Client().post(
        "/api/v1/scores/",
        data=json.dumps(
            [
                {"id": "j1", "session_id": "s1", "name": "judge", "value": 0.5},
                {"id": "j2", "session_id": "s1", "name": "judge", "value": 1},
                {"id": "t1", "session_id": "s1", "name": "tone", "value": "polite"},
                {"id": "c1", "session_id": "s1", "name": "<b>correct</b>", "value": False},
            ]
        ),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    client = Client()
    client.force_login(admin_user)

    page = client.get("/sessions/").content.decode()

    assert re.search(r'<th class="col-scores"[^>]*>\s*Scores\s*</th>', page)
    assert '<span class="score-name">judge</span> 0.75</a>' in page
    assert '<span class="score-name">tone</span> polite</a>' in page
    assert "&lt;b&gt;correct&lt;/b&gt;</span> false</a>" in page
    assert "?score=judge" in page
    filtered = client.get("/sessions/", {"score": "judge"}).content.decode()
    assert "quiet" in page and "quiet" not in filtered
