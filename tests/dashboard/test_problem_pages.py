"""The ingest problems page through Django's test client: listing, and replaying as stored or
edited."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

import ingest.store
from ingest.models import IngestRejection, Session
from tests.dashboard.conftest import SCRIPT, make_rejection

pytestmark = pytest.mark.django_db

PROBLEMS = reverse("dashboard:ingest-problems")
has_replay = pytest.mark.skipif(
    not hasattr(ingest.store, "replay_rejection"), reason="ingest.store.replay_rejection not yet"
)


def test_ingest_problems_lists_open_ones_by_default_with_their_raw_record(
    logged_in: Client, project: Any
) -> None:
    open_one = make_rejection(project, raw=json.dumps({"type": "event", "name": SCRIPT}))
    solved = make_rejection(project, raw='{"type": "x"}', message="solved one")
    IngestRejection.objects.filter(pk=solved.pk).update(is_resolved=True)

    default = logged_in.get(PROBLEMS)
    resolved = logged_in.get(PROBLEMS, {"state": "resolved"})
    everything = logged_in.get(PROBLEMS, {"state": "all"})

    assert [r.pk for r in default.context["rejections"]] == [open_one.pk]
    assert [r.pk for r in resolved.context["rejections"]] == [solved.pk]
    assert len(everything.context["rejections"]) == 2
    html = default.content.decode()
    assert SCRIPT not in html
    assert "&quot;name&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in html
    assert f'action="/ingest-problems/{open_one.pk}/replay/"' in html


def test_replay_only_accepts_post(logged_in: Client, project: Any) -> None:
    rejection = make_rejection(project, raw="{}")

    response = logged_in.get(reverse("dashboard:rejection-replay", args=[rejection.pk]))

    assert response.status_code == 405


@has_replay
def test_an_edited_record_replays_and_resolves_the_problem(logged_in: Client, project: Any) -> None:
    bad = {"type": "session.start", "id": "r1", "session_id": "fixed", "started_at": "yesterday"}
    rejection = make_rejection(project, raw=json.dumps(bad))
    fixed = json.dumps(bad | {"started_at": "2026-11-21T10:00:00Z"})
    url = reverse("dashboard:rejection-replay", args=[rejection.pk])

    response = logged_in.post(url, {"raw": fixed, "state": "unresolved"}, follow=True)

    rejection.refresh_from_db()
    assert rejection.is_resolved and rejection.raw == fixed
    assert Session.objects.filter(project=project, external_id="fixed").exists()
    assert response.redirect_chain[-1][0] == f"{PROBLEMS}?state=unresolved"
    assert f"Problem #{rejection.pk} replayed" in response.content.decode()


@has_replay
def test_a_record_that_still_fails_stays_open_with_the_new_reason(
    logged_in: Client, project: Any
) -> None:
    rejection = make_rejection(project, raw='{"type": "session.start"}')
    url = reverse("dashboard:rejection-replay", args=[rejection.pk])

    response = logged_in.post(url, {"raw": "{not json"}, follow=True)

    rejection.refresh_from_db()
    assert not rejection.is_resolved
    assert "still fails: Not valid JSON" in response.content.decode()


@has_replay
def test_replay_selected_replays_each_chosen_problem_as_stored(
    logged_in: Client, project: Any
) -> None:
    good = make_rejection(
        project,
        raw=json.dumps(
            {
                "type": "session.start",
                "id": "r9",
                "session_id": "s9",
                "started_at": "2026-11-21T10:00:00Z",
            }
        ),
    )
    bad = make_rejection(project, raw='{"type": "nonsense"}')
    untouched = make_rejection(project, raw='{"type": "also nonsense"}')

    response = logged_in.post(
        reverse("dashboard:rejection-replay-selected"),
        {"ids": [good.pk, bad.pk], "state": "all"},
        follow=True,
    )

    states = dict(IngestRejection.objects.values_list("pk", "is_resolved"))
    assert states == {good.pk: True, bad.pk: False, untouched.pk: False}
    html = response.content.decode()
    assert "1 problem(s) replayed." in html and "1 still fail" in html
    assert response.redirect_chain[-1][0] == f"{PROBLEMS}?state=all"
