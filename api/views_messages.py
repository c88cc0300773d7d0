"""REST endpoints for multi-agent systems: messages, dead letters (with resolve and requeue),
the requeue poll the agent system calls, the agent graph's edges, workflows and steps."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import queries
from analytics.messaging import causality
from analytics.refresh import expected_workflow_durations
from analytics.tasks import enqueue_requeue_webhook
from api import filters, serializers_messages
from api.params import time_range
from api.renderers import CSVRenderer
from api.scope import project_of, require_person, visible_projects
from api.views import ListView
from ingest import audit, store
from ingest.access import Action
from ingest.models import ApiKey, AuditEntry, Message, Project, Workflow

DEFAULT_GRAPH_RANGE = timedelta(hours=24)


class MessageList(ListView):
    """Messages between agents (without content), newest first."""

    serializer_class = serializers_messages.MessageSerializer
    filterset_class = filters.MessageFilter
    csv_filename = "messages.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.messages_for_projects(visible_projects(self.request))


def message_detail(projects: queries.ProjectScope, pk: int) -> Message:
    """A message with its lifecycle records and causality chain set on it, or 404."""
    message = queries.message_with_content(projects, pk)
    if message is None:
        raise NotFound("Not found")
    ancestors, descendants = causality(message.message_id, queries.causality_links(message))
    message.event_list = queries.message_events(message)  # type: ignore[attr-defined]
    message.ancestors = ancestors  # type: ignore[attr-defined]
    message.descendants = descendants  # type: ignore[attr-defined]
    if not hasattr(message, "body"):
        message.body = None
    return message


class MessageDetail(generics.RetrieveAPIView):  # type: ignore[type-arg]
    """One message with content, metadata, lifecycle records and causality chain."""

    serializer_class = serializers_messages.MessageDetailSerializer
    queryset = Message.objects.none()  # for the schema; get_object() does the real lookup

    def get_object(self) -> Message:
        return message_detail(visible_projects(self.request), self.kwargs["pk"])


class DeadLetterList(ListView):
    """Failed, dead-lettered and expired messages; `?state=open` for those still to handle."""

    serializer_class = serializers_messages.DeadLetterSerializer
    filterset_class = filters.DeadLetterFilter
    csv_filename = "dead-letters.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.dead_letters_for_projects(visible_projects(self.request))


def _dead_letters(request: Request, ids: list[int]) -> QuerySet[Message]:
    return queries.dead_letters_for_projects(visible_projects(request)).filter(pk__in=ids)


def _answer(request: Request, ids: list[int], changed: int) -> Response:
    rows = queries.dead_letters_for_projects(visible_projects(request)).filter(pk__in=ids)
    data = serializers_messages.DeadLetterSerializer(
        rows, many=True, context={"request": request}
    ).data
    return Response({"changed": changed, "messages": data})


REQUEUE, RESOLVE = Action.REQUEUE_DEAD_LETTERS, Action.RESOLVE_DEAD_LETTERS
NOUN = "dead letters"


def _requeue(request: Request, ids: list[int]) -> Response:
    chosen = _dead_letters(request, ids)
    require_person(request, chosen.values_list("project_id", flat=True), REQUEUE)
    with transaction.atomic():
        rows = list(chosen.exclude(dead_letter_state="").values_list("pk", "project_id"))
        pks = store.requeue_messages(chosen)
        audit.record_per_project(request, AuditEntry.Action.DEAD_LETTER_REQUEUE, rows, noun=NOUN)
    transaction.on_commit(partial(enqueue_requeue_webhook, pks))
    return _answer(request, ids, len(pks))


def _resolve(request: Request, ids: list[int], note: str) -> Response:
    chosen = _dead_letters(request, ids)
    require_person(request, chosen.values_list("project_id", flat=True), RESOLVE)
    with transaction.atomic():
        rows = list(chosen.exclude(dead_letter_state="").values_list("pk", "project_id"))
        changed = store.resolve_messages(chosen, note=note)
        audit.record_per_project(
            request,
            AuditEntry.Action.DEAD_LETTER_RESOLVE,
            rows,
            noun=NOUN,
            changes={"note": [None, note]} if note else None,
        )
    return _answer(request, ids, changed)


class DeadLetterRequeue(APIView):
    """Requeue one dead letter: the agent system's next poll (and the webhook) hands it back."""

    @extend_schema(
        request=None,
        responses={200: serializers_messages.DeadLetterActionResultSerializer},
        operation_id="dead_letter_requeue",
    )
    def post(self, request: Request, pk: int) -> Response:
        if not _dead_letters(request, [pk]).exists():
            raise NotFound("No such dead letter")
        return _requeue(request, [pk])


class DeadLetterResolve(APIView):
    """Mark one dead letter resolved, with an optional `note`."""

    @extend_schema(
        request=None,
        responses={200: serializers_messages.DeadLetterActionResultSerializer},
        operation_id="dead_letter_resolve",
    )
    def post(self, request: Request, pk: int) -> Response:
        if not _dead_letters(request, [pk]).exists():
            raise NotFound("No such dead letter")
        # A JSON body may be a list: it names no note.
        data = request.data if isinstance(request.data, dict) else {}
        return _resolve(request, [pk], str(data.get("note", ""))[:500])


class DeadLetterBulk(APIView):
    """`{"ids": [...]}` to requeue (or, at …/resolve/, resolve with a `note`) many at once."""

    action = "requeue"

    @extend_schema(
        request=serializers_messages.DeadLetterActionSerializer,
        responses={200: serializers_messages.DeadLetterActionResultSerializer},
    )
    def post(self, request: Request) -> Response:
        data = serializers_messages.DeadLetterActionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = data.validated_data["ids"]
        if self.action == "resolve":
            return _resolve(request, ids, data.validated_data["note"])
        return _requeue(request, ids)


class RequeuedPoll(APIView):
    """The agent system's poll (API key only): requeued messages with their content, oldest
    first. Send a fresh `poll_id` each time; after a lost answer, send the same one again to
    get the same messages. Each message is handed over once per requeue."""

    renderer_classes = [JSONRenderer]
    key_scope = ApiKey.Scope.POLL

    @extend_schema(
        request=serializers_messages.PollSerializer,
        responses={200: serializers_messages.PollResultSerializer},
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.auth, Project):
            raise PermissionDenied("The poll needs a project API key (Authorization: Bearer)")
        data = serializers_messages.PollSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        messages = store.claim_requeued_messages(
            request.auth,
            poll_id=data.validated_data["poll_id"],
            limit=data.validated_data["limit"],
        )
        body = serializers_messages.PolledMessageSerializer(messages, many=True).data
        return Response({"poll_id": data.validated_data["poll_id"], "messages": body})


RANGE_PARAMS = [
    OpenApiParameter(
        "since", str, description="ISO time; default `days` (else 24 hours) before until."
    ),
    OpenApiParameter("until", str, description="ISO time; default now."),
    OpenApiParameter(
        "days", int, description="Days back from until when since is not given (1-400)."
    ),
    OpenApiParameter(
        "project", str, description="Project slug (needed when a user has several projects)."
    ),
]


class AgentEdgeList(APIView):
    """The agent graph over a time range: sender→receiver edges with message count, failures,
    failure rate and p95 delivery latency (ms). `?format=csv` too."""

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]

    @extend_schema(
        parameters=RANGE_PARAMS, responses=serializers_messages.AgentEdgeSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        project_id = project_of(request)
        since, until = time_range(request, now=timezone.now(), default=DEFAULT_GRAPH_RANGE)
        edges = queries.edge_frame(project_id, since=since, until=until)
        rows = edges.astype(object).where(edges.notna(), None).to_dict("records")
        return Response(
            serializers_messages.AgentEdgeSerializer(rows, many=True).data, status.HTTP_200_OK
        )


class WorkflowList(ListView):
    """Workflow runs, newest first."""

    serializer_class = serializers_messages.WorkflowSerializer
    filterset_class = filters.WorkflowFilter
    csv_filename = "workflows.csv"
    queryset = Workflow.objects.none()

    def get_queryset(self) -> QuerySet[Any]:
        return queries.workflows_for_projects(visible_projects(self.request))

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        self.expected = expected_workflow_durations(page or [], now=timezone.now())
        return page

    def get_serializer_context(self) -> dict[str, Any]:
        expected = getattr(self, "expected", {})  # CSV rows are not paginated: none there
        return {**super().get_serializer_context(), "expected_durations": expected}


class StepList(ListView):
    """Workflow steps, newest first."""

    serializer_class = serializers_messages.StepSerializer
    filterset_class = filters.StepFilter
    csv_filename = "steps.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.steps_for_projects(visible_projects(self.request))
