"""The SDK's score helper: the record it builds, and scores sent to the live server, one of them
changed by scoring again with its id."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.models import Score
from observatory_sdk import Client, records
from observatory_sdk.records import score_record
from tests.waiting import DEADLINE


def test_a_score_record_carries_its_value_and_refuses_an_unknown_source() -> None:
    record = score_record("s1", "judge", 0.5, span_id="e1", comment="meh", source="eval")
    assert {k: record[k] for k in ("type", "session_id", "name", "value", "span_id", "source")} == {
        "type": "score",
        "session_id": "s1",
        "name": "judge",
        "value": 0.5,
        "span_id": "e1",
        "source": "eval",
    }
    with pytest.raises(ValueError, match="source must be one of api, human, eval"):
        score_record("s1", "judge", 1, source="robot")


def test_a_test_result_record_takes_scores_as_a_mapping() -> None:
    record = records.test_result_record("run", "t", "pass", scores={"judge": 0.9, "correct": True})
    assert record["scores"] == [
        {"name": "judge", "value": 0.9},
        {"name": "correct", "value": True},
    ]


def test_scores_sent_by_the_client_are_stored_and_a_rescore_changes_one(
    live_server: Any, project_with_key: tuple[Any, str]
) -> None:
    project, key = project_with_key
    client = Client(key, live_server.url, flush_interval=0.1)
    session_id = client.start_session(name="support chat")
    span_id = client.event(session_id, "llm", "chat", model="gpt-4o")
    judge_id = client.score(session_id, "judge", 0.4, span_id=span_id, source="eval")
    client.score(session_id, "resolved", False, comment="customer wrote back")
    client.score(session_id, "tone", "polite")
    assert client.flush(timeout=DEADLINE)
    client.score(session_id, "judge", 0.9, span_id=span_id, source="eval", score_id=judge_id)
    assert client.close(timeout=DEADLINE)
    assert client.stats.rejected == 0

    stored = {s.name: s for s in Score.objects.filter(project=project)}
    assert sorted(stored) == ["judge", "resolved", "tone"]
    assert (stored["judge"].value, stored["judge"].span_id) == (0.9, span_id)
    assert (stored["resolved"].data_type, stored["resolved"].label) == ("boolean", "false")
    assert stored["resolved"].comment == "customer wrote back"
    assert (stored["tone"].data_type, stored["tone"].label) == ("categorical", "polite")
    assert {s.session.external_id for s in stored.values()} == {session_id}
