"""The OpenAPI schema and its Swagger UI / Redoc pages, served offline from the sidecar."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(admin_client: Client) -> Client:
    """Schema and docs are for signed-in users (and project keys)."""
    return admin_client


@pytest.mark.parametrize("name", ["api:schema", "api:swagger-ui", "api:redoc"])
def test_the_schema_and_docs_are_not_public(name: str) -> None:
    assert Client().get(reverse(name)).status_code in (401, 403)


def test_a_project_key_reads_the_schema(project_with_key: tuple[object, str]) -> None:
    _, key = project_with_key
    response = Client().get(reverse("api:schema"), headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 200


CDN_HOSTS = ("cdn.", "jsdelivr", "unpkg", "cdnjs", "googleapis")


def test_the_schema_is_openapi_3_and_lists_every_endpoint(client: Client) -> None:
    response = client.get(reverse("api:schema"), {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) >= {
        "/api/v1/projects/",
        "/api/v1/sessions/",
        "/api/v1/sessions/{session_id}/",
        "/api/v1/sessions/{session_id}/events/",
        "/api/v1/sessions/{session_id}/transcript/",
        "/api/v1/events/",
        "/api/v1/events/{id}/",
        "/api/v1/agents/",
        "/api/v1/status-lines/",
        "/api/v1/metrics/",
        "/api/v1/ingest-problems/",
        "/api/v1/ingest-problems/{id}/",
        "/api/v1/audit/",
        "/api/v1/erasures/",
        "/api/v1/erasures/{id}/",
    }
    assert "delete" in schema["paths"]["/api/v1/sessions/{session_id}/"]
    assert "projectApiKey" in schema["components"]["securitySchemes"]


def test_the_schema_documents_filters_and_pagination(client: Client) -> None:
    schema = client.get(reverse("api:schema"), {"format": "json"}).json()

    sessions = schema["paths"]["/api/v1/sessions/"]["get"]
    names = {parameter["name"] for parameter in sessions["parameters"]}
    transcript = schema["paths"]["/api/v1/sessions/{session_id}/transcript/"]["get"]

    assert names >= {"cursor", "page_size", "tag", "model", "has_errors", "ordering", "project"}
    events = schema["paths"]["/api/v1/events/"]["get"]
    assert "roles" in {parameter["name"] for parameter in transcript["parameters"]}
    assert "trace_id" in {parameter["name"] for parameter in events["parameters"]}
    assert "text/csv" in sessions["responses"]["200"]["content"]


@pytest.mark.parametrize("name", ["api:swagger-ui", "api:redoc"])
def test_the_docs_pages_load_their_scripts_from_our_static_files(client: Client, name: str) -> None:
    response = client.get(reverse(name))

    html = response.content.decode()
    assert response.status_code == 200
    assert "/static/drf_spectacular_sidecar/" in html
    assert not [host for host in CDN_HOSTS if host in html]
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/static/"), url
        assert client.get(url).status_code == 200, url


def test_the_schema_generates_with_no_warnings(tmp_path: Path) -> None:
    """Enum name collisions and unresolvable fields surface as warnings; --fail-on-warn makes
    them an error, so a new endpoint cannot quietly degrade the published schema."""
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml")
    )
    assert "SpanKindEnum" in (tmp_path / "schema.yml").read_text()


def test_every_ingest_endpoint_is_in_the_schema_with_its_raw_body_types(client: Client) -> None:
    from ingest import urls as ingest_urls

    paths = client.get(reverse("api:schema"), {"format": "json"}).json()["paths"]
    # The POST endpoints clients send to (GET /health and /objects/<pk>/ are not an API).
    posted = [
        "/" + str(p.pattern)
        for p in ingest_urls.urlpatterns
        if p.name and p.name not in ("health", "uploaded-object")
    ]

    assert posted and [p for p in posted if p not in paths] == []
    for signal in ("traces", "metrics", "logs"):
        content = paths[f"/v1/{signal}"]["post"]["requestBody"]["content"]
        assert set(content) == {"application/x-protobuf", "application/json"}
    assert "application/json" in paths["/api/v1/ingest"]["post"]["requestBody"]["content"]
