"""Ingest endpoints. Exact paths: SDKs post without following redirects."""

from __future__ import annotations

from django.urls import path

from ingest import views

app_name = "ingest"

urlpatterns = [
    path("api/v1/ingest", views.native_batch, name="native-batch"),
    path("api/v1/ingest/", views.native_batch),
]
