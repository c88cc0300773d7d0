"""The audit log's rows in the API and CSV: who, when, what and from where."""

from __future__ import annotations

from rest_framework import serializers

from ingest.audit import change_summary
from ingest.models import AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer[AuditEntry]):
    project = serializers.CharField(source="project.slug", help_text="Project slug.")
    actor_type = serializers.SerializerMethodField(help_text="`user` or `key`.")
    summary = serializers.SerializerMethodField(help_text="The changes as one line of text.")

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "project",
            "at",
            "actor",
            "actor_type",
            "action",
            "target",
            "summary",
            "changes",
            "address",
        ]
        read_only_fields = fields

    def get_actor_type(self, entry: AuditEntry) -> str:
        # The actor text is kept when the key is deleted; it starts "key " only for keys.
        return "key" if entry.api_key_id is not None or entry.actor.startswith("key ") else "user"

    def get_summary(self, entry: AuditEntry) -> str:
        return change_summary(entry.changes)
