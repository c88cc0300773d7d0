"""Ingest endpoints, at the exact paths each client posts to (SDKs do not follow redirects)."""

from __future__ import annotations

from django.urls import path

from ingest import views, views_agentops, views_otlp

app_name = "ingest"

urlpatterns = [
    path("api/v1/ingest", views.native_batch, name="native-batch"),
    path("api/v1/ingest/", views.native_batch),
    path("api/v1/test-runs/junit", views.junit_upload, name="junit-upload"),
    path("api/v1/test-runs/junit/", views.junit_upload),
    # OTLP/HTTP (any OpenTelemetry exporter, and the agentops 0.4 SDK's traces).
    path("v1/traces", views_otlp.traces, name="otlp-traces"),
    path("v1/traces/", views_otlp.traces),
    path("v1/metrics", views_otlp.metrics, name="otlp-metrics"),
    path("v1/metrics/", views_otlp.metrics),
    path("v1/logs", views_otlp.logs, name="otlp-logs"),
    path("v1/logs/", views_otlp.logs),
    # agentops 0.4.
    path("v3/auth/token", views_agentops.auth_token, name="agentops-auth-token"),
    path("v4/logs/upload/", views_agentops.logs_upload, name="agentops-logs-upload"),
    path("v4/objects/upload/", views_agentops.objects_upload, name="agentops-objects-upload"),
    path("objects/<int:pk>/", views_agentops.object_text, name="uploaded-object"),
    path("health", views_agentops.health, name="health"),
    # agentops 0.2/0.3 (v2 REST).
    path("v2/create_session", views_agentops.v2_create_session, name="agentops-v2-create-session"),
    path("v2/update_session", views_agentops.v2_update_session, name="agentops-v2-update-session"),
    path("v2/create_events", views_agentops.v2_create_events, name="agentops-v2-create-events"),
    path("v2/create_agent", views_agentops.v2_create_agent, name="agentops-v2-create-agent"),
    path("v2/reauthorize_jwt", views_agentops.v2_reauthorize_jwt, name="agentops-v2-reauthorize"),
]
