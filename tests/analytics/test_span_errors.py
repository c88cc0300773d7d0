"""The one rule for an error span agrees with the model's values and reads both fields."""

from __future__ import annotations

import pandas as pd

from analytics.span_errors import ERROR, error_mask, is_error
from ingest.models import Span


def test_the_rule_uses_the_stored_values_of_error_kind_and_status() -> None:
    assert ERROR == Span.Kind.ERROR == Span.Status.ERROR


def test_a_span_is_an_error_by_its_status_or_by_being_an_error_event() -> None:
    frame = pd.DataFrame(
        {"kind": ["llm", "error", "tool", "tool"], "status": ["error", "unset", "ok", None]}
    )
    assert error_mask(frame).tolist() == [True, True, False, False]
    assert [is_error(k, s) for k, s in zip(frame["kind"], frame["status"], strict=True)] == [
        True,
        True,
        False,
        False,
    ]
