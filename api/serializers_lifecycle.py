"""Serializers of the data-lifecycle API: erasure requests and what a deletion removed."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ingest.models import ErasureRequest


class ErasureInputSerializer(serializers.Serializer[dict[str, Any]]):
    """POST body of /erasures/."""

    kind = serializers.ChoiceField(
        choices=ErasureRequest.Kind.choices,
        help_text="user_id: sessions whose metadata user_id, user.id, enduser.id or userId is "
        "the value; tag: sessions carrying the tag exactly.",
    )
    value = serializers.CharField(max_length=300, trim_whitespace=True)
    project = serializers.SlugField(
        required=False, help_text="Project slug: needed when you are a member of several."
    )


class ErasureSerializer(serializers.ModelSerializer[ErasureRequest]):
    project = serializers.CharField(source="project.slug", help_text="Project slug.")
    value = serializers.CharField(help_text="The user id or tag; empty once done.")
    value_sha256 = serializers.CharField(source="value_digest")

    class Meta:
        model = ErasureRequest
        fields = [
            "id",
            "project",
            "kind",
            "value",
            "value_sha256",
            "requested_by",
            "requested_at",
            "status",
            "session_count",
            "finished_at",
        ]


class DeletedSerializer(serializers.Serializer[dict[str, Any]]):
    deleted_sessions = serializers.IntegerField()
