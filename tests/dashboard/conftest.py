"""What the dashboard page tests share: a member logged in to one project, the URLs of a session's
pages and a stored ingest rejection."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ingest.models import IngestRejection, Session, Span
from tests.builders import make_project, make_user

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SESSIONS = reverse("dashboard:session-list")


@pytest.fixture
def user() -> Any:
    return make_user()


@pytest.fixture
def project(user: Any) -> Any:
    return make_project(name="Acme", user=user)[0]


@pytest.fixture
def logged_in(client: Client, user: Any, project: Any) -> Client:
    client.force_login(user)
    return client


def detail_url(session: Session) -> str:
    return reverse("dashboard:session-detail", args=[session.pk])


def stream_url(session: Session) -> str:
    return reverse("dashboard:session-stream", args=[session.pk])


def span_url(span: Span) -> str:
    return reverse("dashboard:span-detail", args=[span.session_id, span.pk])


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.content[:2000]
    return [session.name or session.external_id for session in response.context["sessions"]]


def make_rejection(project: Any, raw: str, message: str = "bad record") -> IngestRejection:
    """A stored rejection; the fingerprint is what ingest uses to keep a retried one once."""
    return IngestRejection.objects.create(
        project=project,
        message=message,
        raw=raw,
        record_type="session.start",
        fingerprint=hashlib.sha256(raw.encode()).hexdigest(),
    )
