"""The human score form on the session and span pages: thumbs up or down, a number, a comment;
and the delete button of each score.

Members and above may score (ingest/access.py: SCORE_SESSIONS); each person has one score per
name and span of a session, so scoring again changes it. A person may delete the human scores
they gave, admins any score (access.may_delete_score). Every save and delete is audited.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from analytics import deletion, queries
from analytics.tasks import enqueue_session_summaries
from ingest import access, audit, store
from ingest.formats import scores
from ingest.formats.records import ScoreRecord
from ingest.models import AuditEntry, Score, Session

DEFAULT_THUMBS_NAME = "user feedback"
DEFAULT_NUMBER_NAME = "rating"
THUMBS = {"up": True, "down": False}


def score_form_context(role: str | None, scores: list[Score], username: str) -> dict[str, Any]:
    """What the score form needs: whether this person's role in the project may score, default
    names, and the ids of the shown scores they may delete."""
    return {
        "may_score": access.may(role, access.Action.SCORE_SESSIONS),
        "thumbs_name": DEFAULT_THUMBS_NAME,
        "number_name": DEFAULT_NUMBER_NAME,
        "deletable": {s.pk for s in scores if access.may_delete_score(role, s, username)},
    }


def form_score(post: QueryDict) -> ScoreRecord:
    """The score a form sends: a thumb (boolean) or a number, with its name and comment. Raises
    ScoreValueError saying which field is wrong."""
    thumb = post.get("thumb", "")
    default = DEFAULT_THUMBS_NAME if thumb else DEFAULT_NUMBER_NAME
    name = (post.get("name") or "").strip() or default
    if len(name) > scores.MAX_SCORE_NAME_CHARS:
        raise scores.ScoreValueError(f"name: the limit is {scores.MAX_SCORE_NAME_CHARS} characters")
    comment = (post.get("comment") or "").strip()
    if len(comment) > scores.MAX_COMMENT_CHARS:
        raise scores.ScoreValueError(f"comment: the limit is {scores.MAX_COMMENT_CHARS} characters")
    if thumb:
        if thumb not in THUMBS:
            raise scores.ScoreValueError("thumb: choose up or down")
        value = scores.score_value(THUMBS[thumb], data_type="boolean")
    else:
        try:
            value = scores.score_value(post.get("value", "").strip(), data_type="numeric")
        except scores.ScoreValueError as exc:
            raise scores.ScoreValueError(f"score: {exc}") from None
    return ScoreRecord(
        record_id="",
        session_id="",
        name=name,
        data_type=value.data_type,
        value=value.value,
        label=value.label,
        comment=comment,
        source=Score.Source.HUMAN,
    )


@login_required
@require_POST
def score_save(request: HttpRequest, pk: int) -> HttpResponse:
    visible = queries.sessions_for_projects(queries.projects_for_user(request.user))
    session = visible.filter(pk=pk).first()
    if session is None:
        raise Http404("No such session")
    access.require(request.user, session.project_id, access.Action.SCORE_SESSIONS)
    span_pk, span_id = _span_of(session, request.POST.get("span", ""))
    try:
        record = form_score(request.POST)
    except scores.ScoreValueError as exc:
        messages.error(request, f"Score not saved: {exc}")
        return _back(session, span_pk)
    with transaction.atomic():
        score, before = store.save_human_score(
            session, span_id=span_id, record=record, author=request.user.get_username()
        )
        _audit(request, session, score, before)
    # The analytics refresh that follows judges score drops (and it is idempotent).
    transaction.on_commit(partial(enqueue_session_summaries, [session.pk]))
    messages.success(request, f"Saved your score {score.name} = {score.shown_value}.")
    return _back(session, span_pk)


@login_required
@require_POST
def score_delete(request: HttpRequest, pk: int, score_pk: int) -> HttpResponse:
    visible = queries.sessions_for_projects(queries.projects_for_user(request.user))
    session = visible.filter(pk=pk).first()
    score = Score.objects.filter(session=session, pk=score_pk).first() if session else None
    if session is None or score is None:
        raise Http404("No such score")
    role = access.roles_of(request.user, [session.project_id]).get(session.project_id)
    if not access.may_delete_score(role, score, request.user.get_username()):
        raise PermissionDenied(
            f"To {access.Action.DELETE_SCORES} you need the role admin or higher in the "
            f"project; you are {role or 'not a member'}."
        )
    deletion.delete_score(request, score)
    transaction.on_commit(partial(enqueue_session_summaries, [session.pk]))
    messages.success(request, f"Deleted the score {score.name} = {score.shown_value}.")
    return _back(session, _span_of(session, request.POST.get("span", ""))[0])


def _span_of(session: Session, raw_pk: str) -> tuple[int | None, str]:
    if not raw_pk.isdecimal():
        return None, ""
    span = queries.spans_for_projects([session.project_id]).filter(session=session, pk=int(raw_pk))
    found = span.values_list("pk", "span_id").first()
    return found if found is not None else (None, "")


def _back(session: Session, span_pk: int | None) -> HttpResponse:
    if span_pk is not None:
        return redirect("dashboard:span-detail", session.pk, span_pk)
    return redirect(reverse("dashboard:session-detail", args=[session.pk]) + "#scores")


def _audit(request: HttpRequest, session: Session, score: Score, before: Score | None) -> None:
    where = f"span {score.span_id} of " if score.span_id else ""
    old = {"value": before.shown_value, "comment": before.comment} if before else {}
    audit.record(
        request,
        AuditEntry.Action.SCORE_SAVE,
        project_id=session.project_id,
        target=f"score {score.name} of {where}session {session.external_id}",
        changes=audit.diff(old, {"value": score.shown_value, "comment": score.comment}),
    )
