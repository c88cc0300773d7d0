"""Recording the messages your agents send each other, and getting requeued ones back.

A TrackedMessage records each lifecycle stage as an agent_message record through the client's
queue; its context managers wrap your own bus's send and handle calls::

    message = client.track_message(session_id, "planner", ["coder"], "Write the parser")
    with message.sending():          # sent; failed (and re-raised) if the block raises
        bus.publish("coder", payload)
    message.delivered()
    with message.processing("coder"):  # received, then processed or failed
        handle(payload)

RequeuePoller fetches the messages someone requeued from the dead-letter queue.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import requests

from observatory_sdk import records
from observatory_sdk.records import Record, Timestamp

logger = logging.getLogger("observatory_sdk")

POLL_PATH = "/api/v1/requeued-messages/poll/"


class TrackedMessage:
    """One message between agents. Each method records one stage (now, unless `at` is given).

    `sender`, `receivers` and `content` go with the first record; later ones carry only the
    message id, and the server merges them in whatever order they arrive."""

    def __init__(
        self,
        emit: Callable[[Record], None],
        session_id: str,
        sender: str,
        receivers: Sequence[str],
        content: Any = None,
        *,
        message_id: str | None = None,
        channel: str = "",
        correlation_id: str = "",
        causation_id: str = "",
        content_type: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.session_id = session_id
        self.message_id = message_id or records.new_id()
        self.sender = sender
        self.receivers = list(receivers)
        self.content = content
        self.attempt = 1
        self._emit = emit
        self._described = {
            "sender": sender,
            "receivers": self.receivers,
            "channel": channel,
            "correlation_id": correlation_id,
            "causation_id": causation_id,
            "content": content,
            "content_type": content_type,
            "metadata": metadata,
        }

    def record(self, stage: str, *, at: Timestamp = None, **fields: Any) -> None:
        """Record any stage; the message's description goes with the first record only."""
        described, self._described = self._described, {}
        record = records.agent_message_record(
            self.session_id, self.message_id, stage, at=at, **described, **fields
        )
        self._emit(record)

    def created(self, *, at: Timestamp = None) -> None:
        self.record("created", at=at)

    def sent(self, *, at: Timestamp = None) -> None:
        self.record("sent", at=at, attempt=self.attempt, agent_id=self.sender)

    def delivered(self, *, at: Timestamp = None, agent_id: str = "") -> None:
        self.record("delivered", at=at, agent_id=agent_id)

    def received(self, agent_id: str = "", *, at: Timestamp = None) -> None:
        self.record("received", at=at, agent_id=agent_id)

    def processed(self, agent_id: str = "", *, at: Timestamp = None) -> None:
        self.record("processed", at=at, agent_id=agent_id)

    def failed(
        self,
        error: BaseException | str,
        *,
        error_type: str = "",
        agent_id: str = "",
        at: Timestamp = None,
    ) -> None:
        """Record a failed attempt: an exception (its type and message), or a message text."""
        self.record(
            "failed", at=at, attempt=self.attempt, agent_id=agent_id, **_error(error, error_type)
        )

    def retried(self, *, at: Timestamp = None) -> None:
        """Record a retry; the attempt counter goes up by one."""
        self.attempt += 1
        self.record("retried", at=at, attempt=self.attempt, agent_id=self.sender)

    def dead_lettered(
        self, error: BaseException | str = "", *, error_type: str = "", at: Timestamp = None
    ) -> None:
        """Record that the message was given up on and moved to the dead-letter queue."""
        self.record("dead_lettered", at=at, attempt=self.attempt, **_error(error, error_type))

    def expired(self, *, at: Timestamp = None) -> None:
        self.record("expired", at=at, error_type="Expired", error_message="time to live passed")

    @contextmanager
    def sending(self) -> Iterator[TrackedMessage]:
        """Record `sent`; if the block raises, record `failed` and let the exception go on."""
        self.sent()
        try:
            yield self
        except BaseException as exc:
            self.failed(exc, agent_id=self.sender)
            raise

    @contextmanager
    def processing(self, agent_id: str = "") -> Iterator[TrackedMessage]:
        """Record `received`, then `processed` when the block ends, or `failed` if it raises."""
        receiver = agent_id or (self.receivers[0] if self.receivers else "")
        self.received(receiver)
        try:
            yield self
        except BaseException as exc:
            self.failed(exc, agent_id=receiver)
            raise
        self.processed(receiver)

    def reply(self, content: Any = None, *, sender: str = "", **options: Any) -> TrackedMessage:
        """A new message back to this one's sender, which replies to and was caused by it."""
        replier = sender or (self.receivers[0] if self.receivers else "")
        options.setdefault("correlation_id", self.message_id)
        options.setdefault("causation_id", self.message_id)
        return TrackedMessage(
            self._emit, self.session_id, replier, [self.sender], content, **options
        )


def _error(error: BaseException | str, error_type: str) -> dict[str, str]:
    if isinstance(error, BaseException):
        return {
            "error_type": error_type or type(error).__qualname__,
            "error_message": str(error) or "".join(traceback.format_exception_only(error)).strip(),
        }
    return {"error_type": error_type, "error_message": error}


class RequeuePoller:
    """Fetches requeued dead letters from POST {base_url}/api/v1/requeued-messages/poll/.

    Each poll sends a fresh poll id; a poll that fails on the network is retried with the same
    id, so messages the server handed over in a lost answer come back instead of being lost."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout: float = 10,
        max_retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.url = base_url.rstrip("/") + POLL_PATH
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self._http = requests.Session()
        self._http.headers.update({"Authorization": f"Bearer {api_key.strip()}"})

    def poll(self, limit: int = 100, *, poll_id: str | None = None) -> list[dict[str, Any]]:
        """The requeued messages waiting (at most `limit`), each with its content; [] if none.
        Raises requests.RequestException once the retries are used up."""
        poll_id = poll_id or uuid.uuid4().hex
        for attempt in range(self.max_retries + 1):
            try:
                response = self._http.post(
                    self.url, json={"poll_id": poll_id, "limit": limit}, timeout=self.timeout
                )
                response.raise_for_status()
                messages: list[dict[str, Any]] = response.json()["messages"]
                return messages
            except (requests.ConnectionError, requests.Timeout):
                if attempt == self.max_retries:
                    raise
                logger.info("Observatory poll %s failed; retrying with the same id", poll_id)
                time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._http.close()
