"""PostgreSQL timestamps read by psycopg's C loader. Django registers its own `timestamptz`
loader on every connection, a subclass of psycopg's pure-Python one (to set the time zone), so
each timestamp read was parsed by a regular expression in Python: a fifth of the worker's
Python CPU after ingest, which reads every span's start and end of the sessions it summarises
(bench/README.md, "Timestamps"). On a connection whose time zone is UTC, as Django sets it
with USE_TZ, psycopg's own loader gives the same aware datetimes (`datetime.timezone.utc`)."""

from __future__ import annotations

from datetime import UTC
from functools import cache
from typing import Any

from django.conf import settings

TIMEZONE_PARAMETER = "TimeZone"


def use_c_timestamp_loader(sender: Any, connection: Any, **_: Any) -> None:
    """connection_created: register psycopg's fastest text `timestamptz` loader (C with
    psycopg[binary], else its Python one) on a UTC PostgreSQL connection."""
    if connection.vendor != "postgresql" or not settings.USE_TZ:
        return
    raw = connection.connection
    if raw.info.parameter_status(TIMEZONE_PARAMETER) != "UTC":
        return  # psycopg would give that zone's datetimes, Django's loader UTC ones
    raw.adapters.register_loader("timestamptz", _utc_loader())


@cache
def _utc_loader() -> Any:
    from psycopg import adapters, postgres
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    fastest: Any = adapters.get_loader(postgres.types["timestamptz"].oid, Format.TEXT)

    class UtcTimestamptzLoader(Loader):
        """psycopg's loader under the `timezone` attribute Django's create_cursor() compares
        with its connection's before each cursor (it registers its own loader where they
        differ). psycopg's C loader cannot be subclassed: each instance hands out its `load`."""

        timezone = UTC

        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            # An instance attribute: psycopg calls it with no Python frame of ours between.
            self.load = fastest(oid, context).load  # type: ignore[method-assign]

        def load(self, data: Any) -> Any:  # the abstract method; __init__ shadows it
            raise NotImplementedError

    return UtcTimestamptzLoader
