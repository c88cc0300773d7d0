"""The read API under /api/v1/: lists (JSON pages or `?format=csv`), details, schema and docs.

A session is addressed by the client's session id, which may contain `/`: the nested routes
come before the detail route so that `…/events/` and `…/transcript/` win.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api import views

app_name = "api"

urlpatterns = [
    path("projects/", views.ProjectList.as_view(), name="project-list"),
    path("sessions/", views.SessionList.as_view(), name="session-list"),
    path(
        "sessions/<path:session_id>/events/",
        views.SessionEventList.as_view(),
        name="session-event-list",
    ),
    path(
        "sessions/<path:session_id>/transcript/",
        views.SessionTranscript.as_view(),
        name="session-transcript",
    ),
    path("sessions/<path:session_id>/", views.SessionDetail.as_view(), name="session-detail"),
    path("events/", views.EventList.as_view(), name="event-list"),
    path("events/<int:pk>/", views.EventDetail.as_view(), name="event-detail"),
    path("agents/", views.AgentList.as_view(), name="agent-list"),
    path("status-lines/", views.StatusLineList.as_view(), name="status-line-list"),
    path("metrics/", views.MetricList.as_view(), name="metric-list"),
    path("ingest-problems/", views.IngestProblemList.as_view(), name="ingest-problem-list"),
    path(
        "ingest-problems/<int:pk>/",
        views.IngestProblemDetail.as_view(),
        name="ingest-problem-detail",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="swagger-ui"),
    path(
        "redoc/",
        # Our template drops the upstream page's Google Fonts links: the docs work offline.
        SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html"),
        name="redoc",
    ),
]
