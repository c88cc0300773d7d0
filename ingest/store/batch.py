"""The entry points of every telemetry write: parsed records in, rows out, one transaction per
batch (`save_records`), and the refusal handling around it (`save_records_or_reject`: a batch the
database refuses is stored in halves until the refused records are found).

Idempotency comes from the ReceivedRecord ledger and unique constraints, never a cache. Writes are
set-based: a batch costs a fixed number of queries whatever its size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict

from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    transaction,
)

from ingest.formats.records import (
    AgentMessageRecord,
    AgentRecord,
    MetricRecord,
    Record,
    RecordError,
    ScoreRecord,
    SpanRecord,
    StepRecord,
    TestResultRecord,
    TestRunRecord,
    TranscriptRecord,
    WorkflowRecord,
)
from ingest.models import (
    PendingRequest,
    Project,
)
from ingest.redaction import redact_records
from ingest.store.agents import _fill_pending_ends, _relink_span_agents
from ingest.store.ledger import (
    Claimed,
    SaveResult,
    _claim_record_ids,
    _claim_request,
    _claim_shared_rows,
    _group_by_type,
)
from ingest.store.messages import _upsert_messages
from ingest.store.redactors import project_redactor
from ingest.store.rejections import save_rejections
from ingest.store.scores import _mark_unchanged_scores, _test_result_scores, _upsert_scores
from ingest.store.sessions import (
    _merge_stored_sessions,
    _stored_session_changes,
    _upsert_agents,
    _upsert_sessions,
)
from ingest.store.spans import _insert_metrics, _insert_transcript, _upsert_spans
from ingest.store.testruns import _save_test_records
from ingest.store.traces import _adopt_definitions, _linked, _lock_traces, _save_trace_links
from ingest.store.workflows import _adopt_implicit_steps, _has_stored_children, _upsert_workflows

logger = logging.getLogger(__name__)


def save_records(
    project: Project,
    records: list[tuple[int, Record]],
    errors: Iterable[RecordError] = (),
    *,
    source: str = "native",
    request_key: str = "",
    landed: Sequence[int] = (),
) -> SaveResult:
    """Store a parsed batch and its rejections in one transaction.

    Records whose id the project has already accepted (or that repeat an id within the batch) are
    reported as duplicates and store nothing. With a `request_key` (a digest of the request body,
    from the OTLP endpoints) the ledger gets one row for the whole request instead: a retried
    request is a duplicate as a whole, and the records of a new one are stored by their upserts,
    which are idempotent on their own natural keys (see _needs_ledger_row).

    Rows that concurrent requests share (sessions, trace links, workflows) are created first,
    outside the transaction (_claim_shared_rows), and stored sessions are changed last, by one
    commutative UPDATE (_merge_stored_sessions), so concurrent requests of one session wait on
    each other at most for that UPDATE's commit. A concurrent writer racing on the same span
    still makes the transaction fail on a unique constraint; it is then retried once it can see
    that row.

    `landed` are the pending requests (ingest/landing.py) whose records these are: they are
    deleted in the same transaction, so a pending request is stored exactly once or stays.
    """
    errors = list(errors)
    redactor = project_redactor(project)
    if redactor is not None:
        # The one point every wire format passes: nothing agent-written is stored unredacted
        # (refused records are redacted by save_rejections, which other callers use too).
        records = redact_records(records, redactor)
    claimed = _claim_shared_rows(project, records)
    for attempt in range(3):
        try:
            with transaction.atomic():
                result = _save_batch(project, records, errors, source, request_key, claimed)
                if landed:
                    PendingRequest.objects.filter(pk__in=landed).delete()
                return result
        except IntegrityError:
            claimed = Claimed()  # what this call created may have rows under it by now
            if attempt == 2:
                raise
            logger.info("ingest: concurrent write on the same rows, retrying batch")
    raise AssertionError("unreachable")


# Errors that say the database cannot be used right now (the caller answers 503), as opposed to
# errors that say it refuses what this batch holds.
OUTAGE_ERRORS = (OperationalError, InterfaceError)


def save_records_or_reject(
    project: Project,
    records: list[tuple[int, Record]],
    errors: Iterable[RecordError] = (),
    *,
    source: str = "native",
    request_key: str = "",
    landed: Sequence[int] = (),
) -> tuple[SaveResult, list[RecordError]]:
    """save_records(), but a batch the database refuses for what it holds (a DatabaseError that
    is not an outage: a value too long for its column, an escape jsonb cannot hold, a number out
    of range) does not fail whole: halves are stored apart until the records it refuses are
    found, and those become rejections kept with the record. Returns the result and every
    rejection (the parser's and these). Outages still raise, for a 503. `landed` as for
    save_records(): deleted with the last transaction."""
    errors = list(errors)
    try:
        saved = save_records(
            project, records, errors, source=source, request_key=request_key, landed=landed
        )
        return saved, errors
    except OUTAGE_ERRORS:
        raise
    except DatabaseError as exc:
        logger.warning(
            "ingest: the database refused a batch of %d; isolating: %s", len(records), exc
        )
    result = SaveResult()
    refused = _save_apart(project, records, source, request_key, result)
    errors += refused
    # One more transaction claims the request (a byte-identical retry is then a duplicate) and
    # keeps every rejection.
    final = save_records(project, [], errors, source=source, request_key=request_key, landed=landed)
    result.rejection_count = final.rejection_count
    return result, errors


def _save_apart(
    project: Project,
    records: list[tuple[int, Record]],
    source: str,
    request_key: str,
    result: SaveResult,
) -> list[RecordError]:
    """Store `records`, splitting in halves while the database refuses them; the single
    records it still refuses are returned as RecordErrors. A part's ledger key is the request's
    with its first index, so a retried request that fails the same way stores nothing twice."""
    if not records:
        return []
    key = f"{request_key}#{records[0][0]}-{len(records)}" if request_key else ""
    try:
        saved = save_records(project, records, source=source, request_key=key)
    except OUTAGE_ERRORS:
        raise
    except DatabaseError as exc:
        if len(records) > 1:
            middle = len(records) // 2
            return _save_apart(project, records[:middle], source, request_key, result) + (
                _save_apart(project, records[middle:], source, request_key, result)
            )
        index, record = records[0]
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [
            RecordError(
                index=index,
                field="",
                message=f"The database refused this record: {reason}",
                record_type=type(record).__name__,
                raw=asdict(record),
            )
        ]
    result.statuses.update(saved.statuses)
    result.session_pks |= saved.session_pks
    result.test_run_pks |= saved.test_run_pks
    return []


def _save_batch(
    project: Project,
    records: list[tuple[int, Record]],
    errors: list[RecordError],
    source: str,
    request_key: str,
    claimed: Claimed,
) -> SaveResult:
    result = SaveResult()
    if request_key:
        fresh = _claim_request(project, request_key, records, result)
    else:
        fresh = _claim_record_ids(project, records, result)
    by_type = _group_by_type(fresh)
    test_records = by_type.pop(TestRunRecord, []) + by_type.pop(TestResultRecord, [])
    result.test_run_pks = _save_test_records(project, test_records)
    test_scores = _test_result_scores(test_records)
    if claimed.linked is not None and len(fresh) == claimed.record_count and not test_scores:
        # The claim followed these same records' links a moment ago (a fifth of the parse's
        # cost again for 512 small-trace spans, all rewritten to their sessions).
        links, by_type = claimed.linked
    else:
        if test_scores:
            by_type.setdefault(ScoreRecord, []).extend(test_scores)
        links, by_type = _linked(project, by_type)
    session_records = [r for g in by_type.values() for r in g]
    sessions, created = _upsert_sessions(project, session_records)
    # Sessions with nothing under them yet: those created here and those claimed for this batch.
    new_sessions = created | {s.pk for s in sessions.values() if s.external_id in claimed.sessions}
    _save_trace_links(project, sessions, links)
    _upsert_agents(project, sessions, new_sessions, by_type.get(AgentRecord, []))
    _adopt_definitions(project, sessions, by_type.get(AgentRecord, []))
    _upsert_spans(project, sessions, new_sessions, by_type.get(SpanRecord, []))
    # Worked out before the trace lock (it reads only the batch and the rows read above); its
    # UPDATE stays the last write, after the lock: its session row locks, taken before, would
    # be held across the wait, and a batch holding the lock of a trace of such a session would
    # then wait on them at its own merge (a deadlock).
    touched = _stored_session_changes(sessions, created, session_records)
    _lock_traces(project, by_type.get(SpanRecord, []))
    walk = _relink_span_agents(sessions, by_type.get(SpanRecord, []), by_type.get(AgentRecord, []))
    _insert_transcript(project, sessions, by_type.get(TranscriptRecord, []))
    _insert_metrics(project, sessions, by_type.get(MetricRecord, []))
    unchanged = _upsert_scores(project, sessions, by_type.get(ScoreRecord, []))
    _mark_unchanged_scores(records, unchanged, result)
    _upsert_messages(project, sessions, by_type.get(AgentMessageRecord, []) + walk.messages)
    flows = by_type.get(WorkflowRecord, []) + by_type.get(StepRecord, [])
    # Workflows are claimed outside the transaction by whichever batch came first, so even in
    # a session this batch claimed they are stored rows to look up.
    _upsert_workflows(project, sessions, created, flows, claimed.workflows)
    spans = by_type.get(SpanRecord, [])
    # Without flows too: the span that completes a task's path to its workflow span (the
    # agent's, in between) may come alone, while the workflow's batch could not see it.
    if flows or _has_stored_children(sessions, spans, walk.parent_of):
        _adopt_implicit_steps(sessions, spans, walk.parent_of)
    _fill_pending_ends(walk)
    result.rejection_count = save_rejections(project, errors, source=source)
    _merge_stored_sessions(touched)
    result.session_pks = {s.pk for s in sessions.values()}
    return result
