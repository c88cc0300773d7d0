"""What ingest keeps about requests themselves: uploaded objects, the ledger of accepted record
ids, pending (answered, not yet landed) requests and refused records (ingest problems).
"""

from __future__ import annotations

import hashlib

from django.db import models
from django.db.models import Q

from ingest.models.projects import Project


class UploadedObject(models.Model):
    """A body sent to agentops' /v4/objects/upload/, readable back at the URL we answer."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"object {self.pk} ({len(self.body)} chars)"


class ReceivedRecord(models.Model):
    """Ledger of client record ids already accepted: what makes a retried batch a no-op."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, db_index=False
    )  # received_unique starts with project
    record_id = models.CharField(max_length=128)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "record_id"], name="received_unique"),
        ]

    def __str__(self) -> str:
        return self.record_id


class PendingRequest(models.Model):
    """A small OTLP request answered but not yet stored: its body, committed before the answer
    and landed (parsed again and stored with other pending requests of its project) just after
    it, by ingest/landing.py. Deleted in the transaction that stores its records."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    signal = models.CharField(max_length=10, help_text="traces, metrics or logs")
    content_type = models.CharField(max_length=200, blank=True)
    body = models.BinaryField(help_text="The request body as decoded (no Content-Encoding).")
    received_at = models.DateTimeField()
    leased_until = models.DateTimeField(
        null=True, blank=True, help_text="A landing holds this row until then."
    )

    def __str__(self) -> str:
        return f"{self.signal} request of {self.received_at:%Y-%m-%d %H:%M:%S}"


class IngestRejection(models.Model):
    """A record (or body) ingest refused, kept with its reason so it can be fixed and replayed."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rejections")
    source = models.CharField(max_length=20, default="native")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    record_index = models.IntegerField(null=True, blank=True)
    record_type = models.CharField(max_length=50, blank=True)
    field = models.CharField(max_length=300, blank=True)
    message = models.TextField()
    raw = models.TextField(help_text="The rejected record as received (JSON text).")
    replayed_at = models.DateTimeField(null=True, blank=True)
    is_resolved = models.BooleanField(default=False, db_index=True)
    fingerprint = models.CharField(
        max_length=64, help_text="Hash of raw record and reason: a retried bad batch is kept once."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(message=""), name="rejection_has_message"),
            models.UniqueConstraint(fields=["project", "fingerprint"], name="rejection_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.field or self.source}: {self.message[:80]}"

    @staticmethod
    def fingerprint_of(message: str, raw: str) -> str:
        return hashlib.sha256(f"{message}\0{raw}".encode()).hexdigest()
