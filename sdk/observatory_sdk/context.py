"""The context-local current session, so code deep in an agent can log without passing ids around.

It lives in a ContextVar, so each thread and each asyncio task sees its own value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current_session: ContextVar[str | None] = ContextVar("observatory_current_session", default=None)


@contextmanager
def current_session(session_id: str) -> Iterator[str]:
    """Make session_id the current session inside the with block (nesting restores the outer)."""
    token = _current_session.set(session_id)
    try:
        yield session_id
    finally:
        _current_session.reset(token)


def current_session_id() -> str | None:
    """The session set by the innermost enclosing current_session(), or None."""
    return _current_session.get()
