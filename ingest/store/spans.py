"""Spans and what hangs off them: spans and payloads merged or COPYed in, estimated costs,
transcript lines and metric samples.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from django.db import (
    connection,
)

from ingest.formats.records import (
    MetricRecord,
    SpanRecord,
    TranscriptRecord,
)
from ingest.models import (
    MetricSample,
    ModelPrice,
    Project,
    Session,
    Span,
    SpanPayload,
    TranscriptLine,
)
from ingest.pricing import Price, default_prices, estimated_costs
from ingest.store.bulk import _copy_rows, _next_ids, _stored_rows
from ingest.store.workflows import _duration_ms

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
    # New spans are written in (session, start) order, so span_unique and span_session_started
    # grow at their right edge (85-90 % full, not 65-69 % as when a trace's root came after its
    # children: bench/README.md, issue 15).
    new_keys = sorted(
        (key for key in by_key if key not in existing), key=lambda k: (k[0], by_key[k].started_at)
    )
    if new_keys and connection.vendor == "postgresql":
        _copy_new_spans(project, new_keys, by_key, costs)
    elif new_keys:
        _bulk_create_new_spans(project, new_keys, by_key, costs)
    _merge_existing_spans(existing, by_key, costs)


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
