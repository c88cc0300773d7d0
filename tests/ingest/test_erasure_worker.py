"""A big erasure request runs on a real Celery worker (Redis broker, PostgreSQL): the API
answers 202 at once, and the worker deletes the sessions, marks the request done and writes
the audit entry."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from ingest.models import AuditEntry, ErasureRequest, Membership, Session
from tests.builders import make_project, make_session, make_user
from tests.waiting import wait_until

pytestmark = pytest.mark.worker


def test_an_erasure_too_big_for_the_request_is_done_by_the_worker(
    celery_worker: Any, settings: Any
) -> None:
    settings.OBSERVATORY_ERASE_INLINE_SESSIONS = 2
    user = make_user(username="erin")
    project, _ = make_project(name="Erase", user=user, role=Membership.Role.OWNER)
    doomed = [make_session(project, metadata={"user_id": "u-9"}) for _ in range(3)]
    kept = make_session(project, metadata={"user_id": "u-10"})
    client = Client()
    client.force_login(user)

    answer = client.post(
        "/api/v1/erasures/", {"kind": "user_id", "value": "u-9"}, content_type="application/json"
    )

    assert answer.status_code == 202, answer.content
    assert answer.json()["session_count"] == len(doomed)
    wait_until(lambda: ErasureRequest.objects.get().status == "done", what="the erasure done")
    assert list(Session.objects.values_list("pk", flat=True)) == [kept.pk]
    assert ErasureRequest.objects.get().value == ""
    done = AuditEntry.objects.get(action="erasure.done")
    assert done.actor == "erin (background)"
    assert done.changes == {"sessions": [None, 3]}
