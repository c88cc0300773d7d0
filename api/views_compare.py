"""`/api/v1/session-comparison/?a=&b=`: two sessions' steps aligned, with what differs
(analytics/session_comparison.py), for a project key with the `read` scope or a member.

Not under `/api/v1/sessions/`: a client session id may be any text, `compare` included, and the
session routes take every path below it.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import queries
from analytics.session_comparison import STEP_LIMIT
from api.scope import session_for_request
from api.serializers import SessionSerializer
from ingest.models import Session


class ComparedStepSerializer(serializers.Serializer):  # type: ignore[type-arg]
    event_id = serializers.IntegerField(source="pk", help_text="The span's /api/v1/events/ id.")
    kind = serializers.CharField(help_text="Detailed kind (agent, task…) or llm, tool, action.")
    name = serializers.CharField()
    model = serializers.CharField()
    status = serializers.CharField()
    error = serializers.CharField()
    prompt_tokens = serializers.IntegerField(allow_null=True)
    completion_tokens = serializers.IntegerField(allow_null=True)
    cost = serializers.FloatField(allow_null=True)
    duration_ms = serializers.FloatField(allow_null=True)
    prompt_preview = serializers.CharField(help_text="The prompt's or tool input's start.")
    output_preview = serializers.CharField(help_text="The completion's or tool result's start.")


class DifferenceSerializer(serializers.Serializer):  # type: ignore[type-arg]
    field = serializers.CharField(
        help_text="name, model, prompt, output, status, error (material); tokens, cost, latency."
    )
    a = serializers.CharField()
    b = serializers.CharField()
    is_material = serializers.BooleanField()


class AlignedStepSerializer(serializers.Serializer):  # type: ignore[type-arg]
    operation = serializers.ChoiceField(
        choices=["same", "changed", "inserted", "deleted"],
        help_text="inserted: only in B; deleted: only in A.",
    )
    is_divergent = serializers.BooleanField()
    a = ComparedStepSerializer(allow_null=True)
    b = ComparedStepSerializer(allow_null=True)
    differences = DifferenceSerializer(many=True)


class MessageItemSerializer(serializers.Serializer):  # type: ignore[type-arg]
    message_pk = serializers.IntegerField(source="pk", help_text="The /api/v1/messages/ id.")
    sender = serializers.CharField(help_text="Agent name, or id when the agent has no name.")
    receivers = serializers.ListField(child=serializers.CharField())
    channel = serializers.CharField()
    status = serializers.CharField()
    preview = serializers.CharField()


class AlignedMessageSerializer(serializers.Serializer):  # type: ignore[type-arg]
    operation = serializers.ChoiceField(choices=["same", "changed", "inserted", "deleted"])
    a = MessageItemSerializer(allow_null=True)
    b = MessageItemSerializer(allow_null=True)
    differing_fields = serializers.ListField(child=serializers.CharField())

    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)
        data["differing_fields"] = sorted(data["differing_fields"])
        return data


class TotalRowSerializer(serializers.Serializer):  # type: ignore[type-arg]
    # DRF's metaclass takes declared fields off the class, so this does not shadow Field.label.
    label = serializers.CharField(  # type: ignore[assignment]
        help_text="duration_ms, tokens, cost, errors, steps."
    )
    a = serializers.FloatField(allow_null=True)
    b = serializers.FloatField(allow_null=True)
    change = serializers.FloatField(allow_null=True, help_text="B minus A.")


class SessionComparisonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    a = SessionSerializer()
    b = SessionSerializer()
    url = serializers.CharField(help_text="The comparison's dashboard page.")
    first_divergence = serializers.IntegerField(
        allow_null=True, help_text="Index in `steps` of the first divergent row; null if none."
    )
    counts = serializers.DictField(child=serializers.IntegerField())
    step_limit = serializers.IntegerField()
    is_truncated_a = serializers.BooleanField()
    is_truncated_b = serializers.BooleanField()
    totals = TotalRowSerializer(many=True)
    steps = AlignedStepSerializer(many=True)
    messages = AlignedMessageSerializer(many=True)


def _session_param(request: Request, name: str) -> Session:
    external_id = request.query_params.get(name, "")
    if not external_id:
        raise ValidationError({name: "Required: a session id"})
    if "\x00" in external_id:  # PostgreSQL text cannot hold NUL: the query would fail (500)
        raise ValidationError({name: "Must not contain NUL characters"})
    try:
        return session_for_request(request, external_id)
    except NotFound as exc:
        raise NotFound({name: str(exc.detail)}) from exc


@extend_schema(
    parameters=[
        OpenApiParameter("a", str, required=True, description="Session A's id (the baseline)."),
        OpenApiParameter("b", str, required=True, description="Session B's id."),
        OpenApiParameter(
            "project", str, description="Project slug: needed when an id is in several projects."
        ),
    ],
    responses={200: SessionComparisonSerializer},
)
class SessionComparisonView(APIView):
    """Sessions A and B side by side: their steps (spans in start order, the first 2,000 of
    each) aligned by kind, name and order, what differs in each pair, the first divergence, the
    message sequences aligned by sender and receivers, and the totals."""

    def get(self, request: Request) -> Response:
        a, b = _session_param(request, "a"), _session_param(request, "b")
        comparison = queries.session_comparison(a, b, step_limit=STEP_LIMIT)
        data = {
            "a": a,
            "b": b,
            "url": request.build_absolute_uri(
                f"{reverse('dashboard:session-compare')}?a={a.pk}&b={b.pk}"
            ),
            "first_divergence": comparison.steps.first_divergence,
            "counts": comparison.steps.counts,
            "step_limit": comparison.step_limit,
            "is_truncated_a": comparison.is_truncated_a,
            "is_truncated_b": comparison.is_truncated_b,
            "totals": comparison.totals,
            "steps": comparison.steps.rows,
            "messages": comparison.messages,
        }
        context = {"request": request}
        return Response(SessionComparisonSerializer(data, context=context).data)
