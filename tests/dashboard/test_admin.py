"""The Django admin self-hosters use next to the dashboard: price overrides and session
attributes on a project, and read-only lists of trace links and uploaded objects."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ingest.models import ModelPrice, Project, TraceLink, UploadedObject
from tests.builders import make_project, make_session

pytestmark = pytest.mark.django_db


def inline_management(prefix: str, total: int = 0, initial: int = 0) -> dict[str, Any]:
    return {
        f"{prefix}-TOTAL_FORMS": total,
        f"{prefix}-INITIAL_FORMS": initial,
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }


def test_a_project_gets_a_price_override_and_session_attributes_in_one_form(
    admin_client: Client,
) -> None:
    project, _ = make_project(name="Acme")
    url = reverse("admin:ingest_project_change", args=[project.pk])
    form = {
        "name": "Acme",
        "slug": "acme",
        "session_attributes": "taskweaver.session_id, app.conversation",
        **inline_management("membership_set"),
        **inline_management("api_keys", total=1, initial=1),
        "api_keys-0-id": project.api_keys.get().pk,
        "api_keys-0-project": project.pk,
        **inline_management("model_prices", total=1),
        "model_prices-0-model": "gpt-4o*",
        "model_prices-0-input_per_million": "2.5",
        "model_prices-0-output_per_million": "10",
    }

    page = admin_client.get(url)
    response = admin_client.post(url, form)

    assert b"Model price overrides" in page.content
    assert b'name="session_attributes"' in page.content
    assert response.status_code == 302, response.content.decode()[:3000]
    project.refresh_from_db()
    assert project.session_attributes == "taskweaver.session_id, app.conversation"
    price = ModelPrice.objects.get(project=project)
    assert (price.model, price.input_per_million, price.output_per_million) == ("gpt-4o*", 2.5, 10)


def test_trace_links_are_listed_but_cannot_be_added_changed_or_deleted(
    admin_client: Client,
) -> None:
    project, _ = make_project(name="Acme")
    make_session(project, external_id="conversation", trace_ids=("ab" * 16,))
    link = TraceLink.objects.get()

    listing = admin_client.get(reverse("admin:ingest_tracelink_changelist"))
    detail = admin_client.get(reverse("admin:ingest_tracelink_change", args=[link.pk]))

    assert listing.status_code == 200 and "ab" * 16 in listing.content.decode()
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert admin_client.get(reverse("admin:ingest_tracelink_add")).status_code == 403
    delete = reverse("admin:ingest_tracelink_delete", args=[link.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert TraceLink.objects.count() == 1


def test_uploaded_objects_are_listed_with_their_size_and_are_read_only(
    admin_client: Client,
) -> None:
    project = Project.objects.create(name="Acme", slug="acme")
    UploadedObject.objects.create(project=project, body="x" * 1234)

    listing = admin_client.get(reverse("admin:ingest_uploadedobject_changelist"))

    assert listing.status_code == 200
    assert ">1234<" in listing.content.decode()
    assert admin_client.get(reverse("admin:ingest_uploadedobject_add")).status_code == 403
