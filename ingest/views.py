"""Thin ingest endpoints: authenticate, parse, store, answer."""
from __future__ import annotations
from django.http import HttpRequest, JsonResponse
def native_batch(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"error": "not ready"}, status=503)
