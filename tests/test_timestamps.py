"""Timestamps read from PostgreSQL through psycopg's C loader (config/timestamps.py) are the
aware UTC datetimes Django's own loader gave, to the microsecond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from psycopg import adapters, postgres
from psycopg.pq import Format

from ingest.models import Session
from tests.builders import make_project

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL loader")


def test_timestamps_read_back_as_the_same_instant_in_utc() -> None:
    project = make_project(name="Times")[0]
    given = {
        "utc": datetime(2026, 12, 4, 19, 50, 52, 123456, tzinfo=UTC),
        "whole-second": datetime(2026, 12, 4, 19, 50, 52, tzinfo=UTC),
        "india": datetime(
            2026, 12, 5, 1, 20, 52, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))
        ),
        "before-1970": datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC),
    }
    for name, moment in given.items():
        Session.objects.create(project=project, external_id=name, started_at=moment)
    Session.objects.create(project=project, external_id="none", started_at=None)

    read = dict(Session.objects.filter(project=project).values_list("external_id", "started_at"))

    for name, moment in given.items():
        value = read[name]
        assert value == moment
        assert value is not None and value.tzinfo is UTC
        assert value.microsecond == moment.microsecond
    assert read["none"] is None


def test_the_connection_reads_timestamps_with_psycopgs_own_loader() -> None:
    connection.ensure_connection()
    oid = postgres.types["timestamptz"].oid

    used = connection.connection.adapters.get_loader(oid, Format.TEXT)

    # Django's own is a subclass of psycopg's pure-Python loader, which parses in Python.
    fastest = adapters.get_loader(oid, Format.TEXT)
    assert used is not None and fastest is not None
    assert isinstance(used(oid, connection.connection).load.__self__, fastest)
    assert used.timezone is UTC
