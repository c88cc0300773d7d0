"""Dashboard page URLs (all require login)."""

from __future__ import annotations

from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("sessions/", views.session_list, name="session-list"),
    path("sessions/<int:pk>/", views.session_detail, name="session-detail"),
    path("sessions/<int:pk>/stream/", views.session_stream, name="session-stream"),
    path("sessions/<int:pk>/spans/<int:span_pk>/", views.span_detail, name="span-detail"),
    path("ingest-problems/", views.ingest_problems, name="ingest-problems"),
    path(
        "ingest-problems/replay/",
        views.rejection_replay_selected,
        name="rejection-replay-selected",
    ),
    path("ingest-problems/<int:pk>/replay/", views.rejection_replay, name="rejection-replay"),
]
