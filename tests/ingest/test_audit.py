"""The audit log's helpers: before/after diffs and their one-line summary (pure), and record()
naming a person or a key and the address the request came from."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from api.authentication import ApiKeyUser
from ingest import audit
from ingest.models import ApiKey, AuditEntry
from tests.builders import make_project


def test_a_diff_keeps_only_the_fields_that_changed() -> None:
    changes = audit.diff({"name": "Ops", "role": "viewer"}, {"name": "Ops", "role": "admin"})

    assert changes == {"role": ["viewer", "admin"]}


def test_a_field_on_one_side_only_is_none_on_the_other() -> None:
    assert audit.diff({}, {"label": "agent"}) == {"label": [None, "agent"]}
    assert audit.diff({"input": 1.5}, {}) == {"input": [1.5, None]}


def test_a_changed_secret_is_recorded_without_its_values() -> None:
    changes = audit.diff({"secret": "old-s3cret"}, {"secret": "new-s3cret"}, secrets=["secret"])

    assert changes == {"secret": ["(changed)", "(changed)"]}
    assert "s3cret" not in audit.change_summary(changes)


def test_an_unchanged_secret_is_not_mentioned() -> None:
    assert audit.diff({"secret": "x"}, {"secret": "x"}, secrets=["secret"]) == {}


def test_the_summary_reads_field_by_field() -> None:
    summary = audit.change_summary(
        {"role": ["viewer", "admin"], "name": ["", "Ops"], "scopes": [None, ["ingest", "read"]]}
    )

    assert summary == 'role: viewer → admin; name: "" → Ops; scopes: none → ingest, read'


@pytest.fixture
def project(db: None) -> Any:
    return make_project(name="Audited")[0]


def test_an_entry_names_the_person_and_their_address(project: Any) -> None:
    request = RequestFactory().post("/settings/", REMOTE_ADDR="203.0.113.7")
    request.user = get_user_model().objects.create(username="carol")

    entry = audit.record(
        request,
        AuditEntry.Action.PROJECT_UPDATE,
        project_id=project.pk,
        target="project",
        changes={"name": ["Audited", "Renamed"]},
    )

    entry.refresh_from_db()
    assert (entry.actor, entry.user, entry.api_key, entry.address) == (
        "carol",
        request.user,
        None,
        "203.0.113.7",
    )
    assert entry.changes == {"name": ["Audited", "Renamed"]}


def test_an_entry_names_the_key_by_prefix_and_label(project: Any) -> None:
    key, _ = ApiKey.generate(project, "triage bot", scopes=["actions"])
    request = RequestFactory().post("/api/v1/dead-letters/1/requeue/", REMOTE_ADDR="::1")
    request.user = ApiKeyUser(project, key)

    entry = audit.record(
        request, AuditEntry.Action.DEAD_LETTER_REQUEUE, project_id=project.pk, target="#1"
    )

    assert entry.actor == f"key {key.prefix}… (triage bot)"
    assert (entry.api_key, entry.user, entry.address) == (key, None, "::1")


def test_a_change_to_rows_of_two_projects_is_one_entry_in_each(project: Any) -> None:
    other = make_project(name="Other")[0]
    request = RequestFactory().post("/dead-letters/action/")
    request.user = get_user_model().objects.create(username="dave")

    audit.record_per_project(
        request,
        AuditEntry.Action.DEAD_LETTER_RESOLVE,
        [(9, project.pk), (4, other.pk), (5, project.pk)],
        noun="dead letters",
    )

    targets = dict(AuditEntry.objects.values_list("project_id", "target"))
    assert targets == {project.pk: "dead letters #5, #9", other.pk: "dead letters #4"}
