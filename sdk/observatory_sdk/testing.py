"""Which agent sessions the running test produced, and how it scored their answers, for the
pytest plugin's test results.

While the plugin reports a test, every session that Client.start_session() starts (in any thread)
and every id passed to link_session() is linked to that test's result, and every score() goes
with it (and onto those sessions). Outside a reported test all three are no-ops. pytest runs one
test at a time per process, so one slot is enough.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_linked: list[str] | None = None
_scores: list[dict[str, Any]] | None = None


def score(name: str, value: float | bool | str, *, comment: str = "") -> None:
    """Score the running test's answer (a number, a category or yes/no): it is sent with the
    test's result and becomes an `eval` score of each session the test produced."""
    with _lock:
        if _scores is not None and name:
            _scores.append(
                {"name": name, "value": value, **({"comment": comment} if comment else {})}
            )


def take_scores() -> list[dict[str, Any]]:
    """The scores given since begin_test(), in order (the pytest plugin calls this)."""
    global _scores
    with _lock:
        given, _scores = _scores or [], None
    return given


def link_session(session_id: str) -> None:
    """Link a session (e.g. one started by a service the test called) to the running test."""
    with _lock:
        if _linked is not None and session_id and session_id not in _linked:
            _linked.append(session_id)


def begin_test() -> None:
    """Start collecting session ids for a new test (the pytest plugin calls this)."""
    global _linked, _scores
    with _lock:
        _linked = []
        _scores = []


def end_test() -> list[str]:
    """Stop collecting; the session ids linked since begin_test(), in order."""
    global _linked
    with _lock:
        linked, _linked = _linked or [], None
    return linked
