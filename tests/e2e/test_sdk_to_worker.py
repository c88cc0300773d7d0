"""The whole loop with real processes: the sdk client posts to the live server, a real Celery
worker (real Redis broker) rebuilds the session summary, and the API shows it."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from django.test import Client as DjangoClient

from ingest.models import ApiKey, Project, Session, TranscriptLine
from observatory_sdk import Client, StatusLineHandler, current_session
from tests.waiting import wait_until

pytestmark = pytest.mark.worker


def test_sdk_batch_is_summarised_by_a_real_worker(live_server: Any, celery_worker: Any) -> None:
    project = Project.objects.create(name="Loop", slug="loop")
    _, key = ApiKey.generate(project)
    client = Client(key, live_server.url, flush_interval=0.1)
    session_id = client.start_session(name="red team round", user_query="Break it")
    client.agent_created(session_id, "judge", "Judge", role="judge", init_params={"t": 0})
    with client.span(session_id, "action", "plan", agent_id="judge") as plan:
        client.event(
            session_id,
            "llm",
            "openai.chat",
            model="gpt-4o",
            prompt_tokens=100,
            completion_tokens=20,
            cost=0.01,
            parent_span_id=plan.span_id,
            started_at=time.time() - 1,
            ended_at=time.time(),
        )
    with pytest.raises(ValueError), client.span(session_id, "tool", "search"):
        raise ValueError("search index offline")

    logger = logging.getLogger("tool.search")
    logger.addHandler(StatusLineHandler(client))
    logger.setLevel(logging.INFO)
    with current_session(session_id):
        logger.info("Running tool SearchTool (current president of Taiwan)")
    client.message(session_id, "user", "Break it")
    client.end_session(session_id, "fail", reason="judge said no")
    assert client.flush(timeout=20)
    assert client.stats.rejected == 0

    def summarised() -> bool:
        return not Session.objects.get(external_id=session_id).is_summary_stale

    wait_until(summarised, what="the session summary written by the worker")
    session = Session.objects.get(external_id=session_id)
    assert (session.event_count, session.llm_count, session.tool_count) == (3, 1, 1)
    assert session.has_errors
    assert session.prompt_tokens == 100
    assert session.agent_names == ["Judge"]
    assert session.end_state == "fail"
    status = TranscriptLine.objects.get(session=session, role="tool")
    assert status.text == "Running tool SearchTool (current president of Taiwan)"
    client.close()

    api = DjangoClient(headers={"Authorization": f"Bearer {key}"})
    transcript = api.get(f"/api/v1/sessions/{session_id}/transcript/?roles=user,assistant")
    assert [line["role"] for line in _rows(transcript.json())] == ["user"]


def test_the_sweep_catches_up_when_no_task_was_queued(live_server: Any, celery_worker: Any) -> None:
    """A session left stale (as when the broker was down at ingest) is summarised by the beat
    sweep task; here the sweep is sent by hand instead of waiting for beat."""
    from analytics.tasks import sweep_stale_summaries_task

    project = Project.objects.create(name="Sweep", slug="sweep")
    session = Session.objects.create(project=project, external_id="s", is_summary_stale=True)
    sweep_stale_summaries_task.delay()
    wait_until(
        lambda: not Session.objects.get(pk=session.pk).is_summary_stale,
        what="the worker to refresh the stale summary",
    )


def _rows(payload: Any) -> list[dict[str, Any]]:
    return payload["results"] if isinstance(payload, dict) else payload
