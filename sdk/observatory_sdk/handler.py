"""A logging handler that turns agent, llm and tool log lines into transcript status lines.

Status lines are stored with the roles agent/llm/tool, next to (not mixed into) the user/assistant
conversation: GET /api/v1/sessions/<id>/transcript/?roles=user,assistant leaves them out.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from observatory_sdk.context import current_session_id
from observatory_sdk.records import STATUS_ROLES, status_record

if TYPE_CHECKING:
    from observatory_sdk.client import Client

ROLE_ATTRIBUTE = "observatory_role"


def status_role(record: logging.LogRecord) -> str | None:
    """The status role of a log record: its `observatory_role` extra if that is a status role,
    else the first part of its logger name (`agent.planner` is agent), else None."""
    role = getattr(record, ROLE_ATTRIBUTE, None)
    if role in STATUS_ROLES:
        return str(role)
    top = record.name.split(".", 1)[0]
    return top if top in STATUS_ROLES else None


class StatusLineHandler(logging.Handler):
    """Sends log records from the `agent`, `llm` and `tool` loggers (and their children, or any
    record logged with extra={"observatory_role": ...}) as status records through a Client.

    The session is, in order: the record's extra={"session_id": ...}, the current session set
    with observatory_sdk.current_session(), then this handler's session_id. A record with no
    session is ignored. extra={"agent_id": ..., "span_id": ...} are passed on too.
    """

    def __init__(
        self, client: Client, session_id: str | None = None, level: int = logging.NOTSET
    ) -> None:
        super().__init__(level)
        self.client = client
        self.session_id = session_id

    def emit(self, record: logging.LogRecord) -> None:
        role = status_role(record)
        if role is None or record.name.startswith("observatory_sdk"):
            return
        session_id = getattr(record, "session_id", None) or current_session_id() or self.session_id
        if not session_id:
            return
        try:
            line = status_record(
                str(session_id),
                role,
                self.format(record),
                agent_id=str(getattr(record, "agent_id", "") or ""),
                span_id=str(getattr(record, "span_id", "") or ""),
                at=datetime.fromtimestamp(record.created, UTC),
            )
            self.client.record(line)
        except Exception:
            self.handleError(record)
