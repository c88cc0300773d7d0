from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import request_finished
from django.db.backends.signals import connection_created


class IngestConfig(AppConfig):
    name = "ingest"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from config.timestamps import use_c_timestamp_loader
        from ingest.landing import land_after_response

        connection_created.connect(use_c_timestamp_loader, dispatch_uid="c-timestamp-loader")

        # Sent after the response is written (gunicorn's sync worker closes it then), so a
        # deferred request's client has its answer before its records are stored.
        request_finished.connect(land_after_response, dispatch_uid="ingest-land-pending")
