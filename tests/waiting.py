"""How tests wait for something another process does: poll the state it writes, up to one
generous deadline.

The machines that run this suite are shared and often busy (CI, a demo beside the tests, two
cores for everything), so no test may depend on how fast the machine is. A test waits for the
state it needs and stops as soon as it holds; the deadline only turns a hang into a failure, so
it is long: a machine ten times slower than usual still passes. It stays below pytest-timeout's
300 s (pyproject.toml) so the failure names what was awaited. OBSERVATORY_TEST_DEADLINE changes it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

DEADLINE = float(os.environ.get("OBSERVATORY_TEST_DEADLINE", "240"))
DEADLINE_MS = int(DEADLINE * 1000)

T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], *, what: str, timeout: float = DEADLINE) -> T:
    """Call `condition` until it returns something truthy and return that; fail naming `what`.

    A condition that answers None until the thing exists (a `.first()`) returns the thing.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout:.0f} s for {what}")
        time.sleep(0.1)


def landings_settled() -> bool:
    """Whether nothing is pending and no landing holds its lock (ingest/landing.py): a landing
    runs after the answer, in a server process or a thread of one."""
    from django.db import connection

    from ingest.landing import LANDING_LOCK
    from ingest.models import PendingRequest

    if PendingRequest.objects.exists():
        return False
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid = %s AND objsubid = 2)",
            [LANDING_LOCK],
        )
        return bool(cursor.fetchone()[0])
