"""The batching client against a stand-in ingest server: retries, refusals, flushing, spans."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from observatory_sdk import Client
from tests.sdk.conftest import Answer, FakeIngest
from tests.waiting import DEADLINE

OVERLOADED = Answer(503, {"error": "database is busy"})


def fast_client(url: str, **options: float) -> Client:
    settings: dict[str, float] = {"backoff_base": 0.01, "backoff_max": 0.05, "flush_interval": 3600}
    return Client("obs_test", url, **{**settings, **options})  # type: ignore[arg-type]


def test_it_retries_on_503_and_then_succeeds(fake_ingest: FakeIngest, client: Client) -> None:
    fake_ingest.script = [OVERLOADED, OVERLOADED]
    session_id = client.start_session(name="retried")
    client.end_session(session_id)

    assert client.flush(timeout=DEADLINE)

    assert len(fake_ingest.requests) == 3
    first, _, last = fake_ingest.requests
    assert first.records == last.records  # Same record ids: the server can tell a retry.
    assert client.stats.sent == 2
    assert client.stats.failed_batches == 0


def test_it_retries_on_429(fake_ingest: FakeIngest, client: Client) -> None:
    fake_ingest.script = [Answer(429, {"error": "slow down"})]
    client.metric("cpu_percent", 12.5)

    assert client.flush(timeout=DEADLINE)

    assert len(fake_ingest.requests) == 2
    assert client.stats.sent == 1


def test_it_does_not_retry_a_400_and_logs_the_server_error(
    fake_ingest: FakeIngest, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    fake_ingest.script = [Answer(400, {"error": "Body is not JSON", "field": "body"})]
    client.metric("cpu_percent", 12.5)

    with caplog.at_level(logging.ERROR, logger="observatory_sdk"):
        assert client.flush(timeout=DEADLINE)

    assert len(fake_ingest.requests) == 1
    assert client.stats.failed_batches == 1
    assert client.stats.sent == 0
    assert "HTTP 400: Body is not JSON (field body)" in caplog.text
    assert client.stats.last_error == "HTTP 400: Body is not JSON (field body)"


def test_it_does_not_retry_a_401(fake_ingest: FakeIngest, client: Client) -> None:
    fake_ingest.script = [Answer(401, {"error": "Unknown API key", "field": "Authorization"})]
    client.metric("cpu_percent", 12.5)

    assert client.flush(timeout=DEADLINE)

    assert len(fake_ingest.requests) == 1
    assert "Unknown API key" in client.stats.last_error


def test_it_gives_up_after_max_retries(fake_ingest: FakeIngest) -> None:
    fake_ingest.script = [OVERLOADED] * 10
    client = fast_client(fake_ingest.url, max_retries=2)
    client.metric("cpu_percent", 12.5)

    assert client.flush(timeout=DEADLINE)
    client.close(timeout=DEADLINE)

    assert len(fake_ingest.requests) == 3
    assert client.stats.failed_batches == 1
    assert "gave up after 3 attempts: HTTP 503: database is busy" in client.stats.last_error


def test_it_retries_when_the_connection_is_refused_and_then_gives_up() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = fast_client(f"http://127.0.0.1:{port}", max_retries=2)
    client.metric("cpu_percent", 12.5)

    assert client.flush(timeout=DEADLINE)
    client.close(timeout=DEADLINE)

    assert client.stats.failed_batches == 1
    assert "gave up after 3 attempts: ConnectionError" in client.stats.last_error


def test_per_record_errors_are_logged_with_their_field_path(
    fake_ingest: FakeIngest, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    error = "records[1].value: not a number: 'lots'"
    fake_ingest.script = [
        Answer(
            200,
            {
                "accepted": 1,
                "duplicates": 0,
                "rejected": 1,
                "results": [
                    {"index": 0, "id": "m1", "status": "accepted"},
                    {
                        "index": 1,
                        "id": "m2",
                        "status": "error",
                        "field": "records[1].value",
                        "error": error,
                    },
                ],
            },
        )
    ]
    client.record({"type": "metric", "id": "m1", "name": "x", "value": 1, "at": 0})
    client.record({"type": "metric", "id": "m2", "name": "x", "value": "lots", "at": 0})

    with caplog.at_level(logging.WARNING, logger="observatory_sdk"):
        assert client.flush(timeout=DEADLINE)

    assert "rejected record 1 (id m2) at records[1].value: " + error in caplog.text
    assert (client.stats.sent, client.stats.rejected) == (1, 1)


def test_it_sends_gzip_json_with_the_api_key_as_a_bearer_token(
    fake_ingest: FakeIngest, client: Client
) -> None:
    client.message("s1", "user", "hello")

    assert client.flush(timeout=DEADLINE)

    headers = fake_ingest.requests[0].headers
    assert headers["Authorization"] == "Bearer obs_test"
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "agent-observatory-sdk/0.1.0"


def test_it_can_send_without_gzip(fake_ingest: FakeIngest) -> None:
    with Client("obs_test", fake_ingest.url, gzip=False) as client:
        client.message("s1", "user", "hello")

    assert "Content-Encoding" not in fake_ingest.requests[0].headers
    assert fake_ingest.records[0]["content"] == "hello"


def test_a_raw_record_without_an_id_gets_one(client: Client) -> None:
    raw = {"type": "message", "session_id": "s1", "role": "user", "content": "hi", "at": 0}
    client.record(raw)

    (queued,) = client.pending()
    assert len(queued["id"]) == 32
    assert "id" not in raw


def test_a_queued_record_is_a_snapshot_of_the_callers_dict(client: Client) -> None:
    raw = {"type": "metric", "id": "m1", "name": "x", "value": 1, "at": 0}
    client.record(raw)
    raw["value"] = 2

    assert client.pending()[0]["value"] == 1


def test_a_full_queue_drops_the_oldest_records(
    fake_ingest: FakeIngest, caplog: pytest.LogCaptureFixture
) -> None:
    client = fast_client(fake_ingest.url, max_queue_size=3, batch_size=100)
    with caplog.at_level(logging.WARNING, logger="observatory_sdk"):
        for number in range(5):
            client.record({"type": "metric", "id": f"m{number}", "name": "x", "value": 1, "at": 0})

    assert [record["id"] for record in client.pending()] == ["m2", "m3", "m4"]
    assert client.stats.dropped == 2
    assert "dropped 1 records" in caplog.text
    client.close(timeout=DEADLINE)
    assert [record["id"] for record in fake_ingest.records] == ["m2", "m3", "m4"]


def test_a_full_batch_is_sent_without_waiting_for_the_interval(fake_ingest: FakeIngest) -> None:
    client = fast_client(fake_ingest.url, batch_size=2)
    client.metric("x", 1)
    client.metric("x", 2)

    assert client.flush(timeout=DEADLINE)
    client.close(timeout=DEADLINE)
    assert len(fake_ingest.requests) == 1


def test_the_interval_sends_a_partial_batch(fake_ingest: FakeIngest) -> None:
    client = fast_client(fake_ingest.url, flush_interval=0.05)
    client.metric("x", 1)

    deadline = time.monotonic() + DEADLINE
    while not fake_ingest.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(fake_ingest.records) == 1
    client.close(timeout=DEADLINE)


def test_flush_waits_for_everything_queued_so_far_in_several_batches(
    fake_ingest: FakeIngest,
) -> None:
    client = fast_client(fake_ingest.url, batch_size=500)
    for number in range(1200):
        client.metric("x", number)

    assert client.flush(timeout=DEADLINE)

    assert [len(request.records) for request in fake_ingest.requests] == [500, 500, 200]
    assert client.stats.sent == 1200
    client.close(timeout=DEADLINE)


def test_close_sends_what_is_pending_and_later_records_are_dropped(
    fake_ingest: FakeIngest,
) -> None:
    client = fast_client(fake_ingest.url)
    client.metric("x", 1)

    assert client.close(timeout=DEADLINE)
    client.metric("x", 2)

    assert len(fake_ingest.records) == 1
    assert client.stats.dropped == 1
    assert client.flush(timeout=DEADLINE)


def test_records_from_many_threads_all_arrive_once(fake_ingest: FakeIngest) -> None:
    client = fast_client(fake_ingest.url, batch_size=100, flush_interval=0.01)

    def produce(thread_number: int) -> None:
        for number in range(250):
            client.metric("x", number, agent_id=f"agent-{thread_number}")

    threads = [threading.Thread(target=produce, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert client.flush(timeout=DEADLINE)
    client.close(timeout=DEADLINE)
    ids = [record["id"] for record in fake_ingest.records]
    assert len(ids) == len(set(ids)) == 2000
    assert client.stats.sent == 2000


def test_typed_helpers_return_the_ids_they_generate(client: Client) -> None:
    session_id = client.start_session(name="run", tags=["demo"], user_query="Who won?")
    span_id = client.event(session_id, "llm", "openai.chat", model="gpt-4o", prompt_tokens=10)
    client.status(session_id, "tool", "Running tool SearchTool (who won)", agent_id="a1")

    start, event, status = client.pending()
    assert start["session_id"] == session_id
    assert start["user_query"] == "Who won?"
    assert event["span_id"] == span_id
    assert event["session_id"] == session_id
    assert status == {
        "type": "status",
        "id": status["id"],
        "session_id": session_id,
        "role": "tool",
        "text": "Running tool SearchTool (who won)",
        "at": status["at"],
        "agent_id": "a1",
    }


def test_a_span_times_its_block_and_records_ok(client: Client) -> None:
    with (
        client.span("s1", "action", "plan", agent_id="a1") as action,
        client.span("s1", "tool", "search", parent_span_id=action.span_id) as tool,
    ):
        tool.set(returns={"hits": 3})

    tool_event, action_event = client.pending()
    assert tool_event["parent_span_id"] == action_event["span_id"] == action.span_id
    assert tool_event["returns"] == {"hits": 3}
    assert tool_event["status"] == action_event["status"] == "ok"
    assert action_event["started_at"] <= tool_event["started_at"]
    assert tool_event["ended_at"] <= action_event["ended_at"]


def test_a_span_records_the_error_and_reraises(client: Client) -> None:
    def search() -> None:
        raise TimeoutError("search backend timed out")

    with pytest.raises(TimeoutError), client.span("s1", "tool", "search"):
        search()

    (event,) = client.pending()
    assert event["status"] == "error"
    assert event["error_type"] == "TimeoutError"
    assert event["error_message"] == "search backend timed out"
    assert "in search" in event["stack_trace"]
    assert event["stack_trace"].rstrip().endswith("TimeoutError: search backend timed out")


def test_a_span_with_a_bad_field_fails_before_the_block_runs(client: Client) -> None:
    with pytest.raises(TypeError, match="unknown event fields: tokens"):
        client.span("s1", "llm", "chat", tokens=3)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="kind must be one of"):
        client.span("s1", "thought", "chat")


def test_an_api_key_with_a_trailing_newline_is_trimmed(fake_ingest: FakeIngest) -> None:
    with Client("obs_test\n", fake_ingest.url) as client:
        client.metric("x", 1)

    assert fake_ingest.requests[0].headers["Authorization"] == "Bearer obs_test"


def test_an_api_key_with_inner_whitespace_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="api_key must be one non-empty word"):
        Client("banner text\nobs_test")
