"""Django admin for self-hosters: projects, members and keys (keys are created by command)."""

from __future__ import annotations

from django.contrib import admin

from ingest.models import ApiKey, IngestRejection, Membership, Project


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 1


class ApiKeyInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ApiKey
    extra = 0
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("name", "prefix", "created_at", "last_used_at")
    can_delete = False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "slug", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (MembershipInline, ApiKeyInline)


@admin.register(IngestRejection)
class IngestRejectionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("received_at", "project", "source", "field", "message", "is_resolved")
    list_filter = ("is_resolved", "source", "project")
    readonly_fields = ("received_at", "raw", "message", "field", "record_type", "record_index")
