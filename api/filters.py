"""Query-string filters for the read API (django-filter). They work on a plain QueryDict too, so the
dashboard's pages reuse SessionFilter as is. Invalid values are form errors (→ 400 naming the
parameter), never silently ignored."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError as FieldValidationError
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django_filters.fields import IsoDateTimeField
from rest_framework.exceptions import ValidationError

from analytics.queries import sessions_with_score
from analytics.scores import ConditionError, ScoreCondition, parse_score_condition
from analytics.span_errors import ERROR_SPANS
from ingest.models import (
    Agent,
    IngestRejection,
    Message,
    MetricSample,
    Score,
    Session,
    Span,
    Step,
    TestResult,
    TestRun,
    TranscriptLine,
    Workflow,
)

BOOLEAN_CHOICES = [("true", "true"), ("false", "false"), ("1", "1"), ("0", "0")]


def _is_true(value: str) -> bool:
    return value in ("true", "1")


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, in UTC. PostgreSQL refuses offsets past 15:59 (Python allows 23:59),
    and a time near year 1 or 9999 may leave the calendar once in UTC: both were a 500."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise FieldValidationError(
                "Enter a time between the years 1 and 9999 in UTC.", code="invalid"
            ) from None


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class StrictBooleanFilter(filters.TypedChoiceFilter):
    """`true`/`false`/`1`/`0`; anything else is an error (django-filter's own ignores it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("choices", BOOLEAN_CHOICES)
        kwargs.setdefault("coerce", _is_true)
        super().__init__(*args, **kwargs)


class RoleInFilter(filters.BaseInFilter, filters.ChoiceFilter):
    """Comma-separated roles, each checked against the choices."""


def order_by_choice(queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
    """Order by one column, id breaking ties the same way (what the cursor pagination needs)."""
    return queryset.order_by(value, "-id" if value.startswith("-") else "id")


def ordering_filter(*columns: str) -> filters.ChoiceFilter:
    """An `ordering` parameter: one of the columns, with `-` for descending."""
    choices = [(choice, choice) for column in columns for choice in (column, f"-{column}")]
    return filters.ChoiceFilter(
        choices=choices,
        method=order_by_choice,
        label="Sort by this column (`-` prefix: descending).",
    )


def json_list_contains(field: str, value: str) -> Q:
    """Rows whose JSON list `field` holds the string `value`, on SQLite as well as PostgreSQL.

    SQLite has no JSON containment lookup, so there we match the quoted, JSON-encoded string in
    the stored text (case-insensitively, since LIKE is); PostgreSQL uses `@>`.
    """
    if connection.features.supports_json_field_contains:
        return Q(**{f"{field}__contains": [value]})
    return Q(**{f"{field}__icontains": json.dumps(value)})


class ScoreConditionField(forms.CharField):
    """A `?score=` condition, read by analytics.scores (a bad one is the parameter's error)."""

    def to_python(self, value: Any) -> ScoreCondition | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_score_condition(text)
        except ConditionError as exc:
            raise FieldValidationError(str(exc), code="invalid") from None


class ScoreConditionFilter(filters.CharFilter):
    field_class = ScoreConditionField


class ProjectFilterSet(filters.FilterSet):
    project = filters.CharFilter(field_name="project__slug", label="Only this project (slug).")


class SessionFilter(ProjectFilterSet):
    started_after = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")
    tag = filters.CharFilter(method="filter_tag", label="Sessions carrying this tag.")
    agent = filters.CharFilter(method="filter_agent", label="Sessions with an agent by this name.")
    end_state = filters.ChoiceFilter(choices=Session.EndState.choices)
    has_errors = StrictBooleanFilter()
    model = filters.CharFilter(method="filter_model", label="Sessions with an LLM call to it.")
    group_key = filters.CharFilter()
    parent = filters.CharFilter(field_name="parent_external_id", label="Parent session id.")
    q = filters.CharFilter(method="filter_q", label="Text in the name, id or user query.")
    score = ScoreConditionFilter(
        method="filter_score",
        label="Sessions with a score meeting `name[:op:value]`: `judge:lt:0.5`, "
        "`correct:eq:false`, `tone:ne:rude`, or just `judge` (op: lt, lte, gt, gte, eq, ne).",
    )
    ordering = ordering_filter(
        "started_at", "duration_ms", "cost", "event_count", "error_count", "prompt_tokens"
    )

    class Meta:
        model = Session
        fields: Sequence[str] = []

    def filter_score(
        self, queryset: QuerySet[Session], name: str, value: ScoreCondition
    ) -> QuerySet[Session]:
        return sessions_with_score(queryset, value)

    def filter_tag(self, queryset: QuerySet[Session], name: str, value: str) -> QuerySet[Session]:
        return queryset.filter(json_list_contains("tags", value))

    def filter_agent(self, queryset: QuerySet[Session], name: str, value: str) -> QuerySet[Session]:
        named = Agent.objects.filter(session=OuterRef("pk"), name=value)
        return queryset.filter(Q(Exists(named)) | json_list_contains("agent_names", value))

    def filter_model(self, queryset: QuerySet[Session], name: str, value: str) -> QuerySet[Session]:
        calls = Span.objects.filter(session=OuterRef("pk"), kind=Span.Kind.LLM, model=value)
        return queryset.filter(Exists(calls))

    def filter_q(self, queryset: QuerySet[Session], name: str, value: str) -> QuerySet[Session]:
        return queryset.filter(
            Q(name__icontains=value)
            | Q(external_id__icontains=value)
            | Q(user_query__icontains=value)
        )


class EventFilter(ProjectFilterSet):
    session = filters.CharFilter(field_name="session__external_id", label="Session id.")
    trace_id = filters.CharFilter(method="filter_trace_id", label="OTLP trace id (hex).")
    kind = filters.ChoiceFilter(choices=Span.Kind.choices)
    status = filters.ChoiceFilter(choices=Span.Status.choices)
    model = filters.CharFilter()
    agent = filters.CharFilter(method="filter_agent", label="Agent id or agent name.")
    name = filters.CharFilter()
    started_after = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")
    has_error = StrictBooleanFilter(method="filter_has_error", label="Error kind or status.")
    ordering = ordering_filter("started_at", "duration_ms", "cost")

    class Meta:
        model = Span
        fields: Sequence[str] = []

    def filter_agent(self, queryset: QuerySet[Span], name: str, value: str) -> QuerySet[Span]:
        named = Agent.objects.filter(
            session=OuterRef("session"), external_id=OuterRef("agent_external_id"), name=value
        )
        return queryset.filter(Q(agent_external_id=value) | Q(Exists(named)))

    def filter_trace_id(self, queryset: QuerySet[Span], name: str, value: str) -> QuerySet[Span]:
        # Stored lower-case, as OTLP/JSON and the agentops SDK write them.
        return queryset.filter(trace_id=value.strip().lower())

    def filter_has_error(self, queryset: QuerySet[Span], name: str, value: bool) -> QuerySet[Span]:
        failed = ERROR_SPANS
        return queryset.filter(failed) if value else queryset.exclude(failed)


class TranscriptFilter(filters.FilterSet):
    roles = RoleInFilter(
        field_name="role",
        choices=TranscriptLine.Role.choices,
        label="Comma-separated roles (default: all), e.g. `user,assistant`.",
    )
    after = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte")
    before = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = TranscriptLine
        fields: Sequence[str] = []


class StatusLineFilter(ProjectFilterSet):
    session = filters.CharFilter(field_name="session__external_id", label="Session id.")
    roles = RoleInFilter(
        field_name="role",
        choices=[(role.value, role.label) for role in TranscriptLine.STATUS_ROLES],
        label="Comma-separated status roles: agent, llm, tool, log.",
    )
    agent = filters.CharFilter(field_name="agent_external_id", label="Agent id.")
    after = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte")
    before = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt")
    ordering = ordering_filter("at")

    class Meta:
        model = TranscriptLine
        fields: Sequence[str] = []


class AgentFilter(ProjectFilterSet):
    session = filters.CharFilter(field_name="session__external_id", label="Session id.")
    name = filters.CharFilter()
    role = filters.CharFilter()
    status = filters.ChoiceFilter(choices=Agent.Status.choices)
    after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    ordering = ordering_filter("created_at")

    class Meta:
        model = Agent
        fields: Sequence[str] = []


class MetricFilter(ProjectFilterSet):
    session = filters.CharFilter(field_name="session__external_id", label="Session id.")
    name = filters.CharFilter()
    agent = filters.CharFilter(field_name="agent_external_id", label="Agent id.")
    after = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte")
    before = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt")
    ordering = ordering_filter("at", "value")

    class Meta:
        model = MetricSample
        fields: Sequence[str] = []


class ScoreFilter(ProjectFilterSet):
    session = filters.CharFilter(field_name="session__external_id", label="Session id.")
    span_id = filters.CharFilter(label="The client's span id.")
    name = filters.CharFilter()
    source = filters.ChoiceFilter(choices=Score.Source.choices)
    data_type = filters.ChoiceFilter(choices=Score.DataType.choices)
    label = filters.CharFilter(label="Category, true/false, or a numeric score's label.")
    author = filters.CharFilter()
    value_min = filters.NumberFilter(field_name="value", lookup_expr="gte", label="Value ≥ this.")
    value_max = filters.NumberFilter(field_name="value", lookup_expr="lte", label="Value ≤ this.")
    after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    ordering = ordering_filter("created_at", "value")

    class Meta:
        model = Score
        fields: Sequence[str] = []


class IngestProblemFilter(ProjectFilterSet):
    source = filters.CharFilter()
    record_type = filters.CharFilter()
    is_resolved = StrictBooleanFilter()
    after = UtcIsoDateTimeFilter(field_name="received_at", lookup_expr="gte")
    before = UtcIsoDateTimeFilter(field_name="received_at", lookup_expr="lt")

    class Meta:
        model = IngestRejection
        fields: Sequence[str] = []


# --- Inter-agent messages, dead letters, workflows ------------------------------------------


class MessageFilter(ProjectFilterSet):
    session = filters.CharFilter(field_name="session__external_id", label="Session id.")
    sender = filters.CharFilter(label="Sending agent id.")
    receiver = filters.CharFilter(method="filter_receiver", label="A receiving agent id.")
    agent = filters.CharFilter(method="filter_agent", label="Sent or received by this agent id.")
    edge = filters.CharFilter(
        method="filter_edge", label="`sender->receiver` (or `sender→receiver`): one edge."
    )
    channel = filters.CharFilter()
    status = filters.ChoiceFilter(choices=Message.Stage.choices)
    error_type = filters.CharFilter()
    correlation_id = filters.CharFilter()
    causation_id = filters.CharFilter()
    after = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    before = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")
    ordering = ordering_filter("started_at", "delivery_ms", "end_to_end_ms")

    class Meta:
        model = Message
        fields: Sequence[str] = []

    def filter_receiver(
        self, queryset: QuerySet[Message], name: str, value: str
    ) -> QuerySet[Message]:
        return queryset.filter(json_list_contains("receivers", value))

    def filter_agent(self, queryset: QuerySet[Message], name: str, value: str) -> QuerySet[Message]:
        return queryset.filter(Q(sender=value) | json_list_contains("receivers", value))

    def filter_edge(self, queryset: QuerySet[Message], name: str, value: str) -> QuerySet[Message]:
        sender, sep, receiver = value.replace("→", "->").partition("->")
        if not sep:
            raise ValidationError({"edge": "Write an edge as sender->receiver"})
        return queryset.filter(
            Q(sender=sender.strip()) & json_list_contains("receivers", receiver.strip())
        )


class DeadLetterFilter(MessageFilter):
    state = filters.ChoiceFilter(
        field_name="dead_letter_state",
        choices=[c for c in Message.DeadLetterState.choices if c[0]],
        label="open, resolved, requeued or recovered (default: all).",
    )
    ordering = ordering_filter("started_at", "last_attempt_at", "attempt_count")


class WorkflowFilter(ProjectFilterSet):
    session = filters.CharFilter(field_name="session__external_id", label="Session id.")
    name = filters.CharFilter()
    status = filters.ChoiceFilter(choices=Workflow.Status.choices)
    after = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    before = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")
    ordering = ordering_filter("started_at", "duration_ms")

    class Meta:
        model = Workflow
        fields: Sequence[str] = []


class StepFilter(ProjectFilterSet):
    session = filters.CharFilter(field_name="workflow__session__external_id", label="Session id.")
    workflow = filters.CharFilter(field_name="workflow__workflow_id", label="Workflow run id.")
    workflow_name = filters.CharFilter(field_name="workflow__name")
    name = filters.CharFilter()
    agent = filters.CharFilter(field_name="agent_external_id", label="Agent id.")
    status = filters.ChoiceFilter(choices=Step.Status.choices)
    after = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    before = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")
    ordering = ordering_filter("started_at", "duration_ms")

    class Meta:
        model = Step
        fields: Sequence[str] = []


class TestRunFilter(ProjectFilterSet):
    __test__ = False  # pytest: not a test class

    tier = filters.CharFilter()
    suite = filters.CharFilter()
    commit = filters.CharFilter()
    branch = filters.CharFilter()
    environment = filters.CharFilter()
    source = filters.CharFilter()
    started_after = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = TestRun
        fields: Sequence[str] = []


class TestResultFilter(ProjectFilterSet):
    __test__ = False  # pytest: not a test class

    run = filters.CharFilter(field_name="run__external_id", label="The client's run id.")
    test_id = filters.CharFilter()
    outcome = filters.ChoiceFilter(choices=TestResult.Outcome.choices)
    tier = filters.CharFilter(field_name="effective_tier", label="The result's or run's tier.")
    suite = filters.CharFilter(field_name="run__suite")
    commit = filters.CharFilter(field_name="run__commit")
    branch = filters.CharFilter(field_name="run__branch")
    run_started_after = UtcIsoDateTimeFilter(field_name="run__started_at", lookup_expr="gte")
    run_started_before = UtcIsoDateTimeFilter(field_name="run__started_at", lookup_expr="lt")

    class Meta:
        model = TestResult
        fields: Sequence[str] = []
