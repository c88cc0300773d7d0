"""Links from an API answer to the dashboard page that shows the row: one home for all of them.

The paths come from dashboard/urls.py by URL name (a name, not an import, so the API stays below
the dashboard); the link is absolute when the serializer has the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def page_url(context: Mapping[str, Any], page: str, pk: int) -> str:
    """The URL of dashboard page `page` (a URL name such as "session-detail") of row `pk`."""
    path = reverse(f"dashboard:{page}", args=[pk])
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


@extend_schema_field(OpenApiTypes.URI)
class PageUrlField(serializers.Field[int, Any, str, Any]):
    """A read-only serializer field: the row's dashboard page `page`, found by the row's pk or
    by the key or attribute `source` names."""

    def __init__(self, page: str, *, source: str = "pk", **kwargs: Any) -> None:
        super().__init__(source=source, read_only=True, **kwargs)
        self.page = page

    def to_representation(self, value: int) -> str:
        return page_url(self.context, self.page, value)
