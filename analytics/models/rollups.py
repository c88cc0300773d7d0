"""Rollup tables (spans and sessions by agent name, agent activity, message edges) and the
pending-refresh marks that say which projects' rollups are stale.
"""

from __future__ import annotations

from django.db import models

from ingest.models import Project


class Rollup(models.Model):
    """Spans (or sessions, kind "session") of one hour or day for one agent name, model, tool
    and kind: what the overview, trends, forecasts, anomalies and `/api/v1/rollups/` read.
    `agent` is the agent's name, or its id when it has none: OTLP and agentops give each
    session's agent its own id, so rows by id grew with sessions; these grow with names.

    Hours are replaced from the refresh mark's hour on, a day from its hours, so a recompute is
    idempotent."""

    class Granularity(models.TextChoices):
        HOUR = "hour"
        DAY = "day"

    # No index of its own: the unique constraint starts with project (bench/README.md, issue 15).
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    bucket_start = models.DateTimeField()
    agent = models.CharField(
        max_length=128, blank=True, help_text="Agent name, or the agent id of a nameless agent."
    )
    model = models.CharField(max_length=200, blank=True)
    tool = models.CharField(max_length=300, blank=True, help_text="Span name of tool spans.")
    kind = models.CharField(max_length=10, help_text="action, llm, tool, error or session.")
    count = models.IntegerField(default=0)
    error_count = models.IntegerField(default=0)
    rate_limit_count = models.IntegerField(
        default=0, help_text="Errors that name provider throttling (HTTP 429, rate limit)."
    )
    timed_count = models.IntegerField(default=0, help_text="Calls with a duration.")
    latency_sum_ms = models.FloatField(default=0)
    latency_p50_ms = models.FloatField(null=True, blank=True)
    latency_p95_ms = models.FloatField(null=True, blank=True)
    latency_p99_ms = models.FloatField(null=True, blank=True)
    latency_histogram = models.JSONField(
        default=dict, blank=True, help_text="Sparse log-scale histogram {bin: calls}."
    )
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    token_call_count = models.IntegerField(default=0, help_text="Calls that reported tokens.")
    cost = models.FloatField(default=0)
    step_count = models.IntegerField(default=0, help_text="Session rows: events in the sessions.")
    message_count = models.IntegerField(default=0, help_text="Session rows: chat messages.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "granularity", "bucket_start", "agent", "model", "tool", "kind"],
                name="rollup_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "granularity", "bucket_start"], name="rollup_bucket")
        ]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket_start:%Y-%m-%d %H:%M} {self.kind} x{self.count}"


class AgentEdgeRollup(models.Model):
    """Messages of one hour (by their start) from one sender to one receiver: counts and a sparse
    log-scale delivery-time histogram (analytics.trends bins), so the agent graph over any range
    of whole hours merges these rows instead of reading every message.

    Replaced hour by hour by the refresh task, so a recompute is idempotent."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField(help_text="Start of the UTC hour the messages started in.")
    sender = models.CharField(max_length=128, blank=True, help_text="Sending agent id or name.")
    receiver = models.CharField(max_length=128, blank=True, help_text="Receiving agent id or name.")
    message_count = models.IntegerField(default=0)
    failed_count = models.IntegerField(
        default=0, help_text="Messages that failed, were dead-lettered or expired."
    )
    dead_lettered_count = models.IntegerField(default=0)
    delivery_histogram = models.JSONField(
        default=dict, blank=True, help_text="Sparse log-scale histogram {bin: messages}."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "hour", "sender", "receiver"], name="agent_edge_rollup_unique"
            ),
        ]
        indexes = [models.Index(fields=["project", "hour"])]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:%M} {self.sender}→{self.receiver} x{self.message_count}"


class AgentNameRollup(models.Model):
    """One hour of one agent name: the sessions started in it that had an instance of that name,
    their latest end, and the messages the name (or one of its ids) sent in it. The agents page
    sums these over the whole hours of its range instead of reading every instance (agentops and
    OTLP make one per session) and every message.

    Replaced day by day by the refresh task, so a recompute is idempotent."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField(help_text="Start of the UTC hour the sessions or messages started.")
    name = models.CharField(max_length=128, help_text="Agent name, or the id of a nameless one.")
    session_count = models.IntegerField(default=0)
    last_seen = models.DateTimeField(
        null=True, blank=True, help_text="Latest end (or start) of those sessions."
    )
    sent_count = models.IntegerField(default=0, help_text="Messages sent, by id or name.")
    failed_count = models.IntegerField(
        default=0, help_text="Of those, failed, dead-lettered or expired."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "hour", "name"], name="agent_name_rollup_unique"
            ),
        ]
        indexes = [models.Index(fields=["project", "hour"], name="agent_name_rollup_hour")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:%M} {self.name} x{self.session_count}"


class PendingRefresh(models.Model):
    """A project whose derived data is behind its telemetry since `dirty_from`.

    Ingest marks it (through the summary task); the debounced refresh task claims and clears it."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="+")
    dirty_from = models.DateTimeField(null=True, blank=True)
    is_scheduled = models.BooleanField(
        default=False, help_text="A refresh task is queued; more data only widens dirty_from."
    )
    updated_at = models.DateTimeField(auto_now=True)
    unjudged_from = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Hours older than the live lookback whose data changed and that no refresh has "
        "judged yet (an import, a late exporter): later refreshes judge them a bounded chunk "
        "at a time.",
    )
    unjudged_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.project_id} dirty from {self.dirty_from}"
