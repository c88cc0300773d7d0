from __future__ import annotations

from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the follow-up work to ingest's signals: ingest never imports analytics.
        from analytics import receivers  # noqa: F401
