"""The settings pages' rules beyond roles (tests/dashboard/test_roles.py): a raw key is shown
once, a revoked key stops working, a project keeps an owner, webhooks cannot aim at local
addresses; and the audit log: what an entry says, its API filters and CSV, keys kept out."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from ingest.auth import AuthError, project_for_key
from ingest.models import ApiKey, AuditEntry, Membership, ModelPrice, Project
from tests.builders import make_alert_rule, make_message, make_project, make_session
from tests.responses import streamed

UUID_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _person(username: str) -> Any:
    return get_user_model().objects.create(username=username)


@pytest.fixture
def owner(db: None) -> Any:
    return _person("olivia")


@pytest.fixture
def project(owner: Any) -> Project:
    return make_project(name="Settings", user=owner, role="owner")[0]


@pytest.fixture
def client(owner: Any) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def _new_key(client: Client, **form: Any) -> tuple[Any, str]:
    response = client.post(
        "/settings/keys/?project=settings", {"label": "support agent", "scopes": ["ingest"], **form}
    )
    shown = re.search(r'id="new-key">([^<]+)<', response.content.decode())
    assert shown is not None, response.content.decode()[:500]
    return response, shown.group(1)


def test_a_new_key_is_shown_once_and_works_for_ingest_only(
    client: Client, project: Project
) -> None:
    response, raw = _new_key(client)

    assert UUID_SHAPE.fullmatch(raw), "agentops 0.2/0.3 accept only UUID-shaped keys"
    assert response["Cache-Control"] == "no-store"
    assert project_for_key(raw) == project
    key = ApiKey.objects.get(name="support agent")
    assert (key.scopes, key.created_by) == ("ingest", "olivia")
    with pytest.raises(AuthError, match="may not read the API"):
        project_for_key(raw, scope="read")
    assert raw not in client.get("/settings/keys/").content.decode()
    entry = AuditEntry.objects.get(action="key.create")
    assert raw not in json.dumps(entry.changes) + entry.target
    assert entry.target == f"key {key.prefix}… (support agent)"


def test_a_revoked_key_stops_working_at_once(client: Client, project: Project) -> None:
    _, raw = _new_key(client)
    key = ApiKey.objects.get(name="support agent")

    client.post(f"/settings/keys/{key.pk}/revoke/")

    with pytest.raises(AuthError, match="revoked"):
        project_for_key(raw)
    page = client.get("/settings/keys/").content.decode()
    assert f'id="key-{key.pk}" class="muted"' in page
    assert AuditEntry.objects.filter(action="key.revoke", target__contains=key.prefix).exists()


def test_a_key_needs_a_scope(client: Client, project: Project) -> None:
    response = client.post("/settings/keys/", {"label": "nothing", "scopes": []})

    assert response.status_code == 400
    assert not ApiKey.objects.filter(name="nothing").exists()


def test_the_last_owner_can_neither_leave_nor_step_down(
    client: Client, owner: Any, project: Project
) -> None:
    mine = Membership.objects.get(user=owner, project=project)

    client.post(f"/settings/members/{mine.pk}/", {"role": "admin"})
    page = client.post(f"/settings/members/{mine.pk}/", {"remove": "1"}, follow=True)

    assert Membership.objects.get(pk=mine.pk).role == "owner"
    assert "keeps at least one owner" in page.content.decode()
    assert not AuditEntry.objects.filter(action__startswith="member.").exists()


def test_an_owner_can_step_down_once_there_is_another(
    client: Client, owner: Any, project: Project
) -> None:
    _person("peter")
    client.post("/settings/members/", {"user": "peter", "role": "owner"})
    mine = Membership.objects.get(user=owner, project=project)

    client.post(f"/settings/members/{mine.pk}/", {"role": "admin"})

    assert Membership.objects.get(pk=mine.pk).role == "admin"
    changes = dict(AuditEntry.objects.values_list("action", "changes"))
    assert changes == {
        "member.add": {"role": [None, "owner"]},
        "member.role": {"role": ["owner", "admin"]},
    }


def test_adding_someone_unknown_or_twice_says_so(client: Client, project: Project) -> None:
    unknown = client.post("/settings/members/", {"user": "nobody", "role": "viewer"})
    again = client.post("/settings/members/", {"user": "olivia", "role": "viewer"})

    assert unknown.status_code == again.status_code == 400
    assert "No such user" in unknown.content.decode()
    assert "already a member" in again.content.decode()


def test_a_new_project_has_its_creator_as_owner_and_a_free_slug(
    client: Client, owner: Any, project: Project
) -> None:
    response = client.post("/settings/new-project/", {"name": "Settings"})

    created = Project.objects.get(slug="settings-2")
    assert response["Location"] == "/settings/keys/?project=settings-2"
    assert Membership.objects.get(project=created).role == "owner"
    entry = AuditEntry.objects.get(project=created)
    assert (entry.action, entry.actor) == ("project.create", "olivia")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/hook", "http://169.254.169.254/latest", "http://localhost/"]
)
def test_the_requeue_webhook_cannot_aim_at_local_addresses(
    client: Client, project: Project, url: str
) -> None:
    response = client.post("/settings/channels/", {"requeue_webhook_url": url})

    assert response.status_code == 400
    assert Project.objects.get(pk=project.pk).requeue_webhook_url == ""


def test_admins_see_the_requeue_signing_secret_and_can_replace_it(
    client: Client, project: Project
) -> None:
    old = project.requeue_webhook_secret

    shown = client.get("/settings/channels/?project=settings").content.decode()
    response = client.post("/settings/channels/?project=settings", {"form": "rotate-secret"})
    new = Project.objects.get(pk=project.pk).requeue_webhook_secret
    after = client.get("/settings/channels/?project=settings").content.decode()

    assert f'id="requeue-secret">{old}<' in shown
    assert response.status_code == 302 and new != old and len(new) == 64
    assert f'id="requeue-secret">{new}<' in after and old not in after
    entry = AuditEntry.objects.get(target="requeue webhook secret")
    assert entry.changes == {"requeue_webhook_secret": ["(changed)", "(changed)"]}
    assert old not in client.get("/audit/").content.decode()


def test_editing_a_price_records_before_and_after(client: Client, project: Project) -> None:
    price = ModelPrice.objects.create(
        project=project, model="gpt-house", input_per_million=1, output_per_million=4
    )

    client.post(
        f"/settings/prices/?edit={price.pk}",
        {"model": "ignored-when-editing", "input_per_million": 2, "output_per_million": 4},
    )

    assert list(ModelPrice.objects.values_list("model", "input_per_million")) == [("gpt-house", 2)]
    entry = AuditEntry.objects.get(action="price.save")
    assert (entry.target, entry.changes) == ("price of gpt-house", {"input_per_million": [1, 2]})


def test_an_alert_rule_secret_is_never_written_to_the_log(client: Client, project: Project) -> None:
    rule = make_alert_rule(project, name="<script>alert(1)</script>")
    form = {
        "name": rule.name,
        "kind": "metric",
        "metric": "error_rate",
        "window_minutes": 30,
        "comparator": ">",
        "threshold": 0.5,
        "channel": "webhook",
        "target": rule.target,
        "secret": "brand-new-secret",
        "renotify_minutes": 60,
        "is_enabled": "on",
    }

    client.post(f"/alerts/?edit={rule.pk}", form)
    page = client.get("/audit/").content.decode()

    entry = AuditEntry.objects.get(action="alert_rule.save")
    assert entry.changes == {
        "window_minutes": [60, 30],
        "secret": ["(changed)", "(changed)"],
    }
    assert "brand-new-secret" not in page and "s3cret" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page


def test_a_key_s_requeue_is_logged_under_the_key(project: Project) -> None:
    dead = make_message(make_session(project), status="dead_lettered")
    key, raw = ApiKey.generate(project, "triage bot", scopes=["actions"])

    Client().post(
        f"/api/v1/dead-letters/{dead.pk}/requeue/",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
        REMOTE_ADDR="198.51.100.4",
    )

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.api_key, entry.address) == (
        "dead_letter.requeue",
        f"key {key.prefix}… (triage bot)",
        key,
        "198.51.100.4",
    )
    assert entry.target == f"dead letters #{dead.pk}"


def test_the_audit_api_filters_and_exports_csv(client: Client, project: Project) -> None:
    client.post("/settings/", {"name": "Renamed"})
    client.post("/settings/keys/", {"label": "reader", "scopes": ["read"]})

    listed = client.get("/api/v1/audit/", {"action": "project.update"}).json()["results"]
    exported = client.get("/api/v1/audit/", {"format": "csv", "actor": "oliv"})

    assert [(e["action"], e["summary"], e["actor_type"]) for e in listed] == [
        ("project.update", "name: Settings → Renamed", "user")
    ]
    text = streamed(exported).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["action"] for r in rows] == ["key.create", "project.update"]
    assert set(rows[0]) >= {"at", "actor", "action", "target", "summary", "address"}


def test_the_audit_api_refuses_project_keys(project: Project) -> None:
    _, raw = ApiKey.generate(project, "everything", scopes=ApiKey.ALL_SCOPES.split())

    response = Client().get("/api/v1/audit/", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 403
    assert "not keys" in response.json()["error"]
