"""OpenAPI (drf-spectacular) extensions: how the API-key authentication appears in the schema."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[misc]
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "projectApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A project API key: `Authorization: Bearer <key>` "
            "(or `X-API-Key: <key>`). It reads only its own project.",
        }
