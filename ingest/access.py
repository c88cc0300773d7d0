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
    SCORE_SESSIONS = "score sessions and spans"
    RESOLVE_DEAD_LETTERS = "resolve dead letters"
    REQUEUE_DEAD_LETTERS = "requeue dead letters"
    REPLAY_PROBLEM = "replay an ingest problem as it was received"
    REPLAY_EDITED_PROBLEM = "replay an ingest problem with edited text"
    MAKE_REPORT = "make a report now"
    EDIT_ALERT_RULES = "create, change, test or delete alert rules"
    EDIT_REPORT_SCHEDULE = "change the report schedule and its recipients"
    EDIT_PROJECT_SETTINGS = (
        "rename the project or change its price overrides, mapping rules or requeue webhook"
    )
    MANAGE_KEYS = "create or revoke API keys"
    MANAGE_MEMBERS = "add or remove viewers and members, or change their roles"
    MANAGE_ADMINS = "make, change or remove admins and owners"
    READ_AUDIT_LOG = "read the audit log"
    EDIT_DATA_LIFECYCLE = "change the project's retention or PII redaction"
    DELETE_SESSION = "delete a session"
    DELETE_SCORES = "delete another person's or a program's score"
    REQUEST_ERASURE = "erase every session of a user id or tag"


# Members handle what happens (triage, requeue, replay what was sent); admins change what the
# project does and can write telemetry by hand (an edited replay stores whatever they typed);
# owners, in addition, manage admins and other owners. Deleting data cannot be undone, so it is
# the admins' too. The audit log (addresses, who did what) is
# for admins; it is the only read that needs more than membership.
MINIMUM_ROLE: dict[Action, Role] = {
    Action.SET_ANOMALY_STATUS: Role.MEMBER,
    Action.SCORE_SESSIONS: Role.MEMBER,
    Action.RESOLVE_DEAD_LETTERS: Role.MEMBER,
    Action.REQUEUE_DEAD_LETTERS: Role.MEMBER,
    Action.REPLAY_PROBLEM: Role.MEMBER,
    Action.MAKE_REPORT: Role.MEMBER,
    Action.REPLAY_EDITED_PROBLEM: Role.ADMIN,
    Action.EDIT_ALERT_RULES: Role.ADMIN,
    Action.EDIT_REPORT_SCHEDULE: Role.ADMIN,
    Action.EDIT_PROJECT_SETTINGS: Role.ADMIN,
    Action.MANAGE_KEYS: Role.ADMIN,
    Action.MANAGE_MEMBERS: Role.ADMIN,
    Action.READ_AUDIT_LOG: Role.ADMIN,
    Action.EDIT_DATA_LIFECYCLE: Role.ADMIN,
    Action.DELETE_SESSION: Role.ADMIN,
    Action.DELETE_SCORES: Role.ADMIN,
    Action.REQUEST_ERASURE: Role.ADMIN,
    Action.MANAGE_ADMINS: Role.OWNER,
}


def may(role: str | None, action: Action) -> bool:
    """Pure: whether a member of this role may take the action (None: not a member)."""
    return role is not None and RANK[Role(role)] >= RANK[MINIMUM_ROLE[action]]


def may_delete_score(role: str | None, score: Any, username: str) -> bool:
    """Pure: whether this person (their role and user name) may delete the score. People take
    back their own word (a human score carries its author's user name); anyone else's score,
    a program's included, is the admins' to remove."""
    is_author = score.source == "human" and score.author == username
    if is_author and may(role, Action.SCORE_SESSIONS):
        return True
    return may(role, Action.DELETE_SCORES)


def membership_action(*roles: str | None) -> Action:
    """Pure: what changing a membership between these roles needs (None: no membership on that
    side). Touching an admin or owner, on either side, is the owners' business."""
    high = {Role.ADMIN, Role.OWNER}
    return Action.MANAGE_ADMINS if any(r in high for r in roles) else Action.MANAGE_MEMBERS


def roles_of(user: Any, project_ids: Iterable[int]) -> dict[int, str]:
    """The user's role in each of these projects they are a member of."""
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        return {}
    rows = Membership.objects.filter(user=user, project_id__in=set(project_ids))
    return dict(rows.values_list("project_id", "role"))


def projects_where(user: Any, action: Action) -> list[int]:
    """The projects where the user may take the action."""
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        return []
    rows = Membership.objects.filter(user=user).values_list("project_id", "role")
    return sorted(pk for pk, role in rows if may(role, action))


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
