"""REST endpoints: scope (api.scope), query (analytics.queries), filter, page or CSV. All read,
but for DELETE of a session (analytics/deletion.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pandas as pd
from django.db.models import Model, QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from analytics import deletion, queries
from analytics.safe_csv import csv_rows
from api import filters, serializers
from api.csv_copy import can_copy, copy_csv
from api.pagination import KeysetCursorPagination, keyset_order, sort_key
from api.renderers import CSVRenderer
from api.scope import require_person, session_for_request, visible_projects
from api.serializers_lifecycle import DeletedSerializer
from ingest import access
from ingest.models import ApiKey, IngestRejection, Session, Span, TranscriptLine

CSV_CHUNK_ROWS = 2000

SESSION_ID = OpenApiParameter(
    "session_id", str, OpenApiParameter.PATH, description="The client's session id."
)
PROJECT = OpenApiParameter(
    "project", str, description="Project slug: needed when the session id is in several projects."
)


class ListView(generics.ListAPIView):  # type: ignore[type-arg]
    """A cursor-paginated list that also answers `?format=csv` with every filtered row, streamed:
    same queryset, same filters, same order and the serializer's fields as the header. On
    PostgreSQL a serializer of plain columns streams through COPY (api/csv_copy.py)."""

    pagination_class = KeysetCursorPagination
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]
    csv_filename = "rows.csv"

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        if request.accepted_renderer.format == CSVRenderer.format:
            return self.csv_response()
        return super().list(request, *args, **kwargs)

    def csv_response(self) -> StreamingHttpResponse:
        queryset = self.filter_queryset(self.get_queryset())
        queryset = keyset_order(queryset, sort_key(queryset))
        # Every CSV list's serializer_class is a plain Serializer (get_serializer() says Base).
        serializer = cast(Serializer[Any], self.get_serializer())
        header = serializers.header_of(serializer)
        if can_copy(queryset, serializer):
            content: Iterator[Any] = copy_csv(queryset, serializer, header)
        else:
            rows = (serializer.to_representation(row) for row in queryset.iterator(CSV_CHUNK_ROWS))
            content = csv_rows(header, rows)
        response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{self.csv_filename}"'
        return response


class FrameList(APIView):
    """A computed table (a DataFrame, not a queryset): JSON `{"count", "results"}`, or every row as
    CSV with the serializer's fields as the header (so an empty table still has its columns)."""

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]
    serializer_class: type[Serializer[Any]]
    csv_filename = "rows.csv"

    def frame(self, request: Request) -> pd.DataFrame:
        raise NotImplementedError

    def get(self, request: Request) -> Any:
        frame = self.frame(request)
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        data = self.serializer_class(records, many=True, context={"request": request}).data
        if request.accepted_renderer.format == CSVRenderer.format:
            header = serializers.header_of(self.serializer_class())
            response = StreamingHttpResponse(
                csv_rows(header, data), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = f'attachment; filename="{self.csv_filename}"'
            return response
        return Response({"count": len(records), "results": data})


class ProjectList(ListView):
    serializer_class = serializers.ProjectSerializer
    csv_filename = "projects.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.project_list(visible_projects(self.request))


class SessionList(ListView):
    serializer_class = serializers.SessionSerializer
    filterset_class = filters.SessionFilter
    csv_filename = "sessions.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.scored_sessions_for_projects(visible_projects(self.request))


@extend_schema(parameters=[SESSION_ID, PROJECT])
class SessionDetail(generics.RetrieveAPIView):  # type: ignore[type-arg]
    """One session, with its rounds when it spans several OTLP traces."""

    serializer_class = serializers.SessionDetailSerializer
    queryset = Session.objects.none()  # for the schema; get_object() does the real lookup

    @property
    def key_scope(self) -> str:
        """Reading needs `read`; deleting, `erase` (api.authentication.KeyScopes)."""
        return ApiKey.Scope.ERASE if self.request.method == "DELETE" else ApiKey.Scope.READ

    def get_object(self) -> Session:
        session = session_for_request(self.request, self.kwargs["session_id"])
        session.rounds = queries.session_rounds(session)  # type: ignore[attr-defined]
        return session

    @extend_schema(parameters=[SESSION_ID, PROJECT], responses=DeletedSerializer)
    def delete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Delete the session and everything under it (admins, or a key with `erase`)."""
        session = session_for_request(request, self.kwargs["session_id"])
        require_person(request, session.project_id, access.Action.DELETE_SESSION)
        return Response({"deleted_sessions": deletion.delete_session(request, session)})


@extend_schema(parameters=[SESSION_ID, PROJECT])
class SessionEventList(ListView):
    """A session's events, in time order."""

    serializer_class = serializers.EventSerializer
    filterset_class = filters.EventFilter
    csv_filename = "events.csv"
    queryset = Span.objects.none()  # for the schema, which has no session id to resolve

    def get_queryset(self) -> QuerySet[Any]:
        session = session_for_request(self.request, self.kwargs["session_id"])
        spans = queries.spans_for_projects([session.project_id]).filter(session=session)
        return spans.order_by("started_at", "id")


@extend_schema(parameters=[SESSION_ID, PROJECT])
class SessionTranscript(ListView):
    """A session's chat stream in order; `?roles=user,assistant` leaves out the status lines."""

    serializer_class = serializers.TranscriptLineSerializer
    filterset_class = filters.TranscriptFilter
    csv_filename = "transcript.csv"
    queryset = TranscriptLine.objects.none()  # for the schema, which has no session id to resolve

    def get_queryset(self) -> QuerySet[Any]:
        session = session_for_request(self.request, self.kwargs["session_id"])
        return queries.transcript_for_session(session)


class EventList(ListView):
    serializer_class = serializers.EventSerializer
    filterset_class = filters.EventFilter
    csv_filename = "events.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.spans_for_projects(visible_projects(self.request))


class EventDetail(generics.RetrieveAPIView):  # type: ignore[type-arg]
    """One event with its payload: params, returns, prompt, completion, stack trace, attributes."""

    serializer_class = serializers.EventDetailSerializer
    queryset = Span.objects.none()  # for the schema; get_object() does the real lookup

    def get_object(self) -> Model:
        return found(queries.span_with_payload(visible_projects(self.request), self.kwargs["pk"]))


class StatusLineList(ListView):
    """Transcript lines with the roles agent, llm, tool and log (captured output)."""

    serializer_class = serializers.TranscriptLineSerializer
    filterset_class = filters.StatusLineFilter
    csv_filename = "status-lines.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.status_lines_for_projects(visible_projects(self.request))


class MetricList(ListView):
    serializer_class = serializers.MetricSampleSerializer
    filterset_class = filters.MetricFilter
    csv_filename = "metrics.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.metrics_for_projects(visible_projects(self.request))


class IngestProblemList(ListView):
    serializer_class = serializers.IngestProblemSerializer
    filterset_class = filters.IngestProblemFilter
    csv_filename = "ingest-problems.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.rejections_for_projects(visible_projects(self.request))


class IngestProblemDetail(generics.RetrieveAPIView):  # type: ignore[type-arg]
    """One refused record with its raw text, as received."""

    serializer_class = serializers.IngestProblemDetailSerializer
    queryset = IngestRejection.objects.none()  # for the schema

    def get_object(self) -> Model:
        projects = visible_projects(self.request)
        return found(queries.rejection_for_projects(projects, self.kwargs["pk"]))


def found(row: Model | None) -> Model:
    if row is None:
        raise NotFound("Not found")
    return row
