"""Ingest problems: refused records kept with their reason, field path and raw text."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ingest.formats.records import (
    RecordError,
)
from ingest.models import (
    IngestRejection,
    Project,
)
from ingest.store.redactors import project_redactor


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
