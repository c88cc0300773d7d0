"""Every telemetry write: parsed records in, rows out, one transaction per batch.

Idempotency comes from the ReceivedRecord ledger and unique constraints, never a cache. Writes are
set-based: a batch costs a fixed number of queries whatever its size.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import orjson
from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import F, Model, Q, QuerySet
from django.utils import timezone
from psycopg.types.json import set_json_dumps

from ingest import sql
from ingest.formats.native import parse_records
from ingest.formats.otlp_flows import RECEIVER_SPAN_KEY, SENDER_SPAN_KEY
from ingest.formats.records import (
    AgentMessageRecord,
    AgentRecord,
    MetricRecord,
    Record,
    RecordError,
    ScoreRecord,
    SessionRecord,
    SpanRecord,
    StepRecord,
    TestResultRecord,
    TestRunRecord,
    TraceLinkRecord,
    TranscriptRecord,
    WorkflowRecord,
)
from ingest.lifecycle import STATE_FIELDS, MessageState, merge_message
from ingest.models import (
    Agent,
    IngestRejection,
    Message,
    MessageContent,
    MessageEvent,
    MetricSample,
    ModelPrice,
    PendingRequest,
    Project,
    ReceivedRecord,
    Score,
    Session,
    Span,
    SpanPayload,
    Step,
    TestResult,
    TestRun,
    TraceLink,
    TranscriptLine,
    Workflow,
)
from ingest.pricing import Price, default_prices, estimated_costs
from ingest.redaction import CustomPattern, Redactor, redact_records, redactor_for
from ingest.session_merge import SessionChange, merge_change, session_changes
from ingest.workflow_merge import WorkflowChange, merge_workflow_change, workflow_change

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=Model)

SESSION_MERGE_FIELDS = (
    "name",
    "name_at",
    "started_at",
    "ended_at",
    "end_state",
    "end_state_reason",
    "tags",
    "metadata",
    "config",
    "user_query",
    "parent_external_id",
    "group_key",
    "is_inferred",
    "is_summary_stale",
)
SPAN_MERGE_FIELDS = (
    "parent_span_id",
    "trace_id",
    "kind",
    "name",
    "agent_external_id",
    "started_at",
    "ended_at",
    "duration_ms",
    "status",
    "model",
    "provider",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "is_cost_estimated",
    "error_type",
    "error_message",
)
PAYLOAD_FIELDS = (
    "params",
    "returns",
    "prompt",
    "completion",
    "stack_trace",
    "attributes",
    "unmapped_keys",
)


@dataclass
class SaveResult:
    """Status per batch index ("accepted" or "duplicate") and the sessions the batch touched."""

    statuses: dict[int, str] = field(default_factory=dict)
    session_pks: set[int] = field(default_factory=set)
    test_run_pks: set[int] = field(default_factory=set)
    rejection_count: int = 0

    @property
    def accepted(self) -> int:
        return sum(1 for s in self.statuses.values() if s == "accepted")

    @property
    def duplicates(self) -> int:
        return sum(1 for s in self.statuses.values() if s == "duplicate")


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


def redacted_text(project: Project, text: str) -> str:
    """A text the project's redaction has passed over (unchanged when redaction is off)."""
    redactor = project_redactor(project)
    return text if redactor is None else redactor.text(text)[0]


def project_redactor(project: Project) -> Redactor | None:
    """The project's PII redactor (ingest/redaction.py), or None when redaction is off."""
    if not project.is_redaction_enabled:
        return None
    custom = tuple(CustomPattern(p["name"], p["pattern"]) for p in project.redaction_patterns)
    return redactor_for(tuple(project.redaction_detectors), custom)


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


@dataclass
class Claimed:
    """What _claim_shared_rows created (committed) for a batch: session pks by external id and
    workflow pks by (session pk, workflow id). Nothing is stored under them yet, unless a
    concurrent request got there first (then the span COPY fails and the batch is retried
    without this)."""

    sessions: dict[str, int] = field(default_factory=dict)
    workflows: set[int] = field(default_factory=set)
    # The batch's links and its records by type, followed to their sessions (_linked), and
    # how many records that was: the transaction reuses them when it stores every record.
    linked: tuple[dict[str, TraceLinkRecord], dict[type, list[Any]]] | None = None
    record_count: int = 0


def _claim_shared_rows(project: Project, records: list[tuple[int, Record]]) -> Claimed:
    """PostgreSQL, outside a transaction: create the sessions, trace links and workflows the
    batch names, committed at once (INSERT ... ON CONFLICT DO NOTHING, keys in sorted order;
    the sessions in one statement, the links and workflows together in another).

    Concurrent requests of one session used to insert the same session key inside their
    transactions, and the unique index made each wait for the other's commit (then fail and
    redo the whole batch): requests serialised (bench/README.md, wait events). Claimed here, a
    row is visible to every request at once. If the request then fails, what stays behind is
    an empty inferred session (and the trace link and inferred workflow its records named),
    exactly what its retry creates first: no spans, no data, and the summary shows it as an
    empty running session until the retry fills it.

    Keys this process claimed before (CLAIMED_KEYS) are not claimed again: a session's
    requests name the same session, link and workflow every time, and the claim statements
    were a fifth of a one-span request's CPU. The cache only ever skips a claim; a row deleted
    since (pruned, or a stray trace session moved) is created inside the transaction, as
    before claims existed.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block or not records:
        return Claimed()
    # Test runs and results name no session of their own (a result's session_ids only link).
    by_type = _group_by_type([r for _, r in records])
    tests = bool(by_type.pop(TestRunRecord, None)) | bool(by_type.pop(TestResultRecord, None))
    links, by_type = _linked(project, by_type)
    wanted = {r.session_id for g in by_type.values() for r in g if r.session_id}
    wanted |= {link.session_id for link in links.values()}
    if not wanted:
        return Claimed()
    flows = by_type.get(WorkflowRecord, []) + by_type.get(StepRecord, [])
    try:
        claimed = _claim(project, wanted, links, flows)
    except IntegrityError:
        # A session pk this process remembered is gone (pruned, or a stray trace session that
        # was moved): forget them all and claim from what is stored.
        CLAIMED_KEYS.clear()
        claimed = _claim(project, wanted, links, flows)
    if not tests:
        claimed.linked, claimed.record_count = (links, by_type), len(records)
    return claimed


def _claim(
    project: Project, wanted: set[str], links: dict[str, TraceLinkRecord], flows: list[FlowRecord]
) -> Claimed:
    claimed = Claimed()
    known = CLAIMED_KEYS
    pks = {sid: pk for sid in wanted if (pk := known.get(("session", project.pk, sid)))}
    new_ids = sorted(wanted - pks.keys())
    if new_ids:
        claimed.sessions = _insert_missing(
            Session(project=project, is_inferred=True),
            {"external_id": new_ids},
            "project_id, external_id",
            "external_id",
        )
        pks |= claimed.sessions
        if len(pks) < len(wanted):
            pks |= dict(
                Session.objects.filter(
                    project=project, external_id__in=wanted - pks.keys()
                ).values_list("external_id", "pk")
            )
    # Links with their reason, so that the batch's own upsert finds them unchanged and does
    # not rewrite (and lock) them inside the transaction.
    new_links = {
        ("link", project.pk, trace, pks[link.session_id], link.round_index, link.reason[:300])
        for trace, link in links.items()
    }
    new_links = {key for key in new_links if key not in known}
    link_insert = None
    if new_links:
        _, _, traces, sessions, rounds, reasons = zip(*sorted(new_links), strict=True)
        link_insert = _insert_missing_sql(
            TraceLink(project=project),
            {"trace_id": traces, "session": sessions, "round_index": rounds, "reason": reasons},
            "project_id, trace_id",
            "trace_id",
        )
    new_flows = {("workflow", pks[r.session_id], r.workflow_id) for r in flows if r.session_id}
    new_flows = {key for key in new_flows if key not in known}
    if new_flows:
        _, flow_sessions, workflow_ids = zip(*sorted(new_flows), strict=True)
        # The links go in the same statement: one commit (a WAL flush) fewer per request.
        made = _insert_missing(
            Workflow(project=project, is_inferred=True),
            {"session": flow_sessions, "workflow_id": workflow_ids},
            "session_id, workflow_id",
            "workflow_id",
            first=link_insert,
        )
        claimed.workflows = set(made.values())
    elif link_insert is not None:
        with connection.cursor() as cursor:
            cursor.execute(*link_insert)
    known.add({("session", project.pk, sid): pk for sid, pk in pks.items()})
    known.add(dict.fromkeys(new_links | new_flows, 0))
    return claimed


class ClaimedKeys:
    """The newest `size` rows this process claimed (_claim_shared_rows) or found claimed, each
    key with its pk where the claim needs it (sessions), oldest dropped first.

    A session's requests name the same session, link and workflow every time, and claiming
    them again was a fifth of a one-span request's CPU. This only ever skips a claim: a row
    deleted since is created inside the batch's transaction, as before claims existed."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.keys: OrderedDict[tuple[Any, ...], int] = OrderedDict()

    def __contains__(self, key: tuple[Any, ...]) -> bool:
        return self.get(key) is not None

    def get(self, key: tuple[Any, ...]) -> int | None:
        value = self.keys.get(key)
        if value is not None:
            self.keys.move_to_end(key)
        return value

    def add(self, values: dict[tuple[Any, ...], int]) -> None:
        for key, value in values.items():
            self.keys[key] = value
            self.keys.move_to_end(key)
        while len(self.keys) > self.size:
            self.keys.popitem(last=False)

    def clear(self) -> None:
        self.keys.clear()


# About 2 MB per process: the live sessions, links and workflows of a few thousand agents.
CLAIMED_KEYS = ClaimedKeys(20_000)


def _insert_missing(
    template: Model,
    varying: dict[str, Sequence[Any]],
    conflict: str,
    key: str,
    *,
    first: tuple[str, list[Any]] | None = None,
) -> dict[Any, int]:
    """INSERT rows like `template` but for the `varying` fields (a list of values each, one
    row per position, in that order) unless their unique key is stored already; returns {row's
    `key` field: pk} for the rows this call inserted. `first`: another _insert_missing_sql()
    run before it in the same statement (so in the same commit)."""
    query, params = _insert_missing_sql(template, varying, conflict, key)
    if first is not None:
        query, params = f"WITH first AS ({first[0]}) {query}", [*first[1], *params]
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return dict(cursor.fetchall())


def _insert_missing_sql(
    template: Model, varying: dict[str, Sequence[Any]], conflict: str, key: str
) -> tuple[str, list[Any]]:
    """The statement of _insert_missing() and its parameters. The varying values go as one
    array per field and the rest once: 50 sessions as rows of parameters were 1,000 values
    quoted one by one (bench/README.md)."""
    model = type(template)
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    names = {model._meta.get_field(name).column: name for name in varying}
    types = dict(zip(names, _copy_types(model, tuple(names)), strict=True))
    select, params = [], []
    for f in fields:
        if f.column in names:
            select.append(f"v.{f.column}")
        else:
            select.append("%s")
            params.append(f.get_db_prep_save(f.pre_save(template, True), connection))
    arrays = ", ".join(f"%s::{types[column]}[]" for column in names)
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(quote(f.column) for f in fields)}) "
        f"SELECT {', '.join(select)} FROM unnest({arrays}) WITH ORDINALITY "
        f"AS v({', '.join(names)}, n) ORDER BY v.n "
        f"ON CONFLICT ({conflict}) DO NOTHING "
        f"RETURNING {model._meta.get_field(key).column}, id"
    )
    return sql, [*params, *(list(varying[name]) for name in names.values())]


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
    _merge_stored_sessions(sessions, created, session_records)
    result.session_pks = {s.pk for s in sessions.values()}
    return result


# pg_advisory_xact_lock(TRACE_LOCK, hashtext("project pk:trace id")): see _lock_traces.
TRACE_LOCK = 0x54524143  # "TRAC"


def _lock_traces(project: Project, spans: list[SpanRecord]) -> None:
    """PostgreSQL: wait until the batches of these traces that got here first have committed.
    What follows reads each trace as stored to decide writes (the agents of its spans, the
    steps its implicit run hands to their workflow's run); two concurrent batches of one trace,
    each with one piece of a task's path to its workflow span, used to read the trace without
    the other's piece and both leave the steps in the implicit run (or deadlock deleting it).
    Now the later batch reads the earlier's rows. The spans are written already: only the rest
    of the batch waits. Keys in one sorted order: batches of several traces cannot deadlock."""
    if connection.vendor != "postgresql":
        return  # SQLite: one writer at a time already
    traces = sorted({f"{project.pk}:{r.trace_id}" for r in spans if r.trace_id})
    if not traces:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s::int4, k) FROM "
            "(SELECT DISTINCT hashtext(t) AS k FROM unnest(%s::text[]) t ORDER BY k) s",
            [TRACE_LOCK, traces],
        )


def _group_by_type(records: list[Record]) -> dict[type, list[Any]]:
    """The records by their class, each list in batch order (one pass instead of one filter per
    kind of record: a batch is a few records per span)."""
    groups: dict[type, list[Any]] = {}
    for record in records:
        groups.setdefault(type(record), []).append(record)
    return groups


def _needs_ledger_row(record: Record) -> bool:
    """Whether storing this record twice would count it twice. Every other record is an upsert
    by natural key (span, session, agent, workflow, step, trace link) or an insert that ignores
    a repeated client id (transcript line, metric sample), so storing it again changes nothing.
    A message lifecycle record also adds a MessageEvent and counts toward attempts."""
    return isinstance(record, AgentMessageRecord)


def _claim_request(
    project: Project, request_key: str, records: list[tuple[int, Record]], result: SaveResult
) -> list[Record]:
    """One ledger row for the request; a request seen before is a duplicate as a whole. The
    few records that need their own ledger row (_needs_ledger_row) are claimed as usual."""
    if not _insert_ledger_ids(project, [request_key]):
        result.statuses = {index: "duplicate" for index, _ in records}
        return []
    counted: list[tuple[int, Record]] = []
    fresh: list[Record] = []
    for index, record in records:
        if _needs_ledger_row(record):
            counted.append((index, record))
        else:
            result.statuses[index] = "accepted"
            fresh.append(record)
    return fresh + (_claim_record_ids(project, counted, result) if counted else [])


def _claim_record_ids(
    project: Project, records: list[tuple[int, Record]], result: SaveResult
) -> list[Record]:
    """Enter new ids in the ledger; records whose id was already there are duplicates.

    Scores stay out of it: a score's id is its key, and a re-sent score with a changed value
    must update it, not be dropped as a duplicate (_upsert_scores tells the two apart)."""
    claimed = _insert_ledger_ids(
        project, [r.record_id for _, r in records if not isinstance(r, ScoreRecord)]
    )
    fresh: list[Record] = []
    for index, record in records:
        if isinstance(record, ScoreRecord):
            result.statuses[index] = "accepted"
            fresh.append(record)
            continue
        if record.record_id not in claimed:
            result.statuses[index] = "duplicate"
            continue
        claimed.discard(record.record_id)  # a second copy within the batch is a duplicate
        result.statuses[index] = "accepted"
        fresh.append(record)
    return fresh


def enter_request_key(project: Project, request_key: str) -> bool:
    """Enter a request's key in the ledger; False when it was there (the request is a retry)."""
    return bool(_insert_ledger_ids(project, [request_key]))


def _insert_ledger_ids(project: Project, ids: list[str]) -> set[str]:
    """The ids this call inserted. On PostgreSQL one statement that is also safe against a
    concurrent retry of the same batch; elsewhere a read, then an insert ignoring conflicts."""
    if not ids:
        return set()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ingest_receivedrecord (project_id, record_id, received_at) "
                "SELECT %s, r, now() FROM unnest(%s::varchar[]) AS r "
                "ON CONFLICT (project_id, record_id) DO NOTHING RETURNING record_id",
                [project.pk, ids],
            )
            return {row[0] for row in cursor.fetchall()}
    seen = set(
        ReceivedRecord.objects.filter(project=project, record_id__in=ids).values_list(
            "record_id", flat=True
        )
    )
    new = set(ids) - seen
    ReceivedRecord.objects.bulk_create(
        [ReceivedRecord(project=project, record_id=i) for i in new], ignore_conflicts=True
    )
    return new


MAX_FOLLOWED_TRACES = 8


def _batch_links(
    project: Project, records: list[TraceLinkRecord], agents: list[AgentRecord]
) -> dict[str, TraceLinkRecord]:
    """The batch's trace links by trace id, each naming a session.

    A link that follows another trace (a span link, otlp._linked_trace) takes that trace's
    session: its link in this batch, else its stored link, else the trace's own session (if
    that trace is linked later, _move_trace carries this one along). A trace linked already
    keeps its stored session: a span link never overrides a link stored by any rule, so the
    result does not depend on which of a trace's spans came first.
    """
    definitions = [r for r in records if r.defined_agent]
    records = [r for r in records if not r.defined_agent]
    strong = {r.trace_id: r for r in records if not r.follows_trace}
    if definitions:
        strong |= _definition_links(project, definitions, strong, agents)
    follows = {r.trace_id: r for r in records if r.follows_trace and r.trace_id not in strong}
    if not follows:
        return strong
    links = dict(strong)
    stored = {
        trace: (session, reason)
        for trace, session, reason in TraceLink.objects.filter(
            project=project, trace_id__in=follows.keys() | {r.session_id for r in follows.values()}
        ).values_list("trace_id", "session__external_id", "reason")
    }
    for trace, record in follows.items():
        if trace in stored:
            session, reason = stored[trace]
            links[trace] = replace(record, session_id=session, reason=reason, follows_trace=False)
            continue
        target = record.session_id
        for _ in range(MAX_FOLLOWED_TRACES):
            if target in strong:
                target = strong[target].session_id
                break
            if target in stored:
                target = stored[target][0]
                break
            if target not in follows or target == trace:
                break
            target = follows[target].session_id
        if target != trace:
            links[trace] = replace(record, session_id=target, follows_trace=False)
    return links


# How long before a team run an AutoGen agent may have been created to be counted in it.
DEFINITION_WINDOW = timedelta(minutes=15)
AUTOGEN_TEAM_PREFIX = "autogen-team-"


def _definition_reason(agent: str, team_session: str) -> str:
    return (
        f"AutoGen agent {agent} created before team {team_session[len(AUTOGEN_TEAM_PREFIX) :]} "
        "used it (the next team run with that agent)"
    )


def _definition_links(
    project: Project,
    definitions: list[TraceLinkRecord],
    strong: dict[str, TraceLinkRecord],
    agents: list[AgentRecord],
) -> dict[str, TraceLinkRecord]:
    """Links for the batch's AutoGen create_agent traces: to the team run with the earliest
    agent of that name at most DEFINITION_WINDOW after the creation, among the batch's agents
    and the stored ones (one query per such trace; a team creates a handful). A run not stored
    yet adopts it when it comes (_adopt_definitions)."""
    in_batch = [
        (r.at, strong[r.session_id].session_id, r.name)
        for r in agents
        if r.at
        and r.session_id in strong
        and strong[r.session_id].session_id.startswith(AUTOGEN_TEAM_PREFIX)
    ]
    links: dict[str, TraceLinkRecord] = {}
    for record in definitions:
        start = record.defined_at
        if start is None:
            continue
        uses = [
            (at, team)
            for at, team, name in in_batch
            if name == record.defined_agent and start <= at <= start + DEFINITION_WINDOW
        ]
        stored = (
            Agent.objects.filter(
                project=project,
                name=record.defined_agent,
                session__external_id__startswith=AUTOGEN_TEAM_PREFIX,
                created_at__gte=start,
                created_at__lte=start + DEFINITION_WINDOW,
            )
            .order_by("created_at", "pk")
            .values_list("created_at", "session__external_id")
            .first()
        )
        uses += [stored] if stored else []
        if uses:
            team = min(uses)[1]
            reason = _definition_reason(record.defined_agent, team)
            links[record.trace_id] = replace(record, session_id=team, reason=reason)
    return links


def _adopt_definitions(
    project: Project, sessions: dict[str, Session], records: list[AgentRecord]
) -> None:
    """The other order: a team run's agents arrive after their create_agent traces were
    stored as sessions of their own. Each such trace (not linked yet) joins the run whose agent
    of that name starts soonest after it, within DEFINITION_WINDOW."""
    used = [
        (r.name, r.at, r.session_id)
        for r in records
        if r.name and r.at and r.session_id.startswith(AUTOGEN_TEAM_PREFIX)
    ]
    if not used:
        return
    earliest = min(at for _, at, _ in used)
    latest = max(at for _, at, _ in used)
    candidates = (
        Agent.objects.filter(
            project=project,
            name__in={name for name, _, _ in used},
            created_at__gte=earliest - DEFINITION_WINDOW,
            created_at__lte=latest,
            session__external_id__regex=r"^[0-9a-f]{32}$",
            # The orphan-root session is named after its one span (otlp._root_records).
            session__name__startswith="create_agent ",
        )
        .exclude(
            session__external_id__in=TraceLink.objects.filter(project=project).values("trace_id")
        )
        .exclude(session_id__in=[s.pk for s in sessions.values()])
        .select_related("session")
    )
    for definition in candidates:
        uses = sorted(
            (at, team)
            for name, at, team in used
            if name == definition.name
            and definition.created_at <= at <= definition.created_at + DEFINITION_WINDOW
        )
        if not uses:
            continue
        team = sessions[uses[0][1]]
        TraceLink.objects.create(
            project=project,
            trace_id=definition.session.external_id,
            session=team,
            reason=_definition_reason(definition.name, team.external_id),
        )
        _move_trace(definition.session, team)


def _linked(
    project: Project, by_type: dict[type, list[Any]]
) -> tuple[dict[str, TraceLinkRecord], dict[type, list[Any]]]:
    """The batch's trace links by trace id (taken out of `by_type`) and the other records by
    type, pointed at the sessions the links name."""
    links = _batch_links(project, by_type.pop(TraceLinkRecord, []), by_type.get(AgentRecord, []))
    return links, _follow_trace_links(project, by_type, links)


def _follow_trace_links(
    project: Project, by_type: dict[type, list[Any]], links: dict[str, TraceLinkRecord]
) -> dict[type, list[Any]]:
    """Point records of linked OTLP traces at their named session instead of the trace's own.

    A trace's records carry its hex trace id as session id. A TraceLinkRecord in this batch
    (`links`, by trace id), or a TraceLink stored earlier, names the session the trace belongs
    to. Returns the records (by type) with their session ids rewritten.
    """
    trace_ids = {r.session_id for group in by_type.values() for r in group}
    trace_ids = {t for t in trace_ids if len(t) == 32} - links.keys()
    mapping = {trace: link.session_id for trace, link in links.items()}
    if trace_ids:
        mapping |= dict(
            TraceLink.objects.filter(project=project, trace_id__in=trace_ids).values_list(
                "trace_id", "session__external_id"
            )
        )
    if not mapping:
        return by_type
    moved = {
        kind: [
            r if r.session_id not in mapping else replace(r, session_id=mapping[r.session_id])
            for r in group
        ]
        for kind, group in by_type.items()
    }
    # An AutoGen agent's create_agent trace does not name the run it joins (created earlier,
    # it would always be the earliest root); stored alone, it names its own session.
    defined = {trace for trace, link in links.items() if link.defined_agent}
    if defined and SessionRecord in moved:
        moved[SessionRecord] = [
            replace(new, name=None, name_at=None) if old.session_id in defined else new
            for old, new in zip(by_type[SessionRecord], moved[SessionRecord], strict=True)
        ]
    return moved


def _save_trace_links(
    project: Project, sessions: dict[str, Session], links: dict[str, TraceLinkRecord]
) -> None:
    """Store the batch's links, and move rows already stored under a trace's own session."""
    if not links:
        return
    traces = sorted(links)
    # Written out (ingest/sql.py), the stored links and the stray sessions in one statement:
    # every request of a session brings its traces' links.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1, trace_id, session_id, round_index, reason FROM ingest_tracelink "
            f"WHERE project_id = %s AND trace_id IN {sql.placeholders(traces)} "
            "UNION ALL SELECT 0, external_id, id, NULL, NULL FROM ingest_session "
            f"WHERE project_id = %s AND external_id IN {sql.placeholders(traces)}",
            [project.pk, *traces, project.pk, *traces],
        )
        rows = cursor.fetchall()
    stored = {tuple(row[1:]) for row in rows if row[0]}
    stray_pks = [row[2] for row in rows if not row[0]]
    # Rewriting an unchanged link would lock it until commit, and every request carrying a
    # span of that trace would queue behind it; links in sorted order against deadlocks.
    changed = [
        TraceLink(
            project=project,
            trace_id=trace,
            session_id=sessions[link.session_id].pk,
            round_index=link.round_index,
            reason=link.reason[:300],
        )
        for trace, link in sorted(links.items())
        if (trace, sessions[link.session_id].pk, link.round_index, link.reason[:300]) not in stored
    ]
    if changed:
        TraceLink.objects.bulk_create(
            changed,
            update_conflicts=True,
            unique_fields=["project", "trace_id"],
            update_fields=["session", "round_index", "reason"],
        )
    if stray_pks:
        for stray in Session.objects.filter(pk__in=stray_pks).only("pk", "external_id"):
            _move_trace(stray, sessions[links[stray.external_id].session_id])


def _move_trace(stray: Session, target: Session) -> None:
    """Rows of a trace stored before its link arrived move to the linked session."""
    already = target.spans.values("span_id")
    Span.objects.filter(session=stray, span_id__in=already).delete()
    Span.objects.filter(session=stray).update(session=target)
    TranscriptLine.objects.filter(session=stray).update(session=target)
    Agent.objects.filter(session=stray).exclude(
        external_id__in=target.agents.values("external_id")
    ).update(session=target)
    MetricSample.objects.filter(session=stray).update(session=target)
    # Traces that followed the stray trace by a span link follow it into its session.
    TraceLink.objects.filter(session=stray).update(session=target)
    Message.objects.filter(session=stray).exclude(
        message_id__in=target.agent_messages.values("message_id")
    ).update(session=target)
    Workflow.objects.filter(session=stray).exclude(
        workflow_id__in=target.workflows.values("workflow_id")
    ).update(session=target)
    stray.delete()
    Session.objects.filter(pk=target.pk).update(is_summary_stale=True)


def _estimated_costs(project: Project, records: list[SpanRecord]) -> dict[int, float]:
    """pricing.estimated_costs with the project's price table, read only when a call needs it."""
    if not any(r.is_cost_missing for r in records):
        return {}
    return estimated_costs(records, _price_table(project))


def _price_table(project: Project) -> dict[str, Price]:
    """The built-in prices with this project's overrides (admin: Model prices) on top."""
    # Written out (ingest/sql.py): a batch with an unpriced LLM call reads it every time.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT model, input_per_million, output_per_million, cached_input_per_million, "
            f"reasoning_per_million FROM {ModelPrice._meta.db_table} WHERE project_id = %s",
            [project.pk],
        )
        rows = cursor.fetchall()
    overrides = {
        model: Price(input=given, output=made, cached_input=cached, reasoning=reasoning)
        for model, given, made, cached, reasoning in rows
    }
    return {**default_prices(), **overrides}


def _session_ids_in(records: list[Record]) -> set[str]:
    return {r.session_id for r in records if r.session_id}


def _upsert_sessions(
    project: Project, records: list[Record]
) -> tuple[dict[str, Session], set[int]]:
    """Create sessions any record names (inferred until their start arrives), merging the
    records into the new ones; stored sessions are merged at the end (_merge_stored_sessions).
    Returns the sessions by external id and the pks of those this batch created, which have
    nothing stored under them yet (the later upserts skip looking for their rows)."""
    wanted = _session_ids_in(records)
    if not wanted:
        return {}, set()
    ids = sorted(wanted)
    existing = {
        s.external_id: s
        for s in sql.select_rows(
            Session,
            f"t.project_id = %s AND t.external_id IN {sql.placeholders(ids)}",
            [project.pk, *ids],
        )
    }
    created = [
        Session(project=project, external_id=sid, is_inferred=True)
        for sid in sorted(wanted - existing.keys())
    ]
    news = {session.external_id: session for session in created}
    for session_id, change in session_changes([r for r in records if r.session_id in news]).items():
        merge_change(news[session_id], change)
    existing.update(news)
    _create(created)
    if created and created[0].pk is None:
        # Backends that cannot return ids from a bulk insert: read them back in one query.
        pks = dict(
            Session.objects.filter(
                project=project, external_id__in=[s.external_id for s in created]
            ).values_list("external_id", "pk")
        )
        for session in created:
            session.pk = pks[session.external_id]
    return existing, {s.pk for s in created}


def _merge_stored_sessions(
    sessions: dict[str, Session], created: set[int], records: list[Record]
) -> None:
    """Merge the batch into the sessions it did not create in its transaction (`created`), as
    its last write. On PostgreSQL one UPDATE merges each change into the row as it is when the
    UPDATE runs (_update_stored_sessions), so a concurrent batch's change to the same session
    is kept, not overwritten, without reading the rows again under a lock. A session the batch
    changes nothing in (by the row read at the start of the batch) is not written at all."""
    stored = {sid: s for sid, s in sessions.items() if s.pk not in created}
    if not stored:
        return
    changes = session_changes([r for r in records if r.session_id in stored])
    touched: dict[int, SessionChange] = {}
    for session_id, change in changes.items():
        session = stored[session_id]
        before = (*_merge_snapshot(session), session.is_summary_stale)
        merge_change(session, change)
        if (*_merge_snapshot(session), True) != before:
            touched[session.pk] = change
    if not touched:
        return
    if connection.vendor == "postgresql":
        _update_stored_sessions(touched)
        return
    # Elsewhere (SQLite: one writer at a time) the rows are read again and merged in Python.
    fresh = sql.select_rows(
        Session, f"t.id IN {sql.placeholders(list(touched))} ORDER BY t.id", list(touched)
    )
    for session in fresh:
        merge_change(session, touched[session.pk])
    _update_rows(fresh, SESSION_MERGE_FIELDS)


# session_merge.merge_change() in one statement. `s` is the row as it is when the UPDATE runs:
# after waiting for a concurrent writer's commit, PostgreSQL evaluates SET on the row that
# writer left (so every comparison with the stored row is here, not in a subquery, which would
# see the row as it was when the statement began). `v` is the batch's change. The rows are
# locked in id order first (the CTE), so two batches never deadlock; NO KEY UPDATE, as an
# UPDATE of these columns takes, since a plain FOR UPDATE also blocks the foreign-key checks of
# concurrent inserts. Names compare in code-point order (COLLATE "C"), as Python compares them.
TAKE_END = "v.has_end AND (s.ended_at IS NULL OR v.ended_at IS NULL OR v.ended_at >= s.ended_at)"
TAKE_NAME = (
    "v.name IS NOT NULL AND (v.name_at IS NULL OR s.name = '' OR (s.name_at IS NOT NULL AND "
    '(v.name_at, v.name COLLATE "C") < (s.name_at, s.name COLLATE "C")))'
)
UPDATE_STORED_SESSIONS = f"""
WITH v AS (
    SELECT * FROM unnest(
        %s::bigint[], %s::boolean[], %s::timestamptz[], %s::timestamptz[], %s::boolean[],
        %s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::jsonb[],
        %s::jsonb[], %s::jsonb[], %s::text[], %s::text[], %s::text[]
    ) AS v(id, is_started, started_at, earliest, has_end, ended_at, end_state,
           end_state_reason, name, name_at, tags, metadata, config, user_query,
           parent_external_id, group_key)
), locked AS (
    SELECT id FROM ingest_session WHERE id IN (SELECT id FROM v) ORDER BY id FOR NO KEY UPDATE
)
UPDATE ingest_session s SET
    started_at = CASE
        WHEN v.started_at IS NULL THEN CASE
            WHEN (s.is_inferred AND NOT v.is_started) OR s.started_at IS NULL
            THEN LEAST(s.started_at, v.earliest) ELSE s.started_at END
        WHEN s.is_inferred AND NOT v.is_started THEN LEAST(v.started_at, v.earliest)
        WHEN s.is_inferred OR s.started_at IS NULL THEN v.started_at
        ELSE LEAST(s.started_at, v.started_at) END,
    is_inferred = s.is_inferred AND NOT v.is_started,
    ended_at = CASE WHEN {TAKE_END} THEN v.ended_at ELSE s.ended_at END,
    end_state = CASE WHEN {TAKE_END} THEN v.end_state ELSE s.end_state END,
    end_state_reason = CASE WHEN {TAKE_END} THEN v.end_state_reason ELSE s.end_state_reason END,
    name = CASE WHEN {TAKE_NAME} THEN v.name ELSE s.name END,
    name_at = CASE WHEN {TAKE_NAME} THEN v.name_at ELSE s.name_at END,
    tags = COALESCE(v.tags, s.tags),
    metadata = CASE WHEN v.metadata IS NULL THEN s.metadata
        ELSE COALESCE(s.metadata, '{{}}'::jsonb) || v.metadata END,
    config = COALESCE(v.config, s.config),
    user_query = COALESCE(v.user_query, s.user_query),
    parent_external_id = COALESCE(v.parent_external_id, s.parent_external_id),
    group_key = COALESCE(v.group_key, s.group_key),
    is_summary_stale = true
FROM v JOIN locked USING (id)
WHERE s.id = v.id
"""


def _update_stored_sessions(changes: dict[int, SessionChange]) -> None:
    """PostgreSQL: merge each change into its stored session (by pk) in one statement."""
    ids = sorted(changes)
    ordered = [changes[pk] for pk in ids]

    def column(name: str) -> list[Any]:
        return [getattr(change, name) for change in ordered]

    def json_column(name: str) -> list[str | None]:
        return [None if value is None else _json_bytes(value).decode() for value in column(name)]

    params = [
        ids,
        column("is_started"),
        column("started_at"),
        column("earliest"),
        column("has_end"),
        column("ended_at"),
        column("end_state"),
        column("end_state_reason"),
        column("name"),
        column("name_at"),
        json_column("tags"),
        json_column("metadata"),
        json_column("config"),
        column("user_query"),
        column("parent_external_id"),
        column("group_key"),
    ]
    with connection.cursor() as cursor:
        cursor.execute(UPDATE_STORED_SESSIONS, params)


def _merge_snapshot(session: Session) -> tuple[Any, ...]:
    return tuple(getattr(session, name) for name in SESSION_MERGE_FIELDS[:-1])


def _upsert_agents(
    project: Project,
    sessions: dict[str, Session],
    new_sessions: set[int],
    records: list[AgentRecord],
) -> None:
    if not records:
        return
    keys = {(sessions[r.session_id].pk, r.agent_id) for r in records}
    existing = _stored_rows(Agent, ("session", "external_id"), keys, new_sessions)
    created: dict[tuple[int, str], Agent] = {}
    for record in records:
        key = (sessions[record.session_id].pk, record.agent_id)
        agent = existing.get(key) or created.get(key)
        if agent is None:
            agent = created[key] = Agent(
                project=project, session_id=key[0], external_id=record.agent_id
            )
        _merge_agent(agent, record)
    _create(list(created.values()))
    if existing:
        Agent.objects.bulk_update(
            list(existing.values()),
            [
                "name",
                "role",
                "init_params",
                "created_at",
                "terminated_at",
                "termination_reason",
                "status",
            ],
        )


def _relink_span_agents(
    sessions: dict[str, Session], spans: list[SpanRecord], agents: list[AgentRecord]
) -> TraceWalk:
    """OTLP: a span's agent is its nearest agent ancestor in the whole stored trace, whatever
    request each span came in (SimpleSpanProcessor sends children before their parents). The
    mapping resolves what one request holds; this fills in the rest once the parent lands.
    Runs only when the batch has an OTLP span without its agent or a new agent span.

    The same walk over the stored trace finds what only the whole trace says: the delegation
    messages to store (_trace_messages) and the agents of hand-offs stored without a sender
    (_fill_pending_ends).
    """
    otlp = [r for r in spans if r.trace_id]
    if not otlp or not (agents or any(r.parent_span_id and not r.agent_id for r in otlp)):
        return TraceWalk()
    session_pks = sorted({sessions[r.session_id].pk for r in otlp})
    trace_ids = sorted({r.trace_id for r in otlp})
    in_sessions, session_params = sql.in_values("session_id", session_pks)
    in_traces, trace_params = sql.in_values("trace_id", trace_ids)
    # Written out (ingest/sql.py): this runs for nearly every one-span request, and the ORM's
    # compile of the two reads was most of its 2.4 ms (bench/README.md). The span read is every
    # span of the batch's traces: only the columns of the walk (times come in _trace_messages,
    # for the few delegations).
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT session_id, external_id, name FROM ingest_agent WHERE {in_sessions}",
            session_params,
        )
        agent_names = {(session, external): name for session, external, name in cursor}
        cursor.execute(
            "SELECT id, session_id, span_id, parent_span_id, agent_external_id, trace_id "
            f"FROM ingest_span WHERE {in_sessions} AND {in_traces}",
            [*session_params, *trace_params],
        )
        rows = cursor.fetchall()
    parent_of = {(row[1], row[2]): row[3] for row in rows}
    changed: list[Span] = []
    agent_of: dict[tuple[int, str], str] = {}
    newly: set[tuple[int, str]] = set()
    for pk, session, span_id, parent, current, *_ in rows:
        agent = _nearest_agent(session, parent, parent_of, agent_names)
        agent_of[(session, span_id)] = agent or current
        if agent and agent != current:
            changed.append(Span(pk=pk, agent_external_id=agent))
            newly.add((session, span_id))
    # The batch's own agent spans may be delegations even when the request held their caller.
    newly |= {(sessions[r.session_id].pk, r.agent_id) for r in agents if r.session_id in sessions}
    if not newly:
        # Nothing learnt: every delegation and pending end was settled when its span's agent
        # was (that is when the span's agent changes) or its agent span came.
        return TraceWalk(parent_of=parent_of)
    _update_rows(changed, ["agent_external_id"])
    external = {s.pk: s.external_id for s in sessions.values()}
    messages = _trace_messages(
        external, [r for r in rows if (r[1], r[2]) in newly], agent_of, agent_names
    )
    return TraceWalk(external, agent_of, agent_names, messages, newly, parent_of)


DELEGATION_PREFIX = "delegation:"
HANDOFF_PREFIX = "handoff:"


def _trace_messages(
    external: dict[int, str],
    rows: list[tuple[Any, ...]],
    agent_of: dict[tuple[int, str], str],
    agent_names: dict[tuple[int, str], str],
) -> list[AgentMessageRecord]:
    """Delegations, which only the whole stored trace shows (so they come out the same however
    its spans were split into requests): an agent span whose nearest agent ancestor is another
    agent (pydantic-ai's agent called through a tool, a smolagents managed agent) was called by
    it. An inferred message from caller to callee, sent and received when the callee starts,
    processed (or failed) when it ends; stored once."""
    calls: dict[tuple[int, str], tuple[Any, ...]] = {}
    for row in rows:
        session, span_id = row[1], row[2]
        callee = agent_names.get((session, span_id), "")
        caller = agent_names.get((session, agent_of.get((session, span_id), "")), "")
        if callee and caller and caller != callee:
            calls[(session, f"{DELEGATION_PREFIX}{span_id}"[:128])] = row
    if not calls:
        return []
    stored = set(
        Message.objects.filter(
            session_id__in={k[0] for k in calls}, message_id__in={k[1] for k in calls}
        ).values_list("session_id", "message_id")
    )
    calls = {key: row for key, row in calls.items() if key not in stored}
    times = {
        pk: (started, ended, status)
        for pk, started, ended, status in Span.objects.filter(
            pk__in=[row[0] for row in calls.values()]
        ).values_list("pk", "started_at", "ended_at", "status")
    }
    records: list[AgentMessageRecord] = []
    for (session, message_id), row in calls.items():
        pk, _, span_id, _, _, trace_id = row
        started, ended, status = times[pk]
        callee = agent_names[(session, span_id)]
        caller = agent_names[(session, agent_of[(session, span_id)])]
        base = f"otlp-delegation:{trace_id}:{span_id}"
        sent = AgentMessageRecord(
            record_id=f"{base}:sent",
            session_id=external[session],
            message_id=message_id,
            stage="sent",
            at=started,
            sender=caller,
            receivers=(callee,),
            channel="delegation",
            metadata={"observatory.inferred": True, "observatory.rule": "agent span under agent"},
            agent_id=caller,
            trace_id=trace_id,
        )
        received = replace(
            sent,
            record_id=f"{base}:received",
            stage="received",
            sender=None,
            receivers=None,
            metadata=None,
            agent_id=callee,
        )
        records += [sent, received]
        if ended is not None:
            stage = "failed" if status == Span.Status.ERROR else "processed"
            records.append(replace(received, record_id=f"{base}:{stage}", stage=stage, at=ended))
    return records


@dataclass
class TraceWalk:
    """What _relink_span_agents learnt of the stored traces of a batch: each span's agent and
    each agent span's name (by session pk and span id), and the messages it derived."""

    external: dict[int, str] = field(default_factory=dict)
    agent_of: dict[tuple[int, str], str] = field(default_factory=dict)
    agent_names: dict[tuple[int, str], str] = field(default_factory=dict)
    messages: list[AgentMessageRecord] = field(default_factory=list)
    # (session pk, span id) of the spans whose agent this batch learnt.
    newly: set[tuple[int, str]] = field(default_factory=set)
    # Each stored span's parent in the batch's traces, when the walk read them (else None).
    parent_of: dict[tuple[int, str], str] | None = None

    def name_of(self, session: int, span_id: str) -> str:
        """The name of the agent span `span_id` ran under, or ""."""
        return self.agent_names.get((session, self.agent_of.get((session, span_id), "")), "")


def _fill_pending_ends(walk: TraceWalk) -> None:
    """After the batch's messages and steps are stored: the agents the mapping could not name
    because they were in another request (otlp_flows.agent_pending), now that the walk of the
    stored trace found them. Hand-offs without a sender (CrewAI's delegation tool span before
    its agent's), messaging spans' senders and receivers, steps without an agent."""
    if not walk.external:
        return
    filled = _fill_message_ends(walk)
    if filled:
        Message.objects.bulk_update(filled, ["sender", "receivers"])
    session_pks = sorted(walk.external)
    span_ids = sorted({span for _, span in walk.newly})
    # Written out (ingest/sql.py): every request that brings an agent span runs it.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT st.id, st.step_id, w.session_id FROM ingest_step st JOIN ingest_workflow w "
            f"ON w.id = st.workflow_id WHERE w.session_id IN {sql.placeholders(session_pks)} "
            f"AND st.agent_external_id = '' AND st.step_id IN {sql.placeholders(span_ids)}",
            [*session_pks, *span_ids],
        )
        rows = cursor.fetchall()
    steps = [
        Step(pk=pk, agent_external_id=name)
        for pk, step_id, session in rows
        if (name := walk.name_of(session, step_id))
    ]
    _update_rows(steps, ["agent_external_id"])


def _fill_message_ends(walk: TraceWalk) -> list[Message]:
    sessions = walk.external.keys()
    filled: dict[int, Message] = {}
    for message in Message.objects.filter(
        session_id__in=sessions,
        sender="",
        message_id__in={f"{HANDOFF_PREFIX}{span}" for _, span in walk.newly},
    ).only("pk", "session_id", "message_id", "sender", "receivers"):
        name = walk.name_of(message.session_id, message.message_id[len(HANDOFF_PREFIX) :])
        if name:
            message.sender = name
            filled[message.pk] = message
    marked = Message.objects.filter(session_id__in=sessions).filter(
        Q(body__metadata__has_key=SENDER_SPAN_KEY) | Q(body__metadata__has_key=RECEIVER_SPAN_KEY)
    )
    for found in marked.select_related("body").only(
        "pk", "session_id", "sender", "receivers", "body__metadata"
    ):
        message = filled.get(found.pk, found)
        said = found.body.metadata or {}
        sender = walk.name_of(message.session_id, str(said.get(SENDER_SPAN_KEY, "")))
        receiver = walk.name_of(message.session_id, str(said.get(RECEIVER_SPAN_KEY, "")))
        if sender and message.sender != sender:
            message.sender = sender
            filled[message.pk] = message
        if receiver and message.receivers != [receiver]:
            message.receivers = [receiver]
            filled[message.pk] = message
    return list(filled.values())


def _nearest_agent(
    session: int,
    parent: str,
    parent_of: dict[tuple[int, str], str],
    agents: Collection[tuple[int, str]],
) -> str:
    return next((key[1] for key in _ancestors(session, parent, parent_of) if key in agents), "")


def _ancestors(
    session: int, parent: str, parent_of: dict[tuple[int, str], str]
) -> Iterator[tuple[int, str]]:
    """(session pk, span id) of `parent` and the spans above it in the stored trace, nearest
    first; bounded, so a cycle in agent-written parent ids cannot loop."""
    seen = 0
    while parent and seen <= len(parent_of):
        yield (session, parent)
        parent = parent_of.get((session, parent), "")
        seen += 1


def _merge_agent(agent: Agent, record: AgentRecord) -> None:
    for attr, value in (("name", record.name), ("role", record.role)):
        if value is not None:
            setattr(agent, attr, value)
    if record.init_params is not None:
        agent.init_params = record.init_params
    if record.action == "created":
        agent.created_at = record.at or agent.created_at
    else:
        agent.terminated_at = record.at or agent.terminated_at or timezone.now()
        agent.termination_reason = record.reason or agent.termination_reason
        agent.status = Agent.Status.TERMINATED


def _merge_span_records(records: list[SpanRecord]) -> list[SpanRecord]:
    """Fold records for the same span within one batch, later non-empty fields winning."""
    merged: dict[tuple[str, str], SpanRecord] = {}
    for record in records:
        key = (record.session_id, record.span_id)
        earlier = merged.get(key)
        merged[key] = record if earlier is None else _fold(earlier, record)
    return list(merged.values())


def _is_empty(value: Any) -> bool:
    return value is None or value in ("", "unset") or value in ({}, [], ())


def _fold(earlier: SpanRecord, later: SpanRecord) -> SpanRecord:
    changes = {
        f.name: getattr(later, f.name)
        for f in fields(SpanRecord)
        if not _is_empty(getattr(later, f.name))
    }
    changes["started_at"] = min(earlier.started_at, later.started_at)
    changes["attributes"] = {**earlier.attributes, **later.attributes}
    return replace(earlier, **changes)


def _upsert_spans(
    project: Project,
    sessions: dict[str, Session],
    new_sessions: set[int],
    records: list[SpanRecord],
) -> None:
    records = _merge_span_records(records)
    if not records:
        return
    by_key = {(sessions[r.session_id].pk, r.span_id): r for r in records}
    costs = _estimated_costs(project, records)
    existing = _stored_rows(Span, ("session", "span_id"), set(by_key), new_sessions)
    new_keys = [key for key in by_key if key not in existing]
    if new_keys and connection.vendor == "postgresql":
        _copy_new_spans(project, new_keys, by_key, costs)
    elif new_keys:
        _bulk_create_new_spans(project, new_keys, by_key, costs)
    _merge_existing_spans(existing, by_key, costs)


def _stored_rows(
    model: type[M], key_fields: tuple[str, str], keys: set[tuple[int, str]], new_parents: set[int]
) -> dict[tuple[int, str], M]:
    """The rows of `model` already stored under these (parent pk, id) keys, `key_fields` naming
    the parent foreign key and the id field. Keys under a parent this batch created cannot have
    any and are not looked up: for a batch of new traces, no query at all."""
    parent, child = key_fields
    wanted = {key for key in keys if key[0] not in new_parents}
    if not wanted:
        return {}
    parents, children = sorted({k[0] for k in wanted}), sorted({k[1] for k in wanted})
    in_parents, parent_params = sql.in_values(f"t.{model._meta.get_field(parent).column}", parents)
    in_children, child_params = sql.in_values(f"t.{model._meta.get_field(child).column}", children)
    # Written out (ingest/sql.py): every request of a stored session runs this for its spans.
    rows = sql.select_rows(
        model, f"{in_parents} AND {in_children}", [*parent_params, *child_params]
    )
    found = {(getattr(row, f"{parent}_id"), getattr(row, child)): row for row in rows}
    return {key: row for key, row in found.items() if key in wanted}


SPAN_COPY_COLUMNS = ("id", "project_id", "session_id", "span_id", *SPAN_MERGE_FIELDS)


def _span_columns(record: SpanRecord, estimated_cost: float | None) -> tuple[Any, ...]:
    """A new span's SPAN_MERGE_FIELDS values, in that order, straight from its record (and the
    cost the price table gives it, if any)."""
    started_at, ended_at = record.started_at, record.ended_at
    cost = record.cost if estimated_cost is None else estimated_cost
    return (
        record.parent_span_id,
        record.trace_id,
        record.kind,
        record.name,
        record.agent_id,
        started_at,
        ended_at,
        _duration_ms(started_at, ended_at),
        record.status,
        record.model,
        record.provider,
        record.prompt_tokens,
        record.completion_tokens,
        cost,
        estimated_cost is not None,
        record.error_type,
        record.error_message[:2000],
    )


def _bulk_create_new_spans(
    project: Project,
    new_keys: list[tuple[int, str]],
    by_key: dict[tuple[int, str], SpanRecord],
    costs: dict[int, float],
) -> None:
    new_spans = [
        Span(
            project=project,
            session_id=key[0],
            span_id=key[1],
            **dict(
                zip(
                    SPAN_MERGE_FIELDS,
                    _span_columns(by_key[key], costs.get(id(by_key[key]))),
                    strict=True,
                )
            ),
        )
        for key in new_keys
    ]
    Span.objects.bulk_create(new_spans)
    if new_spans[0].pk is None:
        # Backends that cannot return ids from a bulk insert: read them back in one query.
        rows = Span.objects.filter(
            session_id__in={k[0] for k in new_keys}, span_id__in={k[1] for k in new_keys}
        ).values_list("session_id", "span_id", "pk")
        pks = {(session_pk, span_id): pk for session_pk, span_id, pk in rows}
        for key, span in zip(new_keys, new_spans, strict=True):
            span.pk = pks[key]
    SpanPayload.objects.bulk_create(
        [_payload_row(span.pk, by_key[k]) for k, span in zip(new_keys, new_spans, strict=True)]
    )


def _copy_new_spans(
    project: Project,
    new_keys: list[tuple[int, str]],
    by_key: dict[tuple[int, str], SpanRecord],
    costs: dict[int, float],
) -> None:
    """PostgreSQL: COPY spans and payloads as plain tuples built from the records. Model
    instances and bulk_create's parameter quoting were over half of ingest's CPU
    (bench/README.md)."""
    pks = _next_ids(Span, len(new_keys))
    spans, payloads = [], []
    project_pk = project.pk
    for pk, key in zip(pks, new_keys, strict=True):
        record = by_key[key]
        estimated = costs.get(id(record))
        spans.append((pk, project_pk, key[0], key[1], *_span_columns(record, estimated)))
        payloads.append((pk, *_payload_values(record)))
    _copy_rows(Span, SPAN_COPY_COLUMNS, spans)
    _copy_rows(SpanPayload, ("span_id", *PAYLOAD_FIELDS), payloads)


# PostgreSQL type names for binary COPY, by Django field type (foreign keys: their target's).
COPY_TYPES = {
    "AutoField": "int4",
    "BigAutoField": "int8",
    "BigIntegerField": "int8",
    "BooleanField": "bool",
    "CharField": "varchar",
    "DateTimeField": "timestamptz",
    "FloatField": "float8",
    "IntegerField": "int4",
    "JSONField": "jsonb",
    "TextField": "text",
}


def _copy_types(model: type[Model], columns: tuple[str, ...]) -> list[str]:
    by_column = {f.column: f for f in model._meta.concrete_fields}
    types = []
    for name in columns:
        field = by_column[name]
        target = field.target_field if field.is_relation else field
        types.append(COPY_TYPES[target.get_internal_type()])
    return types


def _json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # what orjson refuses (non-str keys, huge ints), json still writes
        return json.dumps(value, ensure_ascii=False, default=str).encode()


def _copy_rows(model: type[Model], columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL: rows of Python values (those of `columns`, in order; JSON columns take the
    objects) by binary COPY, which spares both sides the text escaping and parsing of the usual
    COPY and the per-row statements of an INSERT (bench/README.md)."""
    # wrap_database_errors turns psycopg's UniqueViolation into Django's IntegrityError, which
    # save_records() retries.
    with connection.cursor() as cursor, connection.wrap_database_errors:
        raw = cursor.cursor
        set_json_dumps(_json_bytes, raw)
        sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with raw.copy(sql) as copy:
            copy.set_types(_copy_types(model, columns))
            for row in rows:
                copy.write_row(row)


def _apply_span(span: Span, record: SpanRecord, estimated_cost: float | None) -> None:
    """Merge a later record into a stored span: what the record says wins, blanks do not."""
    values = {
        "parent_span_id": record.parent_span_id,
        "trace_id": record.trace_id,
        "kind": record.kind,
        "name": record.name,
        "agent_external_id": record.agent_id,
        "ended_at": record.ended_at,
        "status": record.status,
        "model": record.model,
        "provider": record.provider,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cost": record.cost,
        "error_type": record.error_type,
        "error_message": record.error_message[:2000],
    }
    for attr, value in values.items():
        if not _is_empty(value):
            setattr(span, attr, value)
    if estimated_cost is not None:
        span.cost, span.is_cost_estimated = estimated_cost, True
    elif record.cost is not None:
        span.is_cost_estimated = False
    if span.started_at is None or record.started_at < span.started_at:
        span.started_at = record.started_at
    if span.ended_at is not None:
        span.duration_ms = _duration_ms(span.started_at, span.ended_at)


def _payload_values(record: SpanRecord) -> tuple[Any, ...]:
    """A new span's PAYLOAD_FIELDS values, in that order."""
    return (
        record.params,
        record.returns,
        record.prompt,
        record.completion,
        record.stack_trace,
        record.attributes,
        list(record.unmapped_keys),
    )


def _payload_row(span_pk: int, record: SpanRecord) -> SpanPayload:
    return SpanPayload(
        span_id=span_pk, **dict(zip(PAYLOAD_FIELDS, _payload_values(record), strict=True))
    )


def _merge_existing_spans(
    existing: dict[tuple[int, str], Span],
    by_key: dict[tuple[int, str], SpanRecord],
    costs: dict[int, float],
) -> None:
    if not existing:
        return
    for key, span in existing.items():
        _apply_span(span, by_key[key], costs.get(id(by_key[key])))
    Span.objects.bulk_update(list(existing.values()), SPAN_MERGE_FIELDS)
    stored = SpanPayload.objects.in_bulk([s.pk for s in existing.values()])
    missing: list[SpanPayload] = []
    for key, span in existing.items():
        payload = stored.get(span.pk)
        if payload is None:
            payload = SpanPayload(span_id=span.pk)
            missing.append(payload)
        record = by_key[key]
        for name in PAYLOAD_FIELDS:
            value = getattr(record, name)
            if name == "attributes":
                value = {**(payload.attributes or {}), **value}
            if not _is_empty(value):
                setattr(payload, name, value)
    SpanPayload.objects.bulk_update(list(stored.values()), PAYLOAD_FIELDS)
    SpanPayload.objects.bulk_create(missing)


def _insert_transcript(
    project: Project, sessions: dict[str, Session], records: list[TranscriptRecord]
) -> None:
    TranscriptLine.objects.bulk_create(
        [
            TranscriptLine(
                project=project,
                session_id=sessions[r.session_id].pk,
                client_id=r.record_id,
                role=r.role,
                text=r.text,
                agent_external_id=r.agent_id,
                span_id=r.span_id,
                trace_id=r.trace_id,
                at=r.at,
            )
            for r in records
        ],
        ignore_conflicts=True,
    )


def _insert_metrics(
    project: Project, sessions: dict[str, Session], records: list[MetricRecord]
) -> None:
    MetricSample.objects.bulk_create(
        [
            MetricSample(
                project=project,
                session_id=sessions[r.session_id].pk if r.session_id else None,
                client_id=r.record_id,
                name=r.name,
                value=r.value,
                unit=r.unit,
                agent_external_id=r.agent_id,
                attributes=r.attributes,
                at=r.at,
            )
            for r in records
        ],
        ignore_conflicts=True,
    )


# --- Scores -------------------------------------------------------------------------------

SCORE_FIELDS = (
    "session_id",
    "span_id",
    "name",
    "data_type",
    "value",
    "label",
    "comment",
    "source",
    "author",
    "created_at",
)


def _upsert_scores(
    project: Project, sessions: dict[str, Session], records: list[ScoreRecord]
) -> set[str]:
    """Create or replace scores by (project, client id), the last record of an id in the batch
    winning; a record without a time keeps the stored one (else: now). Returns the ids whose
    stored score the batch left as it was (a plain re-send). Two queries and the writes."""
    if not records:
        return set()
    latest = {record.record_id: record for record in records}
    stored = {
        score.client_id: score
        for score in Score.objects.filter(project=project, client_id__in=list(latest))
    }
    now = timezone.now()
    new, changed, unchanged = [], [], set()
    for client_id, record in latest.items():
        score = stored.get(client_id) or Score(project=project, client_id=client_id)
        before = _score_snapshot(score)
        _apply_score(score, record, sessions[record.session_id].pk, now)
        if score.pk is None:
            new.append(score)
        elif _score_snapshot(score) != before:
            changed.append(score)
        else:
            unchanged.add(client_id)
    Score.objects.bulk_create(new, batch_size=2000)
    if changed:
        Score.objects.bulk_update(changed, [*SCORE_FIELDS, "updated_at"], batch_size=2000)
    return unchanged


def _score_snapshot(score: Score) -> tuple[Any, ...]:
    return tuple(getattr(score, name) for name in SCORE_FIELDS)


def _apply_score(score: Score, record: ScoreRecord, session_pk: int, now: datetime) -> None:
    score.session_id = session_pk
    score.span_id = record.span_id
    score.name = record.name
    score.data_type = record.data_type
    score.value = record.value
    score.label = record.label
    score.comment = record.comment
    score.source = record.source
    score.author = record.author
    score.created_at = record.at or score.created_at or now
    score.updated_at = now


def _mark_unchanged_scores(
    records: list[tuple[int, Record]], unchanged: set[str], result: SaveResult
) -> None:
    """A score re-sent as it is stored is reported as a duplicate, like a repeated record."""
    if not unchanged:
        return
    for index, record in records:
        if isinstance(record, ScoreRecord) and record.record_id in unchanged:
            result.statuses[index] = "duplicate"


def _test_result_scores(records: list[TestRecord]) -> list[ScoreRecord]:
    """A test result's scores, one copy for each session it links, keyed by run, test, name and
    session: a re-run test that scores again replaces its scores."""
    found = []
    for record in records:
        if not isinstance(record, TestResultRecord) or not record.scores:
            continue
        for session_id in record.session_ids:
            for score in record.scores:
                key = f"test:{record.run_id}:{record.test_id}:{score.name}:{session_id}"
                if len(key) > 128:
                    key = "test:" + hashlib.sha256(key.encode()).hexdigest()
                found.append(
                    replace(score, record_id=key, session_id=session_id, author=record.test_id)
                )
    return found


def save_human_score(
    session: Session, *, span_id: str, record: ScoreRecord, author: str
) -> tuple[Score, Score | None]:
    """Store a person's score from the page: one per person, name and span of a session, so
    scoring again changes their score. Returns the score and a copy of what it was before
    (None: new), for the audit entry. Call inside the request's transaction."""
    key = f"human:{session.pk}:{span_id}:{record.name}:{author}"
    if len(key) > 128:
        key = "human:" + hashlib.sha256(key.encode()).hexdigest()
    stored = Score.objects.filter(project_id=session.project_id, client_id=key).first()
    before = None
    if stored is not None:
        before = Score(**{name: getattr(stored, name) for name in SCORE_FIELDS})
    human = replace(
        record, record_id=key, session_id=session.external_id, span_id=span_id, source="human"
    )
    human = replace(human, author=author)
    _upsert_scores(session.project, {session.external_id: session}, [human])
    return Score.objects.get(project_id=session.project_id, client_id=key), before


# --- Test runs and results (records test_run.start / test_run.end / test_result, JUnit XML) ----

TestRecord = TestRunRecord | TestResultRecord
TEST_RUN_MERGE_FIELDS = (
    "tier",
    "suite",
    "commit",
    "branch",
    "environment",
    "source",
    "started_at",
    "ended_at",
    "metadata",
    "is_inferred",
)
TEST_RESULT_FIELDS = (
    "name",
    "tier",
    "outcome",
    "duration_ms",
    "started_at",
    "error_message",
    "error_trace",
    "metrics",
    "session_ids",
    "scores",
)


def _save_test_records(project: Project, records: list[TestRecord]) -> set[int]:
    """Upsert the runs these records name (inferred until their start arrives), then the results
    by (run, test_id), a later result for the same test replacing the earlier. Three queries."""
    if not records:
        return set()
    runs = _upsert_test_runs(project, records)
    results: dict[tuple[int, str], TestResult] = {}
    for record in records:
        if isinstance(record, TestResultRecord):
            run = runs[record.run_id]
            results[(run.pk, record.test_id)] = _result_row(project, run, record)
    TestResult.objects.bulk_create(
        list(results.values()),
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["run", "test_id"],
        update_fields=list(TEST_RESULT_FIELDS),
    )
    return {run.pk for run in runs.values()}


def _result_row(project: Project, run: TestRun, record: TestResultRecord) -> TestResult:
    return TestResult(
        project=project,
        run=run,
        test_id=record.test_id,
        name=record.name or record.test_id,
        tier=record.tier,
        outcome=record.outcome,
        duration_ms=record.duration_ms,
        started_at=record.started_at,
        error_message=record.error_message[:2000],
        error_trace=record.error_trace,
        metrics=record.metrics,
        session_ids=list(record.session_ids),
        scores=[_score_json(score) for score in record.scores],
    )


def _score_json(score: ScoreRecord) -> dict[str, Any]:
    return {
        "name": score.name,
        "data_type": score.data_type,
        "value": score.value,
        "label": score.label,
        "comment": score.comment,
    }


def _upsert_test_runs(project: Project, records: list[TestRecord]) -> dict[str, TestRun]:
    wanted = {record.run_id for record in records}
    stored = TestRun.objects.filter(project=project, external_id__in=wanted)
    runs = {run.external_id: run for run in stored}
    before = {run.external_id: _run_snapshot(run) for run in runs.values()}
    created = [
        TestRun(project=project, external_id=run_id, is_inferred=True)
        for run_id in wanted - runs.keys()
    ]
    runs.update({run.external_id: run for run in created})
    for record in records:
        run = runs[record.run_id]
        if isinstance(record, TestRunRecord):
            _merge_test_run(run, record)
        elif record.started_at is not None and (
            run.started_at is None or (run.is_inferred and record.started_at < run.started_at)
        ):
            run.started_at = record.started_at
    TestRun.objects.bulk_create(created)
    changed = [runs[key] for key, old in before.items() if _run_snapshot(runs[key]) != old]
    if changed:
        TestRun.objects.bulk_update(changed, TEST_RUN_MERGE_FIELDS)
    return runs


def _run_snapshot(run: TestRun) -> tuple[Any, ...]:
    return tuple(getattr(run, name) for name in TEST_RUN_MERGE_FIELDS)


def _merge_test_run(run: TestRun, record: TestRunRecord) -> None:
    if record.action == "start":
        run.is_inferred = False
    for name in ("tier", "suite", "commit", "branch", "environment", "source"):
        value = getattr(record, name)
        if value is not None:
            setattr(run, name, value)
    run.started_at = record.started_at or run.started_at
    run.ended_at = record.ended_at or run.ended_at
    if record.metadata is not None:
        run.metadata = {**(run.metadata or {}), **record.metadata}


# --- Inter-agent messages (record agent_message) -------------------------------------------

# resolved_at and requeued_at are set by people (resolve, requeue), never by a lifecycle record.
MESSAGE_MERGE_FIELDS = tuple(f for f in STATE_FIELDS if f not in ("resolved_at", "requeued_at"))
MessageKey = tuple[int, str]


def _message_state(message: Message) -> MessageState:
    return MessageState(**{name: getattr(message, name) for name in STATE_FIELDS})


def _upsert_messages(
    project: Project, sessions: dict[str, Session], records: list[AgentMessageRecord]
) -> None:
    """Merge lifecycle records into messages by (session, message_id), in any order, then store
    their content and one MessageEvent per record. A fixed number of queries per batch."""
    if not records:
        return
    keyed = [((sessions[r.session_id].pk, r.message_id), r) for r in records]
    wanted = {key for key, _ in keyed}
    stored = Message.objects.filter(
        session_id__in={k[0] for k in wanted}, message_id__in={k[1] for k in wanted}
    )
    messages = {(m.session_id, m.message_id): m for m in stored}
    messages = {key: m for key, m in messages.items() if key in wanted}
    before = {key: _message_state(m) for key, m in messages.items()}
    states = dict(before)
    for key, record in keyed:
        states[key] = merge_message(states.get(key) or MessageState(), record)
    new_keys = [key for key in states if key not in messages]
    for key in new_keys:
        messages[key] = Message(project=project, session_id=key[0], message_id=key[1])
    for key, state in states.items():
        for name in MESSAGE_MERGE_FIELDS:
            setattr(messages[key], name, getattr(state, name))
    _create_messages(messages, new_keys)
    changed = [messages[key] for key, state in before.items() if states[key] != state]
    _update_rows(changed, MESSAGE_MERGE_FIELDS)
    _save_message_contents(messages, keyed, set(new_keys))
    MessageEvent.objects.bulk_create(
        [_message_event(project, messages[key].pk, record) for key, record in keyed],
        ignore_conflicts=True,
    )


def _update_rows(rows: Sequence[Model], names: Sequence[str]) -> None:
    """UPDATE these rows' columns in one executemany statement. bulk_update builds a CASE per
    column over every row, which cost seconds for a batch of merged messages (bench/README.md)."""
    if not rows:
        return
    meta = type(rows[0])._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in names]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    params = [
        [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]
        + [row.pk]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _create_messages(messages: dict[MessageKey, Message], new_keys: list[MessageKey]) -> None:
    rows = [messages[key] for key in new_keys]
    if not rows:
        return
    Message.objects.bulk_create(rows)
    if rows[0].pk is not None:
        return
    # Backends that cannot return ids from a bulk insert: read them back in one query.
    found = Message.objects.filter(
        session_id__in={k[0] for k in new_keys}, message_id__in={k[1] for k in new_keys}
    ).values_list("session_id", "message_id", "pk")
    pks = {(session_pk, message_id): pk for session_pk, message_id, pk in found}
    for key in new_keys:
        messages[key].pk = pks[key]


def _save_message_contents(
    messages: dict[MessageKey, Message],
    keyed: list[tuple[MessageKey, AgentMessageRecord]],
    new_keys: set[MessageKey],
) -> None:
    """The latest content a record carries wins; metadata is merged key by key."""
    said = [(key, r) for key, r in keyed if r.content is not None or r.metadata is not None]
    if not said:
        return
    old_pks = {messages[key].pk for key, _ in said if key not in new_keys}
    stored = MessageContent.objects.in_bulk(list(old_pks)) if old_pks else {}
    missing: dict[int, MessageContent] = {}
    for key, record in said:
        pk = messages[key].pk
        body = stored.get(pk) or missing.setdefault(pk, MessageContent(message_id=pk))
        if record.content is not None:
            body.content = record.content
        if record.metadata is not None:
            body.metadata = {**(body.metadata or {}), **record.metadata}
    MessageContent.objects.bulk_create(list(missing.values()))
    if stored:
        MessageContent.objects.bulk_update(list(stored.values()), ["content", "metadata"])


def _message_event(project: Project, message_pk: int, record: AgentMessageRecord) -> MessageEvent:
    return MessageEvent(
        project=project,
        message_id=message_pk,
        client_id=record.record_id,
        stage=record.stage,
        at=record.at,
        agent_external_id=record.agent_id,
        attempt=record.attempt,
        error_type=(record.error_type or "")[:200],
        error_message=(record.error_message or "")[:2000],
    )


# --- Workflows and steps (records workflow.start/end, step.start/end) ----------------------

WORKFLOW_MERGE_FIELDS = (
    "name",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "result_summary",
    "metadata",
    "is_inferred",
)
STEP_MERGE_FIELDS = (
    "name",
    "agent_external_id",
    "depends_on",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "result_summary",
    "error_type",
    "error_message",
)
FlowRecord = WorkflowRecord | StepRecord


def _upsert_workflows(
    project: Project,
    sessions: dict[str, Session],
    new_sessions: set[int],
    records: list[FlowRecord],
    claimed: set[int] | None = None,
) -> None:
    """Workflows by (session, workflow_id), inferred until their start arrives, then their steps
    by (workflow, step_id); start and end merge in any order. A fixed number of queries.
    `claimed`: pks of workflows _claim_shared_rows created for this batch (no steps yet)."""
    if not records:
        return
    keys = {(sessions[r.session_id].pk, r.workflow_id) for r in records}
    workflows = _stored_rows(Workflow, ("session", "workflow_id"), keys, new_sessions)
    existing = sorted(workflows.values(), key=lambda w: w.pk)  # id order: no deadlocks
    before = {w.pk: _workflow_snapshot(w) for w in existing}
    created = []
    for key in keys - workflows.keys():
        workflow = Workflow(
            project=project, session_id=key[0], workflow_id=key[1], is_inferred=True
        )
        workflows[key] = workflow
        created.append(workflow)
    by_key: dict[tuple[int, str], list[FlowRecord]] = {}
    for record in records:
        by_key.setdefault((sessions[record.session_id].pk, record.workflow_id), []).append(record)
    changes = {key: workflow_change(group) for key, group in by_key.items()}
    for key, change in changes.items():
        merge_workflow_change(workflows[key], change)
    _create(created)
    # Only changed rows: an UPDATE locks the row until commit.
    changed = [w for w in existing if _workflow_snapshot(w) != before[w.pk]]
    if changed and connection.vendor == "postgresql":
        _update_stored_workflows({w.pk: changes[(w.session_id, w.workflow_id)] for w in changed})
    elif changed:
        _update_rows(changed, WORKFLOW_MERGE_FIELDS)  # SQLite: one writer, the rows are current
    if created and created[0].pk is None:
        pks = Workflow.objects.filter(
            session_id__in={k[0] for k in keys}, workflow_id__in={k[1] for k in keys}
        ).values_list("session_id", "workflow_id", "pk")
        for session_pk, workflow_id, pk in pks:
            workflows[(session_pk, workflow_id)].pk = pk
    steps = [r for r in records if isinstance(r, StepRecord)]
    _upsert_steps(
        project,
        {k: w.pk for k, w in workflows.items()},
        {w.pk for w in created} | (claimed or set()),
        sessions,
        steps,
    )


def _adopt_implicit_steps(
    sessions: dict[str, Session],
    spans: list[SpanRecord],
    parent_of: dict[tuple[int, str], str] | None = None,
) -> None:
    """OTLP: a task span that came before the spans leading up to its workflow span was put
    in its trace's implicit run (keyed by the trace id: otlp_flows._step_records). Once the
    stored trace leads from the task to a workflow span, the step moves to that workflow's run,
    and the implicit run goes when nothing is left in it; so traceloop's `disable_batch=True`
    (one span per request, children first) stores the run its batches would. `parent_of`: the
    stored spans' parents of these traces, when the batch read them already (TraceWalk)."""
    traces = {(sessions[r.session_id].pk, r.trace_id) for r in spans if r.trace_id}
    if not traces:
        return
    session_pks = sorted({pk for pk, _ in traces})
    trace_ids = sorted({t for _, t in traces})
    in_sessions, session_params = sql.in_values("w.session_id", session_pks)
    in_traces, trace_params = sql.in_values("w.workflow_id", trace_ids)
    # Written out (ingest/sql.py): nearly every request with a task span runs it. Only the
    # implicit runs' steps: reading every run of the sessions (and later every step of them)
    # grew with each session's length and was the top statement of steady-5k (bench/README.md).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT st.id, w.id, w.session_id, st.step_id FROM ingest_workflow w "
            f"JOIN ingest_step st ON st.workflow_id = w.id WHERE {in_sessions} AND {in_traces}",
            [*session_params, *trace_params],
        )
        implicit = cursor.fetchall()
    if not implicit:
        return
    if parent_of is None:
        parent_of = {
            (session, span): parent
            for session, span, parent in Span.objects.filter(
                session_id__in=session_pks, trace_id__in=trace_ids
            ).values_list("session_id", "span_id", "parent_span_id")
        }
    runs, taken = _runs_above(implicit, parent_of)
    moved: list[Step] = []
    doubles: list[int] = []
    emptied: set[int] = set()
    for pk, implicit_run, session, step_id in implicit:
        start = parent_of.get((session, step_id), "")
        target = next((runs[k] for k in _ancestors(session, start, parent_of) if k in runs), None)
        if target is None:
            continue
        emptied.add(implicit_run)
        if (target, step_id) in taken:
            doubles.append(pk)
        else:
            moved.append(Step(pk=pk, workflow_id=target))
    Step.objects.filter(pk__in=doubles).delete()
    if moved:
        Step.objects.bulk_update(moved, ["workflow"])
    Workflow.objects.filter(pk__in=emptied, steps__isnull=True).delete()


def _runs_above(
    implicit: list[tuple[int, int, int, str]], parent_of: dict[tuple[int, str], str]
) -> tuple[dict[tuple[int, str], int], set[tuple[int, str]]]:
    """The workflow runs keyed by a span above one of these implicit steps (by session pk and
    workflow id), and which of those steps' ids each run holds already (run pk, step id): one
    statement on the runs that can take a step, not every run of the sessions."""
    above = {
        key
        for _, _, session, step in implicit
        for key in _ancestors(session, parent_of.get((session, step), ""), parent_of)
    }
    if not above:
        return {}, set()
    in_sessions, session_params = sql.in_values("w.session_id", sorted({k[0] for k in above}))
    in_runs, run_params = sql.in_values("w.workflow_id", sorted({k[1] for k in above}))
    in_steps, step_params = sql.in_values("st.step_id", sorted({row[3] for row in implicit}))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT w.id, w.session_id, w.workflow_id, st.step_id FROM ingest_workflow w "
            f"LEFT JOIN ingest_step st ON st.workflow_id = w.id AND {in_steps} "
            f"WHERE {in_sessions} AND {in_runs}",
            [*step_params, *session_params, *run_params],
        )
        rows = cursor.fetchall()
    runs = {(session, workflow_id): run for run, session, workflow_id, _ in rows}
    runs = {key: run for key, run in runs.items() if key in above}
    taken = {(run, step) for run, _, _, step in rows if step is not None}
    return runs, taken


def _has_stored_children(
    sessions: dict[str, Session],
    spans: list[SpanRecord],
    parent_of: dict[tuple[int, str], str] | None,
) -> bool:
    """Whether a span of the batch may sit between a stored task and its workflow span: it has
    a parent and stored spans under it (taken as yes when the walk did not read the trace). A
    leaf, as most one-span requests are (an LLM call, a tool), cannot complete a path."""
    inner = {
        (sessions[r.session_id].pk, r.span_id) for r in spans if r.trace_id and r.parent_span_id
    }
    if not inner:
        return False
    if parent_of is None:
        return True
    return any((session, parent) in inner for (session, _), parent in parent_of.items())


# workflow_merge.merge_workflow_change() in one statement, as UPDATE_STORED_SESSIONS does for
# sessions: `w` is the row as it is when the UPDATE runs (after a concurrent writer's commit),
# `v` the batch's change; rows locked in id order first. SET sees the old row, so the duration
# repeats the start and end expressions.
WORKFLOW_START = (
    "CASE WHEN v.is_started THEN v.started_at WHEN v.earliest IS NOT NULL AND "
    "(w.started_at IS NULL OR (w.is_inferred AND v.earliest < w.started_at)) THEN v.earliest "
    "ELSE w.started_at END"
)
TAKE_WORKFLOW_END = "v.has_end AND (w.ended_at IS NULL OR v.ended_at >= w.ended_at)"
WORKFLOW_END = f"CASE WHEN {TAKE_WORKFLOW_END} THEN v.ended_at ELSE w.ended_at END"
UPDATE_STORED_WORKFLOWS = f"""
WITH v AS (
    SELECT * FROM unnest(
        %s::bigint[], %s::boolean[], %s::timestamptz[], %s::timestamptz[], %s::boolean[],
        %s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::jsonb[]
    ) AS v(id, is_started, started_at, earliest, has_end, ended_at, status, name,
           result_summary, metadata)
), locked AS (
    SELECT id FROM ingest_workflow WHERE id IN (SELECT id FROM v) ORDER BY id FOR NO KEY UPDATE
)
UPDATE ingest_workflow w SET
    started_at = {WORKFLOW_START},
    is_inferred = w.is_inferred AND NOT v.is_started,
    ended_at = {WORKFLOW_END},
    status = CASE WHEN {TAKE_WORKFLOW_END} THEN v.status ELSE w.status END,
    name = CASE WHEN v.name <> '' THEN v.name ELSE w.name END,
    result_summary = COALESCE(v.result_summary, w.result_summary),
    metadata = CASE WHEN v.metadata IS NULL THEN w.metadata
        ELSE COALESCE(w.metadata, '{{}}'::jsonb) || v.metadata END,
    duration_ms = EXTRACT(EPOCH FROM ({WORKFLOW_END}) - ({WORKFLOW_START})) * 1000
FROM v JOIN locked USING (id)
WHERE w.id = v.id
"""
WORKFLOW_CHANGE_COLUMNS = (
    "is_started",
    "started_at",
    "earliest",
    "has_end",
    "ended_at",
    "status",
    "name",
    "result_summary",
)


def _update_stored_workflows(changes: dict[int, WorkflowChange]) -> None:
    """PostgreSQL: merge each change into its stored workflow (by pk) in one statement, so a
    concurrent batch's change to the same run is kept (the rows this batch read may be old)."""
    ids = sorted(changes)
    ordered = [changes[pk] for pk in ids]
    params = [
        ids,
        *([getattr(c, name) for c in ordered] for name in WORKFLOW_CHANGE_COLUMNS),
        [None if c.metadata is None else _json_bytes(c.metadata).decode() for c in ordered],
    ]
    with connection.cursor() as cursor:
        cursor.execute(UPDATE_STORED_WORKFLOWS, params)


def _workflow_snapshot(workflow: Workflow) -> tuple[Any, ...]:
    return tuple(getattr(workflow, name) for name in WORKFLOW_MERGE_FIELDS)


def _duration_ms(started_at: datetime | None, ended_at: datetime | None) -> float | None:
    if started_at is None or ended_at is None:
        return None
    return (ended_at - started_at).total_seconds() * 1000


@dataclass(slots=True)
class _NewStep:
    """A step not stored yet, merged like a Step row (same attributes and defaults) and then
    inserted as a plain tuple: building a model instance per step was most of its cost."""

    workflow_id: int
    step_id: str
    name: str = ""
    agent_external_id: str = ""
    depends_on: list[str] = field(default_factory=list)
    status: str = Step.Status.RUNNING
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: float | None = None
    result_summary: str = ""
    error_type: str = ""
    error_message: str = ""


STEP_COPY_COLUMNS = ("project_id", "workflow_id", "step_id", *STEP_MERGE_FIELDS)


def _upsert_steps(
    project: Project,
    workflow_pks: dict[tuple[int, str], int],
    new_workflows: set[int],
    sessions: dict[str, Session],
    records: list[StepRecord],
) -> None:
    if not records:
        return
    keyed = [
        ((workflow_pks[(sessions[r.session_id].pk, r.workflow_id)], r.step_id), r) for r in records
    ]
    keys = {key for key, _ in keyed}
    steps: dict[tuple[int, str], Step | _NewStep] = {
        **_stored_rows(Step, ("workflow", "step_id"), keys, new_workflows)
    }
    existing = list(steps.values())
    created = []
    for key in keys - steps.keys():
        steps[key] = _NewStep(workflow_id=key[0], step_id=key[1])
        created.append(steps[key])
    for key, record in keyed:
        _merge_step(steps[key], record)
    rows = [
        (project.pk, step.workflow_id, step.step_id, *(getattr(step, n) for n in STEP_MERGE_FIELDS))
        for step in created
    ]
    _insert_rows(Step, STEP_COPY_COLUMNS, rows)
    _update_rows(existing, STEP_MERGE_FIELDS)


def _next_ids(model: type[Model], count: int) -> list[int]:
    """PostgreSQL: `count` ids from the model's id sequence, in one query."""
    with connection.cursor() as cursor:
        # The sequence is looked up once, in a materialized CTE: pg_get_serial_sequence() in
        # the select list ran once per row, ten times the cost of nextval() itself.
        cursor.execute(
            "WITH s AS MATERIALIZED "
            "(SELECT pg_get_serial_sequence(%s, 'id')::regclass AS seq) "
            "SELECT nextval(s.seq) FROM s, generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _create(objs: Sequence[Model]) -> None:
    """bulk_create() for the store's own few-rows-per-batch inserts (sessions, agents, workflows),
    setting their pks. On PostgreSQL: ids from one nextval() query and a binary COPY of the
    instances' values, because Django's INSERT compile cost 0.9 ms of CPU for 8 sessions."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs)
        return
    fields = model._meta.concrete_fields
    for obj, pk in zip(objs, _next_ids(model, len(objs)), strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, connection.alias
    rows = [tuple(field.pre_save(obj, True) for field in fields) for obj in objs]
    _copy_rows(model, tuple(field.column for field in fields), rows)


def _insert_rows(model: type[Model], columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert plain tuples (values of these column names, in order): COPY on PostgreSQL, else
    bulk_create."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        _copy_rows(model, columns, rows)
    else:
        model.objects.bulk_create([model(**dict(zip(columns, row, strict=True))) for row in rows])


def _merge_step(step: Step | _NewStep, record: StepRecord) -> None:
    if record.action == "start":
        if record.at and (step.started_at is None or record.at < step.started_at):
            step.started_at = record.at
    elif step.ended_at is None or (record.at and record.at >= step.ended_at):
        step.ended_at = record.at
        step.status = record.status or Step.Status.OK
    for attr, value in (
        ("name", record.name),
        ("agent_external_id", record.agent_id),
        ("result_summary", record.result_summary),
        ("error_type", record.error_type),
    ):
        if value:
            setattr(step, attr, value[:200] if attr == "error_type" else value)
    if record.error_message:
        step.error_message = record.error_message[:2000]
    if record.depends_on is not None:
        step.depends_on = list(record.depends_on)
    step.duration_ms = _duration_ms(step.started_at, step.ended_at)


# --- Dead letters: resolve, requeue, and the poll that hands requeued messages back ---------


def resolve_messages(messages: QuerySet[Message], *, note: str = "") -> int:
    """Mark these dead letters resolved (a person dealt with them); returns how many changed."""
    dead = messages.exclude(dead_letter_state="")
    return dead.update(
        dead_letter_state=Message.DeadLetterState.RESOLVED,
        resolved_at=timezone.now(),
        resolution_note=note[:500],
    )


def requeue_messages(messages: QuerySet[Message]) -> list[int]:
    """Requeue these dead letters: the next poll by the agent system hands them over. Returns
    the pks requeued. Requeueing again makes a message pollable again."""
    pks = list(messages.exclude(dead_letter_state="").values_list("pk", flat=True))
    Message.objects.filter(pk__in=pks).update(
        dead_letter_state=Message.DeadLetterState.REQUEUED,
        requeued_at=timezone.now(),
        requeue_count=F("requeue_count") + 1,
        poll_id="",
        polled_at=None,
    )
    return pks


def claim_requeued_messages(project: Project, *, poll_id: str, limit: int) -> list[Message]:
    """The requeued messages a poll hands over, oldest requeue first, with their content.

    Idempotent per poll_id: the same poll_id gets the same messages back (a poller that lost the
    answer asks again), and a message is handed to one poll only, even with concurrent pollers
    (PostgreSQL skips rows another poll has locked)."""
    with transaction.atomic():
        taken = Message.objects.filter(project=project, poll_id=poll_id)
        if not taken.exists():
            waiting = Message.objects.filter(
                project=project, dead_letter_state=Message.DeadLetterState.REQUEUED, poll_id=""
            ).order_by("requeued_at", "id")
            if connection.features.has_select_for_update_skip_locked:
                waiting = waiting.select_for_update(skip_locked=True)
            pks = list(waiting.values_list("pk", flat=True)[:limit])
            Message.objects.filter(pk__in=pks).update(poll_id=poll_id, polled_at=timezone.now())
        claimed = taken.select_related("session", "body").order_by("requeued_at", "id")
        return list(claimed)


def save_rejections(project: Project, errors: Iterable[RecordError], *, source: str) -> int:
    """Keep refused records with their reason so nothing sent is lost; returns how many. With
    the project's redaction on, the raw text and the reason (which may quote a value) are
    redacted first."""
    redactor = project_redactor(project)
    rows = []
    for error in errors:
        raw, message = _raw_text(error.raw), error.message
        if redactor is not None:
            raw, message = redactor.text(raw)[0], redactor.text(message)[0]
        rows.append(
            IngestRejection(
                project=project,
                source=source,
                record_index=error.index,
                record_type=error.record_type,
                field=error.field[:300],
                message=message,
                raw=raw,
                fingerprint=IngestRejection.fingerprint_of(message, raw),
            )
        )
    IngestRejection.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _raw_text(raw: Any) -> str:
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="replace")
    elif isinstance(raw, str):
        text = raw
    else:
        text = json.dumps(raw, indent=2, default=str, ensure_ascii=False)
    # PostgreSQL text cannot hold NUL (a refused protobuf body holds some) nor lone surrogates.
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text.encode("utf-8", errors="replace").decode()


@dataclass(frozen=True)
class ReplayOutcome:
    """What a replay did; the caller queues the follow-ups (summaries, test analysis), as the
    ingest views do, so the store never knows the task queue."""

    ok: bool
    message: str
    session_pks: frozenset[int] = frozenset()
    has_test_results: bool = False


def replay_rejection(
    rejection: IngestRejection, raw_text: str, *, max_string_chars: int | None = None
) -> ReplayOutcome:
    """Parse the (possibly edited) raw record again; on success store it and resolve the rejection.

    On failure the rejection stays open with the new reason, so replaying never loses the record.
    """
    try:
        raw = json.loads(raw_text)
    except json.JSONDecodeError as exc:
        return ReplayOutcome(False, f"Not valid JSON: {exc}")
    limit = max_string_chars or settings.OBSERVATORY_MAX_STRING_CHARS
    parsed = parse_records([raw], max_string_chars=limit)
    if parsed.errors:
        error = parsed.errors[0]
        message = error.message.replace("records[0]", "record")
        IngestRejection.objects.filter(pk=rejection.pk).update(
            raw=raw_text, message=message, field=error.field.replace("records[0]", "record")
        )
        return ReplayOutcome(False, message)
    with transaction.atomic():
        saved = save_records(rejection.project, parsed.records)
        IngestRejection.objects.filter(pk=rejection.pk).update(
            raw=raw_text, is_resolved=True, replayed_at=timezone.now()
        )
    status = saved.statuses.get(0, "accepted")
    return ReplayOutcome(
        True,
        f"Record {status}",
        frozenset(saved.session_pks),
        has_test_results=bool(saved.test_run_pks),
    )
