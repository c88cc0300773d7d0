"""Who may do what in a project: the one place where a member's role is checked.

Every page POST and API write names its `Action`; `require()` refuses it with a 403 that names the
role it needs. Reading is any membership (`analytics.queries.projects_for_user`); this module is
only about changes. The table is docs/access.md's "who may do what".
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied

from ingest.models import Membership

Role = Membership.Role
# Higher ranks may do everything lower ones may.
RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Action(StrEnum):
    """A change a person can make; the value reads well in an error message."""

    SET_ANOMALY_STATUS = "change an anomaly's status"
    RESOLVE_DEAD_LETTERS = "resolve dead letters"
    REQUEUE_DEAD_LETTERS = "requeue dead letters"
    REPLAY_PROBLEM = "replay an ingest problem as it was received"
    REPLAY_EDITED_PROBLEM = "replay an ingest problem with edited text"
    MAKE_REPORT = "make a report now"
    EDIT_ALERT_RULES = "create, change, test or delete alert rules"
    EDIT_REPORT_SCHEDULE = "change the report schedule and its recipients"


# Members handle what happens (triage, requeue, replay what was sent); admins change what the
# project does and can write telemetry by hand (an edited replay stores whatever they typed);
# owners, in addition, will manage admins and the project itself.
MINIMUM_ROLE: dict[Action, Role] = {
    Action.SET_ANOMALY_STATUS: Role.MEMBER,
    Action.RESOLVE_DEAD_LETTERS: Role.MEMBER,
    Action.REQUEUE_DEAD_LETTERS: Role.MEMBER,
    Action.REPLAY_PROBLEM: Role.MEMBER,
    Action.MAKE_REPORT: Role.MEMBER,
    Action.REPLAY_EDITED_PROBLEM: Role.ADMIN,
    Action.EDIT_ALERT_RULES: Role.ADMIN,
    Action.EDIT_REPORT_SCHEDULE: Role.ADMIN,
}


def may(role: str | None, action: Action) -> bool:
    """Pure: whether a member of this role may take the action (None: not a member)."""
    return role is not None and RANK[Role(role)] >= RANK[MINIMUM_ROLE[action]]


def roles_of(user: Any, project_ids: Iterable[int]) -> dict[int, str]:
    """The user's role in each of these projects they are a member of."""
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        return {}
    rows = Membership.objects.filter(user=user, project_id__in=set(project_ids))
    return dict(rows.values_list("project_id", "role"))


def require(user: Any, project_ids: int | Iterable[int], action: Action) -> None:
    """Raise PermissionDenied (a 403) unless the user may take the action in every project."""
    wanted = {project_ids} if isinstance(project_ids, int) else set(project_ids)
    roles = roles_of(user, wanted)
    refused = sorted(pk for pk in wanted if not may(roles.get(pk), action))
    if refused:
        have = sorted({roles.get(pk) or "not a member" for pk in refused})
        raise PermissionDenied(
            f"To {action} you need the role {MINIMUM_ROLE[action]} or higher in the project; "
            f"you are {', '.join(have)}."
        )
