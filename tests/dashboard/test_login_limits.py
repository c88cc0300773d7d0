"""Password guessing on the login form is cut off: the OBSERVATORY_LOGIN_FAILURE_LIMIT-th failure
for one user name from one address locks that pair out with a 429, even with the right password; another user, or the same user elsewhere, can still sign in."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from tests.builders import make_user

pytestmark = pytest.mark.django_db


def attempt(password: str, *, username: str = "alice", address: str = "10.0.0.5") -> Any:
    return Client(REMOTE_ADDR=address).post(
        "/accounts/login/", {"username": username, "password": password}
    )


def test_repeated_failures_lock_out_that_user_from_that_address() -> None:
    make_user(username="alice", password="right-password")
    make_user(username="bob", password="bobs-password")

    failures = [attempt("guess").status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    locked = attempt("right-password")

    # The form again with its error, until the failure that reaches the limit locks the pair out.
    assert failures == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    assert locked.status_code == 429
    assert attempt("bobs-password", username="bob").status_code == 302
    assert attempt("right-password", address="10.0.0.6").status_code == 302


def test_a_success_before_the_limit_starts_the_count_again() -> None:
    make_user(username="alice", password="right-password")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt("guess")

    assert attempt("right-password").status_code == 302
    assert attempt("guess").status_code == 200
    assert attempt("right-password").status_code == 302
