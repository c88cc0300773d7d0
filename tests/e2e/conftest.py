"""Fixtures of the browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page


@pytest.fixture
def watched_page(logged_in_page: Page) -> Iterator[Page]:
    """The logged-in page; a console error, an uncaught page error or any dialog (an `alert(1)`
    from agent text would be one) fails the test."""
    problems: list[str] = []
    logged_in_page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    logged_in_page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_dialog(dialog: Any) -> None:
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    logged_in_page.on("dialog", on_dialog)
    yield logged_in_page
    assert problems == []
