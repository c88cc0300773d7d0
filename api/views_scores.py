"""Scores: the list (filters, CSV) and POST, which sends scores the way a `score` record does;
one score by id, and DELETE of it.

A project key needs the `ingest` scope to send scores (they are telemetry, like the batches it
sends to /api/v1/ingest), `read` to list them and `actions` to delete one; a person needs the
member role in the project, and what they send is a `human` score in their name, audited. A
person may delete the human scores they gave; admins, anyone's (ingest/access.py).
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import deletion, queries
from analytics.tasks import enqueue_session_summaries
from api import filters, serializers
from api.scope import one_by_client_id, require_person, visible_projects
from api.views import ListView
from ingest import access, audit
from ingest.access import Action
from ingest.formats.native import parse_records
from ingest.formats.records import ScoreRecord
from ingest.models import ApiKey, AuditEntry, Project, Score
from ingest.store import save_records

MAX_SCORES_PER_REQUEST = 1000


class ScoreList(ListView):
    """Scores, newest first. POST a score object, a list of them or `{"scores": [...]}` (the
    fields of the native `score` record, docs/ingest-api.md); all are stored, or none (400
    naming the field, e.g. `scores[2].value`)."""

    serializer_class = serializers.ScoreSerializer
    filterset_class = filters.ScoreFilter
    csv_filename = "scores.csv"

    @property
    def key_scope(self) -> str:
        return ApiKey.Scope.INGEST if self.request.method == "POST" else ApiKey.Scope.READ

    def get_queryset(self) -> Any:
        return queries.scores_for_projects(visible_projects(self.request))

    @extend_schema(
        request=OpenApiTypes.OBJECT, responses={200: serializers.ScoreWriteResultSerializer}
    )
    def post(self, request: Request) -> Response:
        project = _target_project(request)
        is_person = not isinstance(request.auth, Project)
        if is_person:
            require_person(request, project.pk, Action.SCORE_SESSIONS)
        records = _score_records(request, _raw_scores(request.data), is_person=is_person)
        with transaction.atomic():
            saved = save_records(project, list(records))  # a list of any records
            if is_person:
                for _, record in records:
                    _audit(request, project, record)
        transaction.on_commit(partial(enqueue_session_summaries, saved.session_pks))
        ids = [record.record_id for _, record in records]
        rows = queries.scores_for_projects([project.pk]).filter(client_id__in=ids)
        return Response(
            {
                "accepted": saved.accepted,
                "duplicates": saved.duplicates,
                "scores": serializers.ScoreSerializer(rows, many=True).data,
            }
        )


class ScoreDetail(generics.RetrieveAPIView):  # type: ignore[type-arg]
    """One score by its id (`?project=<slug>` when the id is in several of your projects).
    DELETE removes it: your own human score (members), anyone's (admins), or any score of a
    key's project (a key with the `actions` scope). Audited."""

    serializer_class = serializers.ScoreSerializer
    queryset = Score.objects.none()  # for the schema; get_object() does the real lookup

    def get_object(self) -> Score:
        return _score_for_request(self.request, self.kwargs["score_id"])

    @extend_schema(responses={204: None})
    def delete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        score = self.get_object()
        if not isinstance(request.auth, Project):
            _require_may_delete(request, score)
        deletion.delete_score(request, score)
        transaction.on_commit(partial(enqueue_session_summaries, [score.session_id]))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _score_for_request(request: Request, score_id: str) -> Score:
    """The visible score with this id (api.scope.one_by_client_id)."""
    found = queries.scores_for_projects(visible_projects(request)).filter(client_id=score_id)
    return one_by_client_id(request, found, "score", score_id)


def _require_may_delete(request: Request, score: Score) -> None:
    role = access.roles_of(request.user, [score.project_id]).get(score.project_id)
    if not access.may_delete_score(role, score, request.user.get_username()):
        raise PermissionDenied(
            f"To {Action.DELETE_SCORES} you need the role admin or higher in the project; "
            f"you are {role or 'not a member'}."
        )


def _target_project(request: Request) -> Project:
    """A key's own project; for a person, the project named by slug (`project`)."""
    if isinstance(request.auth, Project):
        return request.auth
    slug = request.query_params.get("project") or (
        request.data.get("project") if isinstance(request.data, dict) else None
    )
    if not slug:
        raise ValidationError({"project": "name the project (its slug) to score in"})
    project = queries.projects_for_user(request.user).filter(slug=str(slug)).first()
    if project is None:
        raise ValidationError({"project": f"you are not a member of a project {slug!r}"})
    return project


def _raw_scores(data: Any) -> list[Any]:
    if isinstance(data, dict):
        data = data.get("scores", [data])
    if not isinstance(data, list) or not data:
        raise ValidationError({"scores": "send a score object or a non-empty list of them"})
    if len(data) > MAX_SCORES_PER_REQUEST:
        raise ValidationError(
            {"scores": f"holds {len(data)} scores; the limit is {MAX_SCORES_PER_REQUEST}"}
        )
    return data


def _score_records(
    request: Request, raws: list[Any], *, is_person: bool
) -> list[tuple[int, ScoreRecord]]:
    """Parse each raw score as a `score` record; the first bad one refuses the request. A score
    without an id gets a new one; a person's scores are `human` and carry their name."""
    prepared = []
    for raw in raws:
        if not isinstance(raw, dict):
            prepared.append(raw)
            continue
        score = {**raw, "type": "score"}
        score.setdefault("id", str(uuid.uuid4()))
        if is_person:
            score |= {"source": "human", "author": request.user.get_username()}
        elif not score.get("author"):
            score["author"] = audit.key_label(request.user.key)  # type: ignore[union-attr]
        prepared.append(score)
    parsed = parse_records(prepared, max_string_chars=settings.OBSERVATORY_MAX_STRING_CHARS)
    if parsed.errors:
        error = parsed.errors[0]
        field = error.field.replace("records[", "scores[", 1)
        raise ValidationError({field: error.message.split(": ", 1)[-1]})
    return [(index, record) for index, record in parsed.records if isinstance(record, ScoreRecord)]


def _audit(request: Request, project: Project, record: ScoreRecord) -> None:
    where = f"span {record.span_id} of " if record.span_id else ""
    audit.record(
        request,
        AuditEntry.Action.SCORE_SAVE,
        project_id=project.pk,
        target=f"score {record.name} of {where}session {record.session_id}",
        changes={"value": [None, record.label or record.value], "comment": [None, record.comment]},
    )
