"""`/api/v1/search/`: full-text search over what agents said (analytics/search.py), for a
project key with the `read` scope or a signed-in member of the projects searched."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.safe_csv import csv_rows
from analytics.search import MAX_RESULTS, Hit, search
from analytics.search_index import KINDS
from analytics.search_query import SearchError, parse_query
from api.params import datetime_param
from api.renderers import CSVRenderer
from api.scope import visible_projects
from ingest.models import Project

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class SearchHitSerializer(serializers.Serializer):  # type: ignore[type-arg]
    kind = serializers.ChoiceField(choices=KINDS, help_text="Where the text was said.")
    project = serializers.CharField(source="project_slug")
    session_id = serializers.CharField(source="session_external_id")
    session_name = serializers.CharField()
    target_id = serializers.IntegerField(help_text="The span, transcript line or message id.")
    at = serializers.DateTimeField()
    field = serializers.CharField(
        help_text="prompt, completion, params or returns of a span; text of a line; content "
        "of a message."
    )
    snippet = serializers.CharField(
        help_text="Escaped HTML around the matches, which are in <mark>…</mark>."
    )
    url = serializers.SerializerMethodField(help_text="The page that shows it.")

    def get_url(self, hit: Hit) -> str:
        return str(self.context["request"].build_absolute_uri(hit.url))


@extend_schema(
    parameters=[
        OpenApiParameter(
            "q",
            str,
            required=True,
            description='Web-search syntax: words (all must match), "a phrase", or, -word.',
        ),
        OpenApiParameter("project", str, description="Only this project (slug)."),
        OpenApiParameter("kind", str, description=f"Comma-separated: {', '.join(KINDS)}."),
        OpenApiParameter("since", str, description="ISO time: said at or after."),
        OpenApiParameter("until", str, description="ISO time: said before."),
        OpenApiParameter("limit", int, description=f"1 to {MAX_LIMIT} (default 50)."),
        OpenApiParameter("offset", int),
    ],
    responses={200: SearchHitSerializer(many=True), (200, "text/csv"): str},
)
class SearchList(APIView):
    """Spans, transcript lines and messages whose text matches, newest first, each with a
    highlighted snippet and a link to its page. `?format=csv` exports up to 10,000 hits."""

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]

    def get(self, request: Request) -> Any:
        params = request.query_params
        try:
            query = parse_query(params.get("q", ""))
        except SearchError as exc:
            raise ValidationError({"q": str(exc).removeprefix("q: ")}) from exc
        kinds = [k for k in params.get("kind", ",".join(KINDS)).split(",") if k]
        if not kinds or any(k not in KINDS for k in kinds):
            raise ValidationError({"kind": f"Comma-separated, of {', '.join(KINDS)}"})
        as_csv = request.accepted_renderer.format == CSVRenderer.format
        limit = MAX_RESULTS if as_csv else _whole(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = 0 if as_csv else _whole(params, "offset", 0, 0, MAX_RESULTS)
        hits = search(
            self._project_ids(request),
            query,
            kinds=kinds,
            after=datetime_param(params.get("since"), "since"),
            before=datetime_param(params.get("until"), "until"),
            limit=limit + 1,
            offset=offset,
        )
        rows = SearchHitSerializer(hits[:limit], many=True, context={"request": request}).data
        if as_csv:
            response = StreamingHttpResponse(
                csv_rows(list(SearchHitSerializer().fields), rows),
                content_type="text/csv; charset=utf-8",
            )
            response["Content-Disposition"] = 'attachment; filename="search.csv"'
            return response
        return Response(
            {"results": rows, "has_more": len(hits) > limit, "limit": limit, "offset": offset}
        )

    @staticmethod
    def _project_ids(request: Request) -> list[int]:
        ids = visible_projects(request)
        slug = request.query_params.get("project")
        if not slug:
            return ids
        if "\x00" in slug:
            raise ValidationError({"project": "May not contain NUL characters"})
        return list(Project.objects.filter(pk__in=ids, slug=slug).values_list("pk", flat=True))


def _whole(params: Any, name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, str(default))
    if not value.isascii() or not value.isdecimal() or not low <= int(value) <= high:
        raise ValidationError({name: f"A whole number from {low} to {high}"})
    return int(value)
