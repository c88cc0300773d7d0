"""The batching client: a bounded queue of encoded records and one daemon thread that sends them.

Callers never wait on the network: record() encodes the record (a snapshot, so later changes to
the caller's dict do not leak in) and appends it to the queue. The sender thread posts a batch
when batch_size records are waiting, when flush_interval has passed, or when someone flushes.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Unpack

from observatory_sdk import records, testing
from observatory_sdk.messaging import RequeuePoller, TrackedMessage
from observatory_sdk.records import EventFields, Record, Timestamp
from observatory_sdk.transport import BatchOutcome, Transport
from observatory_sdk.workflows import WorkflowRun

logger = logging.getLogger("observatory_sdk")

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
INGEST_PATH = "/api/v1/ingest"
# Well under the server's default 10 MiB body limit (OBSERVATORY_MAX_BATCH_BYTES).
MAX_BATCH_BYTES = 4 * 1024 * 1024
DROP_WARNING_EVERY = 1000


@dataclass(frozen=True)
class ClientStats:
    """Counts since the client started. sent is what the server accepted."""

    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped: int = 0
    failed_batches: int = 0
    last_error: str = ""


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return records.wire_timestamp(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def encode_record(record: Mapping[str, Any]) -> bytes:
    """A record as compact JSON; datetimes become UTC ISO strings, other oddities their str()."""
    return json.dumps(record, default=_json_default, separators=(",", ":")).encode()


class Client:
    """Batches records to POST {base_url}/api/v1/ingest from a background daemon thread.

    Thread-safe. Retries 5xx, 429 and connection errors with exponential backoff and jitter;
    other 4xx answers are logged and the batch is given up. When more than max_queue_size records
    wait, the oldest are dropped and counted in stats.dropped. Pending records are flushed at exit.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_retries: int = 5,
        timeout: float = 10,
        gzip: bool = True,
        max_queue_size: int = 100_000,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        shutdown_timeout: float = 30.0,
    ) -> None:
        if batch_size < 1 or max_queue_size < 1 or max_retries < 0:
            raise ValueError("batch_size and max_queue_size must be >= 1, max_retries >= 0")
        api_key = api_key.strip()  # Keys read from files or env often end with a newline.
        if not api_key or any(character.isspace() for character in api_key):
            raise ValueError(
                "api_key must be one non-empty word, like the key create_project prints"
            )
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue_size = max_queue_size
        self.shutdown_timeout = shutdown_timeout
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._transport = Transport(
            base_url.rstrip("/") + INGEST_PATH,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            use_gzip=gzip,
        )
        self._cond = threading.Condition()
        self._queue: deque[tuple[int, bytes]] = deque()  # (sequence number, encoded record)
        self._next_seq = 0
        self._in_flight_first_seq: int | None = None
        self._flush_waiters = 0
        self._is_closing = False
        self._stats = ClientStats()
        self._thread = threading.Thread(target=self._run, name="observatory-sdk", daemon=True)
        self._thread.start()
        atexit.register(self._close_at_exit)

    # Queueing

    def record(self, record: Mapping[str, Any]) -> None:
        """Queue one raw record (see docs/ingest-api.md). A missing id is filled in, so that a
        retried batch is recognised as a duplicate rather than stored twice."""
        if not record.get("id"):
            record = {**record, "id": records.new_id()}
        self._enqueue(encode_record(record))

    def pending(self) -> list[Record]:
        """A copy of the records queued and not yet handed to the sender (for tests, debugging)."""
        with self._cond:
            encoded = [item for _, item in self._queue]
        return [json.loads(item) for item in encoded]

    @property
    def stats(self) -> ClientStats:
        """A snapshot of the counters."""
        with self._cond:
            return self._stats

    def _enqueue(self, encoded: bytes) -> None:
        with self._cond:
            dropped = 0
            if self._is_closing:
                dropped = self._count_drop()
            else:
                if len(self._queue) >= self.max_queue_size:
                    self._queue.popleft()  # The oldest goes: recent records matter most.
                    dropped = self._count_drop()
                self._queue.append((self._next_seq, encoded))
                self._next_seq += 1
                if len(self._queue) >= self.batch_size:
                    self._cond.notify_all()
        if dropped == 1 or (dropped and dropped % DROP_WARNING_EVERY == 0):
            logger.warning(
                "Observatory client dropped %d records so far (queue full or client closed)",
                dropped,
            )

    def _count_drop(self) -> int:
        self._stats = replace(self._stats, dropped=self._stats.dropped + 1)
        return self._stats.dropped

    # Flushing and shutdown

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every record queued before this call is sent or given up.

        Returns False if the timeout passed first.
        """
        if threading.current_thread() is self._thread:
            return False
        with self._cond:
            target = self._next_seq
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._oldest_pending_seq() >= target, timeout)
            finally:
                self._flush_waiters -= 1

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the sender thread. Records queued afterwards are dropped.

        Returns False if the timeout passed before everything was sent.
        """
        with self._cond:
            self._is_closing = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        is_finished = not self._thread.is_alive()
        if is_finished:
            self._transport.close()
            atexit.unregister(self._close_at_exit)
        return is_finished

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _close_at_exit(self) -> None:
        self.close(timeout=self.shutdown_timeout)

    # The sender thread

    def _oldest_pending_seq(self) -> int:
        if self._in_flight_first_seq is not None:
            return self._in_flight_first_seq
        return self._queue[0][0] if self._queue else self._next_seq

    def _is_send_due(self) -> bool:
        if len(self._queue) >= self.batch_size or self._is_closing:
            return True
        return bool(self._flush_waiters and self._queue)

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                self._deliver(batch)

    def _next_batch(self) -> list[bytes] | None:
        """The next batch to send, [] when there is nothing yet, None when it is time to stop."""
        with self._cond:
            deadline = time.monotonic() + self.flush_interval
            while not self._is_send_due():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if not self._queue:
                return None if self._is_closing else []
            batch: list[bytes] = []
            size = 0
            while self._queue and len(batch) < self.batch_size:
                if batch and size + len(self._queue[0][1]) > MAX_BATCH_BYTES:
                    break
                seq, encoded = self._queue.popleft()
                if not batch:
                    self._in_flight_first_seq = seq
                batch.append(encoded)
                size += len(encoded)
            return batch

    def _deliver(self, batch: list[bytes]) -> None:
        try:
            outcome = self._transport.send(batch)
        except Exception as exc:  # A bug here must not kill the sender thread.
            logger.exception("Observatory client could not send a batch")
            outcome = BatchOutcome(is_failed=True, error=f"{type(exc).__name__}: {exc}")
        with self._cond:
            stats = self._stats
            self._stats = replace(
                stats,
                sent=stats.sent + outcome.accepted,
                duplicates=stats.duplicates + outcome.duplicates,
                rejected=stats.rejected + outcome.rejected,
                failed_batches=stats.failed_batches + outcome.is_failed,
                last_error=outcome.error or stats.last_error,
            )
            self._in_flight_first_seq = None
            self._cond.notify_all()

    # Typed helpers

    def start_session(
        self,
        session_id: str | None = None,
        *,
        name: str = "",
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        user_query: str = "",
        parent_session_id: str = "",
        group_key: str = "",
        started_at: Timestamp = None,
    ) -> str:
        """Record a session.start and return the session id (a new uuid4 hex if none is given).

        Under the pytest plugin, the session is linked to the running test's result."""
        session_id = session_id or records.new_id()
        testing.link_session(session_id)
        self._enqueue(
            encode_record(
                records.session_start_record(
                    session_id,
                    name=name,
                    tags=tags,
                    metadata=metadata,
                    config=config,
                    user_query=user_query,
                    parent_session_id=parent_session_id,
                    group_key=group_key,
                    started_at=started_at,
                )
            )
        )
        return session_id

    def update_session(
        self,
        session_id: str,
        *,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        user_query: str | None = None,
        parent_session_id: str | None = None,
        group_key: str | None = None,
    ) -> None:
        """Record a session.update with the fields given; metadata is merged by the server."""
        self._enqueue(
            encode_record(
                records.session_update_record(
                    session_id,
                    name=name,
                    tags=tags,
                    metadata=metadata,
                    config=config,
                    user_query=user_query,
                    parent_session_id=parent_session_id,
                    group_key=group_key,
                )
            )
        )

    def end_session(
        self,
        session_id: str,
        end_state: str = "success",
        reason: str = "",
        *,
        ended_at: Timestamp = None,
    ) -> None:
        """Record a session.end (end_state: success, fail or indeterminate)."""
        record = records.session_end_record(
            session_id, end_state=end_state, reason=reason, ended_at=ended_at
        )
        self._enqueue(encode_record(record))

    def agent_created(
        self,
        session_id: str,
        agent_id: str,
        name: str = "",
        *,
        role: str = "",
        init_params: Mapping[str, Any] | None = None,
        at: Timestamp = None,
    ) -> None:
        """Record that an agent was created, with the parameters it was created with."""
        record = records.agent_created_record(
            session_id, agent_id, name=name, role=role, init_params=init_params, at=at
        )
        self._enqueue(encode_record(record))

    def agent_terminated(
        self, session_id: str, agent_id: str, reason: str = "", *, at: Timestamp = None
    ) -> None:
        """Record that an agent stopped."""
        record = records.agent_terminated_record(session_id, agent_id, reason=reason, at=at)
        self._enqueue(encode_record(record))

    def event(self, session_id: str, kind: str, name: str, **fields: Unpack[EventFields]) -> str:
        """Record an event (kind action, llm, tool or error) and return its span id."""
        record = records.event_record(session_id, kind, name, **fields)
        self._enqueue(encode_record(record))
        return str(record["span_id"])

    def status(
        self, session_id: str, role: str, text: str, agent_id: str = "", *, at: Timestamp = None
    ) -> None:
        """Record a status line (role agent, llm or tool), e.g. "Running tool SearchTool (…)"."""
        record = records.status_record(session_id, role, text, agent_id=agent_id, at=at)
        self._enqueue(encode_record(record))

    def message(
        self, session_id: str, role: str, content: str, agent_id: str = "", *, at: Timestamp = None
    ) -> None:
        """Record a conversation message (role user, assistant or system)."""
        record = records.message_record(session_id, role, content, agent_id=agent_id, at=at)
        self._enqueue(encode_record(record))

    def metric(
        self,
        name: str,
        value: float,
        unit: str = "",
        session_id: str = "",
        agent_id: str = "",
        *,
        at: Timestamp = None,
    ) -> None:
        """Record a metric sample; session_id is optional."""
        record = records.metric_record(
            name, value, unit=unit, session_id=session_id, agent_id=agent_id, at=at
        )
        self._enqueue(encode_record(record))

    def score(
        self,
        session_id: str,
        name: str,
        value: records.ScoreValue,
        *,
        span_id: str = "",
        comment: str = "",
        source: str = "api",
        author: str = "",
        data_type: str = "",
        label: str = "",
        at: Timestamp = None,
        score_id: str | None = None,
    ) -> str:
        """Score a session, or one of its spans with `span_id`: a number, a category (a string)
        or yes/no (a bool), with an optional comment. Returns the score's id; scoring again with
        `score_id=` that id changes the score instead of adding one."""
        record = records.score_record(
            session_id,
            name,
            value,
            span_id=span_id,
            comment=comment,
            source=source,
            author=author,
            data_type=data_type,
            label=label,
            at=at,
            score_id=score_id,
        )
        self._enqueue(encode_record(record))
        return str(record["id"])

    # Messages between agents, workflows, requeued dead letters

    def track_message(
        self,
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
        created: bool = True,
    ) -> TrackedMessage:
        """A message from one agent to others; records `created` now (unless created=False).
        Its methods and context managers (sending(), processing()) record the later stages."""
        message = TrackedMessage(
            self.record,
            session_id,
            sender,
            receivers,
            content,
            message_id=message_id,
            channel=channel,
            correlation_id=correlation_id,
            causation_id=causation_id,
            content_type=content_type,
            metadata=metadata,
        )
        if created:
            message.created()
        return message

    def workflow(
        self,
        session_id: str,
        name: str,
        *,
        workflow_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> WorkflowRun:
        """A workflow run as a context manager; `run.step(...)` opens its steps."""
        return WorkflowRun(
            self.record, session_id, name, workflow_id=workflow_id, metadata=metadata
        )

    def requeue_poller(self, **options: Any) -> RequeuePoller:
        """A poller for the messages requeued from the dead-letter queue (same server and key)."""
        return RequeuePoller(self._api_key, self.base_url, **options)

    def span(self, session_id: str, kind: str, name: str, **fields: Unpack[EventFields]) -> Span:
        """A context manager that times its block and records it as one event when it ends.

        If the block raises, the event gets status "error" with the exception's type, message
        and stack trace, and the exception propagates. Otherwise status defaults to "ok".
        """
        return Span(self, session_id, kind, name, dict(fields))


class Span:
    """A timed block from Client.span(). Its span_id can parent nested spans; set() adds fields
    (returns, tokens, cost…) before the block ends."""

    def __init__(
        self, client: Client, session_id: str, kind: str, name: str, fields: dict[str, Any]
    ) -> None:
        self.span_id: str = fields.pop("span_id", None) or records.new_id()
        self.session_id = session_id
        self.kind = kind
        self.name = name
        self.fields = fields
        self.started_at = datetime.now(UTC)
        self._client = client
        self._record()  # Fail on a bad kind or field name now, not when the block ends.

    def set(self, **fields: Any) -> None:
        """Add or replace event fields (see EventFields)."""
        self._record(**fields)
        self.fields.update(fields)

    def __enter__(self) -> Span:
        self.started_at = datetime.now(UTC)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        outcome: dict[str, Any] = {"status": self.fields.get("status") or "ok"}
        if exc_type is not None:
            outcome = {
                "status": "error",
                "error_type": exc_type.__qualname__,
                "error_message": str(exc),
                "stack_trace": "".join(traceback.format_exception(exc_type, exc, tb)),
            }
        try:
            self._client.record(self._record(ended_at=datetime.now(UTC), **outcome))
        except Exception:  # Never hide the block's own exception behind ours.
            logger.exception("Observatory client could not record span %r", self.name)

    def _record(self, **extra: Any) -> Record:
        fields = {"started_at": self.started_at, **self.fields, **extra, "span_id": self.span_id}
        return records.event_record(self.session_id, self.kind, self.name, **fields)
