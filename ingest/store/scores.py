"""Scores: upserted by client id, the scores test results carry, a person's score from a page."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from typing import Any

from django.utils import timezone

from ingest.formats.records import (
    Record,
    ScoreRecord,
    TestResultRecord,
)
from ingest.models import (
    Project,
    Score,
    Session,
)
from ingest.store.ledger import SaveResult
from ingest.store.testruns import TestRecord

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
    new: list[Score] = []
    changed: list[Score] = []
    unchanged: set[str] = set()
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
