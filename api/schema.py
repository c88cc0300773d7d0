"""OpenAPI (drf-spectacular) extensions: how the API-key authentication appears in the schema."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "projectApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A project API key: `Authorization: Bearer <key>` "
            "(or `X-API-Key: <key>`). It reads only its own project.",
        }


# The ingest endpoints are plain Django views (no DRF on the hot path), which drf-spectacular
# cannot see: they are described here and added by add_ingest_paths. path -> (summary, bodies).
_JSON = {"application/json": {"schema": {"type": "object", "additionalProperties": True}}}
_PROTOBUF_OR_JSON = {
    "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
    **_JSON,
}
_ERROR = {
    "description": "Refused: `{error, field}`",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
            }
        }
    },
}
INGEST_OPERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "/api/v1/ingest": ("A native JSON batch of records (docs/ingest-api.md).", _JSON),
    "/api/v1/test-runs/junit": (
        "A JUnit XML report (query: tier, suite, commit, branch, environment, run_id).",
        {"application/xml": {"schema": {"type": "string"}}},
    ),
    "/v1/traces": ("OTLP/HTTP ExportTraceServiceRequest.", _PROTOBUF_OR_JSON),
    "/v1/metrics": ("OTLP/HTTP ExportMetricsServiceRequest.", _PROTOBUF_OR_JSON),
    "/v1/logs": ("OTLP/HTTP ExportLogsServiceRequest.", _PROTOBUF_OR_JSON),
    "/v3/auth/token": ("agentops 0.4: swap an API key for a bearer token.", _JSON),
    "/v4/logs/upload/": (
        "agentops 0.4: captured stdout (header Trace-Id, decimal).",
        {"text/plain": {"schema": {"type": "string"}}},
    ),
    "/v4/objects/upload/": ("agentops 0.4: an uploaded object `{body}`.", _JSON),
    "/v2/create_session": ("agentops 0.2/0.3: start a session.", _JSON),
    "/v2/update_session": ("agentops 0.2/0.3: update or end a session.", _JSON),
    "/v2/create_events": ("agentops 0.2/0.3: events of a session.", _JSON),
    "/v2/create_agent": ("agentops 0.2/0.3: an agent of a session.", _JSON),
    "/v2/reauthorize_jwt": ("agentops 0.2/0.3: a new session token.", _JSON),
}


def add_ingest_paths(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry: the ingest operations, with their raw
    bodies (protobuf or JSON) and the answers every client relies on."""
    for path, (summary, content) in INGEST_OPERATIONS.items():
        result["paths"][path] = {
            "post": {
                "operationId": "ingest_" + path.strip("/").replace("/", "_").replace(".", "_"),
                "summary": summary,
                "tags": ["ingest"],
                "requestBody": {"required": True, "content": content},
                "security": [{"projectApiKey": []}],
                "responses": {
                    "200": {"description": "Stored (per-record results or OTLP partial_success)"},
                    "400": _ERROR,
                    "401": _ERROR,
                    "413": _ERROR,
                    "415": _ERROR,
                    "503": {"description": "The database is unavailable: retry (Retry-After)"},
                },
            }
        }
    return result
