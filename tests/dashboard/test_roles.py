"""Every write path, page POST and API, tried by a member of each role: the ones below the
action's role get a 403 naming the role and change nothing; the others get their change.

The table of who may do what is docs/access.md; this matrix is its test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from analytics.models import AlertRule, Anomaly, Report, ReportSchedule
from ingest.access import MINIMUM_ROLE, RANK, Action, may, membership_action
from ingest.models import (
    ApiKey,
    AuditEntry,
    IngestRejection,
    Membership,
    Message,
    MessageMappingRule,
    ModelPrice,
    Project,
    Score,
    Session,
)
from tests.builders import (
    make_alert_rule,
    make_anomaly,
    make_message,
    make_project,
    make_rejection,
    make_session,
    make_user,
)

ROLES = [Membership.Role.VIEWER, Membership.Role.MEMBER, Membership.Role.ADMIN, "owner"]
VALID_RAW = json.dumps(
    {
        "type": "session.start",
        "id": "replayed-1",
        "session_id": "replayed",
        "started_at": "2026-11-20T10:00:00Z",
    }
)


@dataclass(frozen=True)
class WritePath:
    """One way to change something: what it needs, how to do it, and how to see it happened."""

    action: Action
    send: Callable[[Client, dict[str, Any]], Any]
    changed: Callable[[dict[str, Any]], bool]


def _state(message: Message) -> str:
    message.refresh_from_db()
    return message.dead_letter_state


def _rejection_changed(things: dict[str, Any]) -> bool:
    return IngestRejection.objects.get(pk=things["rejection"].pk).is_resolved


def _api(client: Client, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(path, json.dumps(body or {}), content_type="application/json")


def _role_of(things: dict[str, Any], name: str) -> str | None:
    found = Membership.objects.filter(project=things["project"], user=things[name]).first()
    return None if found is None else found.role


def _project(things: dict[str, Any]) -> Project:
    return Project.objects.get(pk=things["project"].pk)


PRICE = {"model": "house-model", "input_per_million": 1.5, "output_per_million": 6}
RULE = {
    "name": "bus posts",
    "sender_attribute": "bus.from",
    "receiver_attribute": "bus.to",
    "form": "rule",
}


WRITE_PATHS: dict[str, WritePath] = {
    "page: anomaly status": WritePath(
        Action.SET_ANOMALY_STATUS,
        lambda c, t: c.post(f"/anomalies/{t['anomaly'].pk}/status/", {"status": "resolved"}),
        lambda t: Anomaly.objects.get(pk=t["anomaly"].pk).status == "resolved",
    ),
    "api: anomaly status": WritePath(
        Action.SET_ANOMALY_STATUS,
        lambda c, t: _api(
            c, f"/api/v1/anomalies/{t['anomaly'].pk}/status/", {"status": "resolved"}
        ),
        lambda t: Anomaly.objects.get(pk=t["anomaly"].pk).status == "resolved",
    ),
    "page: requeue a dead letter": WritePath(
        Action.REQUEUE_DEAD_LETTERS,
        lambda c, t: c.post("/dead-letters/action/", {"one": t["dead"].pk}),
        lambda t: _state(t["dead"]) == "requeued",
    ),
    "page: resolve dead letters": WritePath(
        Action.RESOLVE_DEAD_LETTERS,
        lambda c, t: c.post("/dead-letters/action/", {"ids": [t["dead"].pk], "action": "resolve"}),
        lambda t: _state(t["dead"]) == "resolved",
    ),
    "api: requeue a dead letter": WritePath(
        Action.REQUEUE_DEAD_LETTERS,
        lambda c, t: _api(c, f"/api/v1/dead-letters/{t['dead'].pk}/requeue/"),
        lambda t: _state(t["dead"]) == "requeued",
    ),
    "api: resolve a dead letter": WritePath(
        Action.RESOLVE_DEAD_LETTERS,
        lambda c, t: _api(c, f"/api/v1/dead-letters/{t['dead'].pk}/resolve/"),
        lambda t: _state(t["dead"]) == "resolved",
    ),
    "api: requeue many": WritePath(
        Action.REQUEUE_DEAD_LETTERS,
        lambda c, t: _api(c, "/api/v1/dead-letters/requeue/", {"ids": [t["dead"].pk]}),
        lambda t: _state(t["dead"]) == "requeued",
    ),
    "api: resolve many": WritePath(
        Action.RESOLVE_DEAD_LETTERS,
        lambda c, t: _api(c, "/api/v1/dead-letters/resolve/", {"ids": [t["dead"].pk]}),
        lambda t: _state(t["dead"]) == "resolved",
    ),
    "page: replay a problem as received": WritePath(
        Action.REPLAY_PROBLEM,
        lambda c, t: c.post(f"/ingest-problems/{t['rejection'].pk}/replay/"),
        _rejection_changed,
    ),
    "page: replay selected problems": WritePath(
        Action.REPLAY_PROBLEM,
        lambda c, t: c.post("/ingest-problems/replay/", {"ids": [t["rejection"].pk]}),
        _rejection_changed,
    ),
    "page: replay a problem with edited text": WritePath(
        Action.REPLAY_EDITED_PROBLEM,
        lambda c, t: c.post(
            f"/ingest-problems/{t['rejection'].pk}/replay/",
            {"raw": VALID_RAW.replace("replayed-1", "typed-by-hand")},
        ),
        _rejection_changed,
    ),
    "page: make a report now": WritePath(
        Action.MAKE_REPORT,
        lambda c, t: c.post("/reports/make/", {"period": "daily"}),
        lambda t: Report.objects.filter(project=t["project"]).exists(),
    ),
    "page: create an alert rule": WritePath(
        Action.EDIT_ALERT_RULES,
        lambda c, t: c.post(
            "/alerts/",
            {
                "name": "Slow search",
                "kind": "metric",
                "metric": "latency_p95_ms",
                "window_minutes": 15,
                "comparator": ">",
                "threshold": 2000,
                "channel": "slack",
                "target": "https://hooks.example.com/x",
                "renotify_minutes": 60,
                "is_enabled": "on",
            },
        ),
        lambda t: AlertRule.objects.filter(name="Slow search").exists(),
    ),
    "page: disable an alert rule": WritePath(
        Action.EDIT_ALERT_RULES,
        lambda c, t: c.post(f"/alerts/{t['rule'].pk}/action/", {"action": "toggle"}),
        lambda t: not AlertRule.objects.get(pk=t["rule"].pk).is_enabled,
    ),
    "page: delete an alert rule": WritePath(
        Action.EDIT_ALERT_RULES,
        lambda c, t: c.post(f"/alerts/{t['rule'].pk}/action/", {"action": "delete"}),
        lambda t: not AlertRule.objects.filter(pk=t["rule"].pk).exists(),
    ),
    "page: test an alert rule": WritePath(
        Action.EDIT_ALERT_RULES,
        lambda c, t: c.post(f"/alerts/{t['rule'].pk}/action/", {"action": "test"}),
        lambda t: t["rule"].events.exists(),
    ),
    "page: change the report recipients": WritePath(
        Action.EDIT_REPORT_SCHEDULE,
        lambda c, t: c.post("/reports/", {"is_daily": "on", "email_to": "ops@example.com"}),
        lambda t: ReportSchedule.objects.filter(email_to="ops@example.com").exists(),
    ),
    "page: rename the project": WritePath(
        Action.EDIT_PROJECT_SETTINGS,
        lambda c, t: c.post("/settings/?project=roles", {"name": "Renamed"}),
        lambda t: _project(t).name == "Renamed",
    ),
    "page: add a viewer": WritePath(
        Action.MANAGE_MEMBERS,
        lambda c, t: c.post(
            "/settings/members/?project=roles", {"user": "newcomer", "role": "viewer"}
        ),
        lambda t: _role_of(t, "newcomer") == "viewer",
    ),
    "page: add an owner": WritePath(
        Action.MANAGE_ADMINS,
        lambda c, t: c.post(
            "/settings/members/?project=roles", {"user": "newcomer", "role": "owner"}
        ),
        lambda t: _role_of(t, "newcomer") == "owner",
    ),
    "page: make a viewer a member": WritePath(
        Action.MANAGE_MEMBERS,
        lambda c, t: c.post(f"/settings/members/{t['viewer_membership'].pk}/", {"role": "member"}),
        lambda t: _role_of(t, "bystander") == "member",
    ),
    "page: make a viewer an admin": WritePath(
        Action.MANAGE_ADMINS,
        lambda c, t: c.post(f"/settings/members/{t['viewer_membership'].pk}/", {"role": "admin"}),
        lambda t: _role_of(t, "bystander") == "admin",
    ),
    "page: remove a viewer": WritePath(
        Action.MANAGE_MEMBERS,
        lambda c, t: c.post(f"/settings/members/{t['viewer_membership'].pk}/", {"remove": "1"}),
        lambda t: _role_of(t, "bystander") is None,
    ),
    "page: remove an admin": WritePath(
        Action.MANAGE_ADMINS,
        lambda c, t: c.post(f"/settings/members/{t['admin_membership'].pk}/", {"remove": "1"}),
        lambda t: _role_of(t, "other_admin") is None,
    ),
    "page: create an API key": WritePath(
        Action.MANAGE_KEYS,
        lambda c, t: c.post(
            "/settings/keys/?project=roles", {"label": "new agent", "scopes": ["ingest"]}
        ),
        lambda t: ApiKey.objects.filter(name="new agent").exists(),
    ),
    "page: revoke an API key": WritePath(
        Action.MANAGE_KEYS,
        lambda c, t: c.post(f"/settings/keys/{t['key'].pk}/revoke/"),
        lambda t: ApiKey.objects.get(pk=t["key"].pk).revoked_at is not None,
    ),
    "page: save a price override": WritePath(
        Action.EDIT_PROJECT_SETTINGS,
        lambda c, t: c.post("/settings/prices/?project=roles", PRICE),
        lambda t: ModelPrice.objects.filter(model="house-model").exists(),
    ),
    "page: delete a price override": WritePath(
        Action.EDIT_PROJECT_SETTINGS,
        lambda c, t: c.post(f"/settings/prices/{t['price'].pk}/delete/"),
        lambda t: not ModelPrice.objects.filter(pk=t["price"].pk).exists(),
    ),
    "page: set the session attributes": WritePath(
        Action.EDIT_PROJECT_SETTINGS,
        lambda c, t: c.post(
            "/settings/mapping/?project=roles",
            {"form": "session", "session_attributes": "conversation.key"},
        ),
        lambda t: _project(t).session_attributes == "conversation.key",
    ),
    "page: save a message mapping rule": WritePath(
        Action.EDIT_PROJECT_SETTINGS,
        lambda c, t: c.post("/settings/mapping/?project=roles", RULE),
        lambda t: MessageMappingRule.objects.filter(name="bus posts").exists(),
    ),
    "page: delete a message mapping rule": WritePath(
        Action.EDIT_PROJECT_SETTINGS,
        lambda c, t: c.post(f"/settings/mapping/rules/{t['message_rule'].pk}/delete/"),
        lambda t: not MessageMappingRule.objects.filter(pk=t["message_rule"].pk).exists(),
    ),
    "page: set the requeue webhook": WritePath(
        Action.EDIT_PROJECT_SETTINGS,
        lambda c, t: c.post(
            "/settings/channels/?project=roles",
            {"requeue_webhook_url": "https://hooks.example.com/requeued"},
        ),
        lambda t: _project(t).requeue_webhook_url == "https://hooks.example.com/requeued",
    ),
    "page: make a new requeue webhook secret": WritePath(
        Action.EDIT_PROJECT_SETTINGS,
        lambda c, t: c.post("/settings/channels/?project=roles", {"form": "rotate-secret"}),
        lambda t: _project(t).requeue_webhook_secret != t["webhook_secret"],
    ),
    "page: thumbs a session down": WritePath(
        Action.SCORE_SESSIONS,
        lambda c, t: c.post(f"/sessions/{t['session'].pk}/scores/", {"thumb": "down"}),
        lambda t: Score.objects.filter(session=t["session"], label="false").exists(),
    ),
    "page: score a span": WritePath(
        Action.SCORE_SESSIONS,
        lambda c, t: c.post(
            f"/sessions/{t['session'].pk}/scores/",
            {"span": t["session"].spans.first().pk, "name": "rating", "value": "4"},
        ),
        lambda t: Score.objects.filter(session=t["session"], value=4).exclude(span_id="").exists(),
    ),
    "api: post a score": WritePath(
        Action.SCORE_SESSIONS,
        lambda c, t: _api(
            c,
            "/api/v1/scores/?project=roles",
            {"session_id": t["session"].external_id, "name": "judge", "value": 0.5},
        ),
        lambda t: Score.objects.filter(session=t["session"], name="judge").exists(),
    ),
    "page: delete a session": WritePath(
        Action.DELETE_SESSION,
        lambda c, t: c.post(f"/sessions/{t['doomed'].pk}/delete/"),
        lambda t: not Session.objects.filter(pk=t["doomed"].pk).exists(),
    ),
    "api: delete a session": WritePath(
        Action.DELETE_SESSION,
        lambda c, t: c.delete(f"/api/v1/sessions/{t['doomed'].external_id}/"),
        lambda t: not Session.objects.filter(pk=t["doomed"].pk).exists(),
    ),
    "page: set the retention": WritePath(
        Action.EDIT_DATA_LIFECYCLE,
        lambda c, t: c.post(
            "/settings/lifecycle/?project=roles",
            {"form": "retention", "raw_retention_days": 30, "derived_retention_days": 400},
        ),
        lambda t: _project(t).raw_retention_days == 30,
    ),
    "page: turn redaction on": WritePath(
        Action.EDIT_DATA_LIFECYCLE,
        lambda c, t: c.post(
            "/settings/lifecycle/?project=roles",
            {"form": "redaction", "is_redaction_enabled": "on", "redaction_detectors": ["email"]},
        ),
        lambda t: _project(t).is_redaction_enabled,
    ),
    "page: erase a user's sessions": WritePath(
        Action.REQUEST_ERASURE,
        lambda c, t: c.post(
            "/settings/lifecycle/?project=roles",
            {"form": "erasure", "kind": "user_id", "value": "u-1", "confirm": "on"},
        ),
        lambda t: not Session.objects.filter(pk=t["doomed"].pk).exists(),
    ),
    "api: erase a tag's sessions": WritePath(
        Action.REQUEST_ERASURE,
        lambda c, t: _api(c, "/api/v1/erasures/", {"kind": "tag", "value": "erase-me"}),
        lambda t: not Session.objects.filter(pk=t["doomed"].pk).exists(),
    ),
}


@pytest.fixture
def things(db: None) -> dict[str, Any]:
    project, _ = make_project(name="Roles")
    session = make_session(project)
    rejection = make_rejection(project, raw=VALID_RAW)
    bystander, other_admin = _person("bystander"), _person("other-admin")
    return {
        "project": project,
        "session": session,
        "anomaly": make_anomaly(project),
        "dead": make_message(session, status="dead_lettered"),
        "rejection": rejection,
        "rule": make_alert_rule(project),
        "newcomer": _person("newcomer"),
        "bystander": bystander,
        "other_admin": other_admin,
        "viewer_membership": Membership.objects.create(
            user=bystander, project=project, role="viewer"
        ),
        "admin_membership": Membership.objects.create(
            user=other_admin, project=project, role="admin"
        ),
        "key": ApiKey.objects.get(project=project),
        "price": ModelPrice.objects.create(
            project=project, model="old-model", input_per_million=1, output_per_million=2
        ),
        "message_rule": MessageMappingRule.objects.create(
            project=project, name="old rule", sender_attribute="a", receiver_attribute="b"
        ),
        "webhook_secret": project.requeue_webhook_secret,
        "doomed": make_session(project, metadata={"user_id": "u-1"}, tags=["erase-me"]),
    }


def _person(username: str) -> Any:
    """A user without a password (no hashing: these clients log in with force_login)."""
    return get_user_model().objects.create(username=username)


def _member_client(project: Project, role: str) -> Client:
    user = _person(f"user-{role}")
    Membership.objects.create(user=user, project=project, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", list(WRITE_PATHS))
def test_each_write_path_is_open_to_its_roles_and_refused_to_the_others(
    things: dict[str, Any], path: str, role: str
) -> None:
    write = WRITE_PATHS[path]
    client = _member_client(things["project"], role)

    response = write.send(client, things)

    entries = AuditEntry.objects.filter(project=things["project"], actor=f"user-{role}")
    if may(role, write.action):
        assert response.status_code in (200, 302), response.content[:300]
        assert write.changed(things), f"{role} may {write.action}, but nothing changed"
        assert [e.address for e in entries] == ["127.0.0.1"], "one audit entry per change"
    else:
        assert response.status_code == 403
        text = response.content.decode()
        assert f"need the role {MINIMUM_ROLE[write.action]} or higher" in text
        assert f"you are {role}" in text
        assert not write.changed(things), f"{role} was refused, yet the change was made"
        assert not entries.exists()


@pytest.mark.parametrize("role", ROLES)
def test_the_audit_log_is_read_by_admins_and_owners_only(things: dict[str, Any], role: str) -> None:
    AuditEntry.objects.create(
        project=things["project"], actor="someone", action="project.update", target="project"
    )
    client = _member_client(things["project"], role)

    page = client.get("/audit/?project=roles")
    listed = client.get("/api/v1/audit/").json()["results"]

    if may(role, Action.READ_AUDIT_LOG):
        assert page.status_code == 200
        assert "project.update" in page.content.decode()
        assert [e["actor"] for e in listed] == ["someone"]
    else:
        assert page.status_code == 403
        assert listed == []


def test_a_non_member_cannot_find_what_to_change(things: dict[str, Any]) -> None:
    outsider = make_user(username="outsider")
    make_project(name="Elsewhere", user=outsider, role="owner")
    client = Client()
    client.force_login(outsider)

    response = client.post(f"/anomalies/{things['anomaly'].pk}/status/", {"status": "resolved"})

    assert response.status_code == 404
    assert Anomaly.objects.get(pk=things["anomaly"].pk).status == "open"


@pytest.mark.parametrize(
    ("old", "new", "action"),
    [
        (None, "viewer", Action.MANAGE_MEMBERS),
        ("viewer", "member", Action.MANAGE_MEMBERS),
        ("member", None, Action.MANAGE_MEMBERS),
        (None, "admin", Action.MANAGE_ADMINS),
        ("member", "owner", Action.MANAGE_ADMINS),
        ("admin", "viewer", Action.MANAGE_ADMINS),
        ("owner", None, Action.MANAGE_ADMINS),
    ],
)
def test_touching_an_admin_or_owner_membership_is_for_owners(
    old: str | None, new: str | None, action: Action
) -> None:
    assert membership_action(old, new) == action


def test_every_action_has_a_role_and_the_roles_are_ordered() -> None:
    assert set(MINIMUM_ROLE) == set(Action)
    assert [RANK[Membership.Role(role)] for role in ROLES] == [0, 1, 2, 3]
    assert not may(None, Action.SET_ANOMALY_STATUS)
    assert may("owner", Action.EDIT_ALERT_RULES) and not may("member", Action.EDIT_ALERT_RULES)


def test_the_edit_form_never_shows_a_webhook_secret_and_a_blank_one_keeps_it(
    things: dict[str, Any],
) -> None:
    rule = things["rule"]
    viewer = _member_client(things["project"], "viewer")
    admin = _member_client(things["project"], "admin")

    page = viewer.get("/alerts/", {"edit": rule.pk})
    saved = admin.post(
        f"/alerts/?edit={rule.pk}",
        {
            "name": "Renamed",
            "kind": "metric",
            "metric": "error_rate",
            "window_minutes": 60,
            "comparator": ">",
            "threshold": 0.5,
            "channel": "webhook",
            "target": rule.target,
            "secret": "",
            "renotify_minutes": 60,
            "is_enabled": "on",
        },
    )

    assert page.status_code == 200
    assert rule.secret not in page.content.decode()
    assert saved.status_code == 302
    rule.refresh_from_db()
    assert (rule.name, rule.secret) == ("Renamed", "s3cret")
