"""Multi-agent systems: inter-agent messages with their contents, events and mapping rules,
workflow runs and their steps.
"""

from __future__ import annotations

from django.db import models

from ingest.formats.records import MESSAGE_STAGES
from ingest.models.projects import Project
from ingest.models.telemetry import Session


class Message(models.Model):
    """A message one agent sent to others (not a chat transcript line).

    Built from lifecycle records (created, sent, delivered, …) that may arrive in any order; the
    merge rules and derived timings are in ingest/lifecycle.py. Its content lives in
    MessageContent, so lists and the sequence diagram never load it.
    """

    # Message.Stage.DEAD_LETTERED etc., built from the one list of stages.
    # django-stubs types only the class form of TextChoices, not this functional one.
    Stage = models.TextChoices("Stage", [(s.upper(), s) for s in MESSAGE_STAGES])  # type: ignore[call-overload]

    class DeadLetterState(models.TextChoices):
        NONE = "", "not a dead letter"
        OPEN = "open"
        RESOLVED = "resolved"
        REQUEUED = "requeued"
        RECOVERED = "recovered"

    # No foreign-key indexes: the (project, started_at) index starts with project,
    # message_unique with session.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="agent_messages", db_index=False
    )
    message_id = models.CharField(max_length=128, help_text="The client's message id.")
    sender = models.CharField(max_length=128, blank=True, help_text="Sending agent id.")
    receivers = models.JSONField(
        default=list, blank=True, help_text="Receiving agent ids, as the client named them."
    )
    channel = models.CharField(max_length=200, blank=True, help_text="Channel, topic or queue.")
    correlation_id = models.CharField(
        max_length=128, blank=True, help_text="The message this one replies to."
    )
    causation_id = models.CharField(
        max_length=128, blank=True, help_text="The message that caused this one."
    )
    content_type = models.CharField(max_length=100, blank=True)
    content_size = models.IntegerField(null=True, blank=True, help_text="Content size in bytes.")
    preview = models.CharField(
        max_length=200, blank=True, help_text="The start of the content, for lists and hovers."
    )
    status = models.CharField(max_length=20, choices=Stage.choices, default=Stage.CREATED)
    started_at = models.DateTimeField(help_text="The earliest lifecycle time seen.")
    created_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    retried_at = models.DateTimeField(null=True, blank=True)
    dead_lettered_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    delivery_ms = models.FloatField(null=True, blank=True, help_text="Sent to delivered.")
    processing_ms = models.FloatField(
        null=True, blank=True, help_text="Received (or delivered) to processed."
    )
    end_to_end_ms = models.FloatField(
        null=True, blank=True, help_text="Created (or sent) to processed."
    )
    attempt_count = models.IntegerField(default=0)
    retry_count = models.IntegerField(default=0)
    error_type = models.CharField(max_length=200, blank=True)
    error_message = models.CharField(max_length=2000, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    dead_letter_state = models.CharField(
        max_length=10, choices=DeadLetterState.choices, blank=True, default=""
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.CharField(max_length=500, blank=True)
    requeued_at = models.DateTimeField(null=True, blank=True)
    requeue_count = models.IntegerField(default=0)
    poll_id = models.CharField(
        max_length=128, blank=True, help_text="The poll that handed the requeued message over."
    )
    polled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "message_id"], name="message_unique"),
        ]
        indexes = [
            models.Index(fields=["project", "started_at"]),
            models.Index(fields=["session", "started_at", "id"]),
            models.Index(fields=["project", "dead_letter_state", "started_at"]),
            models.Index(fields=["project", "poll_id"]),
            # Plain btrees: a CharField's db_index also builds a LIKE twin on PostgreSQL.
            models.Index(fields=["correlation_id"], name="message_correlation"),
            models.Index(fields=["causation_id"], name="message_causation"),
            models.Index(fields=["status"], name="message_status"),
            models.Index(fields=["dead_letter_state"], name="message_dead_letter_state"),
        ]

    def __str__(self) -> str:
        return f"{self.sender or '?'} -> {', '.join(self.receivers) or '?'}: {self.message_id}"


class MessageContent(models.Model):
    """A message's content and metadata, loaded only by detail views and the requeue poll."""

    message = models.OneToOneField(
        Message, on_delete=models.CASCADE, primary_key=True, related_name="body"
    )
    content = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"content of message {self.pk}"


class MessageEvent(models.Model):
    """One lifecycle record of a message as received: its stage timeline on the detail page."""

    # No foreign-key indexes: message_event_unique starts with project, (message, at) with message.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    client_id = models.CharField(max_length=128)
    stage = models.CharField(max_length=20, choices=Message.Stage.choices)
    at = models.DateTimeField()
    agent_external_id = models.CharField(
        max_length=128, blank=True, help_text="The agent that reported this stage."
    )
    attempt = models.IntegerField(null=True, blank=True)
    error_type = models.CharField(max_length=200, blank=True)
    error_message = models.CharField(max_length=2000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "client_id"], name="message_event_unique"),
        ]
        indexes = [models.Index(fields=["message", "at"])]

    def __str__(self) -> str:
        return f"{self.stage} at {self.at:%H:%M:%S}"


class MessageMappingRule(models.Model):
    """OTLP: which span attributes carry a message's fields, for frameworks with their own
    conventions (TaskWeaver's post spans carry in.from, in.recipient and in.message)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="message_rules")
    name = models.CharField(max_length=100)
    span_name = models.CharField(
        max_length=300, blank=True, help_text="Only spans with this name (blank: any span)."
    )
    sender_attribute = models.CharField(max_length=200)
    receiver_attribute = models.CharField(max_length=200)
    content_attribute = models.CharField(max_length=200, blank=True)
    channel_attribute = models.CharField(max_length=200, blank=True)
    message_id_attribute = models.CharField(
        max_length=200, blank=True, help_text="Blank: the span id is the message id."
    )
    correlation_attribute = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="message_rule_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Workflow(models.Model):
    """One run of a workflow in a session: started, its steps, completed."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCESS = "success"
        FAIL = "fail"
        CANCELLED = "cancelled"

    # No foreign-key indexes: the (project, name, started_at) index starts with project,
    # workflow_unique with session; name is found by (project, name) too.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="workflows", db_index=False
    )
    workflow_id = models.CharField(max_length=128, help_text="The client's workflow run id.")
    name = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    result_summary = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    is_inferred = models.BooleanField(
        default=False, help_text="Created from a step before workflow.start arrived."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "workflow_id"], name="workflow_unique"),
        ]
        indexes = [
            models.Index(fields=["project", "name", "started_at"]),
            # The workflows page and API list a range's newest runs first: without it, every run
            # of the project was read and sorted (190 ms at 50,000 runs).
            models.Index(fields=["project", "started_at"], name="workflow_project_started"),
        ]

    def __str__(self) -> str:
        return self.name or self.workflow_id


class Step(models.Model):
    """One step of a workflow run, with the agent that ran it and the steps it waited for."""

    class Status(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        ERROR = "error"
        SKIPPED = "skipped"
        CANCELLED = "cancelled"

    # Written by COPY, one per task span: no database-level foreign keys, as for Span.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_constraint=False)
    workflow = models.ForeignKey(
        Workflow,
        on_delete=models.CASCADE,
        related_name="steps",
        db_constraint=False,
        db_index=False,  # step_unique starts with workflow
    )
    step_id = models.CharField(max_length=128)
    name = models.CharField(max_length=300, blank=True)
    agent_external_id = models.CharField(max_length=128, blank=True)
    depends_on = models.JSONField(
        default=list, blank=True, help_text="Step ids this step waited for."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    result_summary = models.TextField(blank=True)
    error_type = models.CharField(max_length=200, blank=True)
    error_message = models.CharField(max_length=2000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workflow", "step_id"], name="step_unique"),
        ]

    def __str__(self) -> str:
        return self.name or self.step_id
