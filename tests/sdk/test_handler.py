"""StatusLineHandler: agent/llm/tool log lines become status records for the right session."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from observatory_sdk import Client, StatusLineHandler, current_session, current_session_id
from tests.sdk.conftest import FakeIngest
from tests.waiting import DEADLINE

LOGGER_NAMES = ("agent", "llm", "tool", "arena")  # children like agent.planner propagate


@pytest.fixture
def attach(client: Client) -> Iterator[StatusLineHandler]:
    """A handler for the test client, attached at INFO to the agent/llm/tool/arena loggers."""
    handler = StatusLineHandler(client)
    saved = {}
    for name in LOGGER_NAMES:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    yield handler
    for name in LOGGER_NAMES:
        logging.getLogger(name).removeHandler(handler)
        logging.getLogger(name).setLevel(saved[name])


def status_lines(client: Client) -> list[tuple[str, str, str]]:
    return [(line["session_id"], line["role"], line["text"]) for line in client.pending()]


def test_agent_llm_and_tool_loggers_become_status_lines_with_their_role(
    client: Client, attach: StatusLineHandler
) -> None:
    attach.session_id = "s1"

    logging.getLogger("agent.planner").info(
        "Running tool %s (%s)", "SearchTool", "current president of Taiwan"
    )
    logging.getLogger("llm").info("Calling gpt-4o")
    logging.getLogger("tool").warning("SearchTool returned 3 results")

    assert status_lines(client) == [
        ("s1", "agent", "Running tool SearchTool (current president of Taiwan)"),
        ("s1", "llm", "Calling gpt-4o"),
        ("s1", "tool", "SearchTool returned 3 results"),
    ]
    assert all(line["type"] == "status" for line in client.pending())


def test_status_lines_reach_the_server_as_status_records(
    fake_ingest: FakeIngest, client: Client, attach: StatusLineHandler
) -> None:
    with current_session("s9"):
        logging.getLogger("agent").info("Running tool SearchTool (weather in Taipei)")

    assert client.flush(timeout=DEADLINE)

    (record,) = fake_ingest.records
    assert record["type"] == "status"
    assert record["session_id"] == "s9"
    assert record["role"] == "agent"
    assert record["text"] == "Running tool SearchTool (weather in Taipei)"
    assert record["at"].endswith("Z")


def test_the_observatory_role_extra_sets_the_role_for_any_logger(
    client: Client, attach: StatusLineHandler
) -> None:
    attach.session_id = "s1"

    logging.getLogger("arena").info("Fetched page", extra={"observatory_role": "tool"})
    logging.getLogger("arena").info("Not a status line")

    assert status_lines(client) == [("s1", "tool", "Fetched page")]


def test_records_without_a_session_are_ignored(client: Client, attach: StatusLineHandler) -> None:
    logging.getLogger("agent").info("Nobody is listening")

    assert client.pending() == []


def test_the_record_session_wins_over_the_current_session_and_the_handler(
    client: Client, attach: StatusLineHandler
) -> None:
    attach.session_id = "handler-session"

    with current_session("context-session"):
        logging.getLogger("tool").info("explicit", extra={"session_id": "record-session"})
        logging.getLogger("tool").info("from context")
    logging.getLogger("tool").info("from handler")

    assert status_lines(client) == [
        ("record-session", "tool", "explicit"),
        ("context-session", "tool", "from context"),
        ("handler-session", "tool", "from handler"),
    ]


def test_agent_and_span_ids_come_from_extra(client: Client, attach: StatusLineHandler) -> None:
    logging.getLogger("tool").info(
        "Running tool WebFetch", extra={"session_id": "s1", "agent_id": "a1", "span_id": "sp1"}
    )

    (line,) = client.pending()
    assert (line["agent_id"], line["span_id"]) == ("a1", "sp1")


def test_current_session_nests_and_restores() -> None:
    assert current_session_id() is None
    with current_session("outer"):
        with current_session("inner"):
            assert current_session_id() == "inner"
        assert current_session_id() == "outer"
    assert current_session_id() is None


def test_the_handler_uses_its_formatter(client: Client, attach: StatusLineHandler) -> None:
    attach.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    logging.getLogger("agent.planner").info("thinking", extra={"session_id": "s1"})

    assert status_lines(client) == [("s1", "agent", "agent.planner: thinking")]
