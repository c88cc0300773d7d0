"""seed_messages after seed_demo, both against the live server: the arena gains messages
(some dead-lettered) and a workflow per round, all sent through the ingest API."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from ingest.models import Message, Session, Step, Workflow


@pytest.mark.django_db(transaction=True)
def test_the_arena_gains_messages_dead_letters_and_round_workflows(
    live_server: Any, project_with_key: tuple[Any, str]
) -> None:
    _, key = project_with_key
    options = {"url": live_server.url, "api_key": key, "stdout": StringIO()}
    call_command("seed_demo", sessions=12, days=1, **options)
    out = StringIO()
    call_command("seed_messages", **{**options, "stdout": out})

    assert "0 rejected, 0 failed batches" in out.getvalue()
    sessions = Session.objects.all()
    with_messages = sessions.filter(agent_messages__isnull=False).distinct().count()
    assert with_messages == sessions.count()
    senders = set(Message.objects.values_list("sender", flat=True))
    assert {"target", "judge"} <= senders
    assert any(sender.startswith("attacker") for sender in senders)
    assert Message.objects.filter(status="processed").count() > Message.objects.count() * 0.8
    assert Message.objects.exclude(dead_letter_state="").exists()
    assert Message.objects.exclude(correlation_id="").exists()
    assert Workflow.objects.filter(name="arena round").count() >= 2 * sessions.count()
    assert Step.objects.filter(name="judge").exclude(depends_on=[]).exists()
