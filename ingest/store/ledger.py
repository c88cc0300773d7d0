"""The ledger and the claims: which records of a batch are new (ReceivedRecord ids, one request key
for an OTLP request), and the shared rows a batch needs (sessions, trace links, workflows) claimed
by one INSERT … SELECT each, remembered per process (ClaimedKeys); the batch's result.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import (
    IntegrityError,
    connection,
)
from django.db.models import Model

from ingest.formats.records import (
    AgentMessageRecord,
    Record,
    ScoreRecord,
    StepRecord,
    TestResultRecord,
    TestRunRecord,
    TraceLinkRecord,
    WorkflowRecord,
)
from ingest.models import (
    Project,
    ReceivedRecord,
    Session,
    TraceLink,
    Workflow,
)
from ingest.store.bulk import _copy_types, column_of
from ingest.store.traces import _linked
from ingest.store.workflows import FlowRecord


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
    names = {column_of(model, name): name for name in varying}
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
    inserted = ", ".join(quote(column_of(model, f.name)) for f in fields)
    sql = (
        f"INSERT INTO {model._meta.db_table} ({inserted}) "
        f"SELECT {', '.join(select)} FROM unnest({arrays}) WITH ORDINALITY "
        f"AS v({', '.join(names)}, n) ORDER BY v.n "
        f"ON CONFLICT ({conflict}) DO NOTHING "
        f"RETURNING {column_of(model, key)}, id"
    )
    return sql, [*params, *(list(varying[name]) for name in names.values())]


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
