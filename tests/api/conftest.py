"""Fixtures for the read API tests: API clients that authenticate by key or by login."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def key_client() -> Callable[[str], APIClient]:
    """Build a client that sends `Authorization: Bearer <key>` on every request."""

    def build(raw_key: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        return client

    return build


@pytest.fixture
def user_client() -> Callable[[Any], APIClient]:
    """Build a client logged in as a user (session cookie)."""

    def build(user: Any) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return build
