"""The SDK's message and workflow helpers: the records they build, and a CAMEL-style role play
sent to the live server, then a dead letter requeued and fetched back with the poller."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from ingest.models import Message, Step, Workflow
from observatory_sdk import Client, TrackedMessage, WorkflowRun
from observatory_sdk.records import Record
from tests.waiting import DEADLINE

EXAMPLE = Path(__file__).resolve().parents[2] / "sdk" / "examples" / "camel_role_play.py"


def stages(records: list[Record]) -> list[str]:
    return [str(r.get("stage") or r["type"]) for r in records]


def test_a_tracked_message_records_each_stage_and_describes_itself_once() -> None:
    sent: list[Record] = []
    message = TrackedMessage(
        sent.append, "s1", "planner", ["coder"], {"task": "parse"}, channel="jobs"
    )
    message.created()
    with message.sending():
        pass
    message.delivered(agent_id="bus")
    with message.processing():
        pass
    assert stages(sent) == ["created", "sent", "delivered", "received", "processed"]
    assert sent[0]["content"] == {"task": "parse"}
    assert sent[0]["receivers"] == ["coder"]
    assert all("content" not in r and "sender" not in r for r in sent[1:])
    assert sent[3]["agent_id"] == "coder"
    assert len({r["message_id"] for r in sent}) == 1


def test_a_failing_block_records_failed_and_the_exception_goes_on() -> None:
    sent: list[Record] = []
    message = TrackedMessage(sent.append, "s1", "a", ["b"], "hi")
    with pytest.raises(TimeoutError), message.sending():
        raise TimeoutError("no ack")
    message.retried()
    message.dead_lettered("gave up", error_type="MaxRetries")
    assert stages(sent) == ["sent", "failed", "retried", "dead_lettered"]
    assert (sent[1]["error_type"], sent[1]["error_message"], sent[1]["attempt"]) == (
        "TimeoutError",
        "no ack",
        1,
    )
    assert sent[2]["attempt"] == 2
    reply = message.reply("ok")
    assert (reply.sender, reply.receivers) == ("b", ["a"])
    reply.created()
    assert (sent[-1]["correlation_id"], sent[-1]["causation_id"]) == (message.message_id,) * 2


def test_workflow_runs_and_steps_record_start_end_and_dependencies() -> None:
    sent: list[Record] = []
    with pytest.raises(ValueError), WorkflowRun(sent.append, "s1", "report") as run:
        with run.step("plan", agent_id="planner") as plan:
            plan.result = "3 parts"
        with run.step("write", agent_id="writer", depends_on=[plan]):
            raise ValueError("writer's block")
    assert stages(sent) == [
        "workflow.start",
        "step.start",
        "step.end",
        "step.start",
        "step.end",
        "workflow.end",
    ]
    assert sent[2]["result_summary"] == "3 parts"
    assert sent[3]["depends_on"] == [plan.step_id]
    assert (sent[4]["status"], sent[4]["error_type"]) == ("error", "ValueError")
    assert (sent[5]["status"], sent[5]["result_summary"]) == ("fail", "ValueError: writer's block")


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("camel_role_play", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["camel_role_play"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db(transaction=True)
def test_the_camel_example_is_recorded_and_its_dead_letter_comes_back_through_the_poller(
    live_server: Any, project_with_key: tuple[Any, str]
) -> None:
    _, key = project_with_key
    example = load_example()
    with Client(key, live_server.url, flush_interval=0.05) as client:
        session_id = example.role_play(client)
        assert client.flush(timeout=DEADLINE)
        assert client.stats.rejected == 0
        poller = client.requeue_poller()

    messages = Message.objects.filter(session__external_id=session_id)
    assert messages.count() == 10  # the task, 4 instructions, 4 solutions, the closing message
    assert messages.filter(status="processed").count() == 9
    retried = messages.get(retry_count=1)
    assert (retried.attempt_count, retried.status, retried.dead_letter_state) == (
        2,
        "processed",
        "recovered",
    )
    dead = messages.get(status="dead_lettered")
    assert dead.preview == example.DONE
    answers = messages.exclude(correlation_id="")
    assert answers.count() == 5
    workflow = Workflow.objects.get(session__external_id=session_id)
    assert (workflow.name, workflow.status) == ("camel role play", "success")
    assert Step.objects.filter(workflow=workflow).count() == 5

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.post(f"/api/v1/dead-letters/{dead.pk}/requeue/").json()["changed"] == 1
    [polled] = poller.poll()
    assert (polled["message_id"], polled["content"]) == (dead.message_id, example.DONE)
    assert poller.poll() == []
    poller.close()
