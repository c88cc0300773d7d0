"""Django admin for superusers: projects (members, keys, price overrides, session attributes),
ingest problems, and read-only views of trace links, uploaded objects and the audit log. Project
admins use the settings pages (dashboard/views_settings.py) instead."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.db.models.functions import Length
from django.http import HttpRequest

from ingest.models import (
    ApiKey,
    AuditEntry,
    IngestRejection,
    Membership,
    MessageMappingRule,
    ModelPrice,
    Project,
    TraceLink,
    UploadedObject,
)


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 1


class ApiKeyInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ApiKey
    extra = 0
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("name", "prefix", "created_at", "last_used_at")
    can_delete = False


class ModelPriceInline(admin.TabularInline):  # type: ignore[type-arg]
    """The project's overrides of the built-in price table (USD per million tokens)."""

    model = ModelPrice
    extra = 0
    fields = (
        "model",
        "input_per_million",
        "output_per_million",
        "cached_input_per_million",
        "reasoning_per_million",
    )
    verbose_name = "model price override"


@admin.register(MessageMappingRule)
class MessageMappingRuleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """OTLP: span attributes that carry messages between agents, for frameworks with their own
    conventions (TaskWeaver's in.from / in.recipient / in.message is built in)."""

    list_display = ("name", "project", "span_name", "sender_attribute", "receiver_attribute")
    list_filter = ("project",)
    fields = (
        "project",
        "name",
        "span_name",
        "sender_attribute",
        "receiver_attribute",
        "content_attribute",
        "channel_attribute",
        "message_id_attribute",
        "correlation_attribute",
    )


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "slug", "created_at")
    fields = ("name", "slug", "session_attributes", "requeue_webhook_url", "requeue_webhook_secret")
    readonly_fields = ("requeue_webhook_secret",)
    # Django 6 makes https the default scheme of a URL typed without one; choose it now.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    prepopulated_fields = {"slug": ("name",)}
    inlines = (MembershipInline, ApiKeyInline, ModelPriceInline)


@admin.register(IngestRejection)
class IngestRejectionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("received_at", "project", "source", "field", "message", "is_resolved")
    list_filter = ("is_resolved", "source", "project")
    readonly_fields = ("received_at", "raw", "message", "field", "record_type", "record_index")


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Rows that only ingest writes: the admin may look, not add, change or delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TraceLink)
class TraceLinkAdmin(ReadOnlyAdmin):
    list_display = ("trace_id", "session", "round_index", "project")
    list_filter = ("project",)
    list_select_related = ("session", "project")
    search_fields = ("trace_id", "session__external_id")


@admin.register(UploadedObject)
class UploadedObjectAdmin(ReadOnlyAdmin):
    list_display = ("pk", "project", "created_at", "size")
    list_filter = ("project",)
    list_select_related = ("project",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[UploadedObject]:
        # The list shows each body's length, not the body, which can be megabytes.
        queryset: QuerySet[UploadedObject] = super().get_queryset(request)
        return queryset.annotate(body_chars=Length("body")).defer("body")

    @admin.display(description="characters", ordering="body_chars")
    def size(self, uploaded: UploadedObject) -> int:
        return int(getattr(uploaded, "body_chars", 0))


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Written only by ingest/audit.py: an entry is never edited or deleted by hand."""

    list_display = ("at", "project", "actor", "action", "target", "address")
    list_filter = ("action", "project")
    list_select_related = ("project",)
    search_fields = ("actor", "target")
