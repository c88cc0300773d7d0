"""The events CSV on PostgreSQL comes from COPY … TO STDOUT (api/csv_copy.py); on SQLite from the
serializer. Both must write the same bytes for the same rows, formula-safe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from analytics import queries
from analytics.safe_csv import csv_rows
from api.csv_copy import can_copy
from api.serializers import EventSerializer, SessionSerializer, header_of
from ingest.models import Span
from tests.builders import T0, make_project, make_session
from tests.responses import streamed

pytestmark = pytest.mark.django_db


def serializer_csv(project: Any, **filters: Any) -> bytes:
    """What the iterator path writes: each row through EventSerializer, then csv_rows()."""
    spans = (
        queries.spans_for_projects([project.pk]).filter(**filters).order_by("-started_at", "-id")
    )
    serializer = EventSerializer()
    rows = (serializer.to_representation(span) for span in spans)
    return "".join(csv_rows(header_of(serializer), rows)).encode()


def csv_body(client: APIClient, **params: str) -> bytes:
    response = client.get(reverse("api:event-list"), {"format": "csv", **params})
    assert response.status_code == 200
    return streamed(response)


@pytest.fixture
def tricky_project() -> tuple[Any, str]:
    """Spans whose cells test every rule: formulas, quotes, commas, newlines, unicode, empty and
    missing values, whole and fractional floats, booleans, times with and without microseconds."""
    project, raw_key = make_project(name="Acme")
    session = make_session(project, external_id='=HYPERLINK("x")', spans=6, failed=1)
    spans = list(Span.objects.filter(session=session).order_by("started_at"))
    values: list[dict[str, Any]] = [
        {"name": "-2+3", "cost": 1.0, "duration_ms": 523.0, "is_cost_estimated": True},
        {"name": 'say "hi", then\nleave', "cost": 0.0001234, "duration_ms": None},
        {"name": "@sum", "model": "\tgpt", "error_message": "\rboom", "cost": 1e-05},
        {"name": "naïve — 日本", "prompt_tokens": None, "cost": 12345.678, "duration_ms": 0.5},
        {"name": "plain", "started_at": T0 + timedelta(microseconds=1500), "cost": None},
        {"name": "", "provider": "=cmd", "cost": -3.0, "ended_at": None},
    ]
    for span, changes in zip(spans, values, strict=True):
        for field, value in changes.items():
            setattr(span, field, value)
    Span.objects.bulk_update(spans, sorted({field for v in values for field in v}))
    return project, raw_key


def test_the_events_csv_is_the_same_bytes_on_either_path(
    tricky_project: tuple[Any, str], key_client: Callable[[str], APIClient]
) -> None:
    project, raw_key = tricky_project
    other, _ = make_project(name="Other")
    make_session(other, external_id="not-mine")

    body = csv_body(key_client(raw_key))

    assert body == serializer_csv(project)
    text = body.decode()
    assert text.startswith("id,session_id,project,span_id,")
    assert "not-mine" not in text
    assert '\'=HYPERLINK(""x"")' in text  # formula-escaped, quotes doubled
    assert "'-2+3" in text and "'@sum" in text and "'\tgpt" in text and "'=cmd" in text
    assert '"say ""hi"", then\nleave"' in text
    assert ",1.0," in text and ",523.0," in text and ",-3.0," in text and ",1e-05," in text
    assert ",true," in text and ",false," in text
    assert "naïve — 日本" in text
    assert ".001500Z" in text
    assert text.count("\r\n") == 7  # header + 6 rows; the newline inside a cell stays "\n"


def test_a_filtered_events_csv_is_the_same_bytes_on_either_path(
    tricky_project: tuple[Any, str], key_client: Callable[[str], APIClient]
) -> None:
    project, raw_key = tricky_project

    body = csv_body(key_client(raw_key), kind="tool", started_after=T0.isoformat())

    assert body == serializer_csv(project, kind="tool", started_at__gte=T0)
    assert body.count(b"\r\n") > 1


def test_copy_writes_the_events_csv_on_postgresql_only() -> None:
    on_postgresql = connection.vendor == "postgresql"

    assert can_copy(queries.spans_for_projects([]), EventSerializer()) is on_postgresql
    # Tags are JSON, the URL is computed: the session CSV keeps the serializer.
    assert can_copy(queries.sessions_for_projects([]), SessionSerializer()) is False
