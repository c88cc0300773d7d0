"""What ingest tells the layers above it once a batch is stored.

Ingest is the lowest layer (docs/architecture.md, "Layers"): it never imports analytics, api or
dashboard. It announces what it stored instead, and the analytics app connects its follow-up work
(session summaries, the search index, test analysis) in `AnalyticsConfig.ready()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from django.db import transaction
from django.dispatch import Signal

# The sessions a batch stored records of. Arguments: `session_pks` (a set of Session pks) and
# `soon`: True lets the follow-up wait up to half a second to ride along with this process's
# other requests (one-span OTLP requests arrive by the thousand), False queues it now.
sessions_stored = Signal()

# Test results of these projects changed (a batch with test records, a JUnit upload).
# Argument: `project_ids` (a list of Project pks).
test_results_stored = Signal()


def announce_sessions_stored(session_pks: Iterable[int], *, soon: bool = False) -> None:
    """Send sessions_stored once the current transaction commits (at once outside one), so
    receivers read what was stored."""
    pks = set(session_pks)
    transaction.on_commit(partial(sessions_stored.send, sender=None, session_pks=pks, soon=soon))


def announce_test_results_stored(project_ids: Iterable[int]) -> None:
    """Send test_results_stored once the current transaction commits (at once outside one)."""
    ids = sorted(set(project_ids))
    transaction.on_commit(partial(test_results_stored.send, sender=None, project_ids=ids))
