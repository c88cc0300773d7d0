"""Which agent sessions the running test produced, for the pytest plugin's test results.

While the plugin reports a test, every session that Client.start_session() starts (in any thread)
and every id passed to link_session() is linked to that test's result. Outside a reported test
both are no-ops. pytest runs one test at a time per process, so one slot is enough.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_linked: list[str] | None = None


def link_session(session_id: str) -> None:
    """Link a session (e.g. one started by a service the test called) to the running test."""
    with _lock:
        if _linked is not None and session_id and session_id not in _linked:
            _linked.append(session_id)


def begin_test() -> None:
    """Start collecting session ids for a new test (the pytest plugin calls this)."""
    global _linked
    with _lock:
        _linked = []


def end_test() -> list[str]:
    """Stop collecting; the session ids linked since begin_test(), in order."""
    global _linked
    with _lock:
        linked, _linked = _linked or [], None
    return linked
