"""When a span counts as an error: one rule, in each form the code asks it. Pure (Q is a value
object; nothing here touches the database).

A span is an error when its status says so (OTLP status ERROR, a failed agentops event) or when
it is an error event itself (kind "error": an agentops ErrorEvent, an OTLP exception event).
"""

from __future__ import annotations

import pandas as pd
from django.db.models import Q

ERROR = "error"  # Span.Kind.ERROR and Span.Status.ERROR are both this value.

# The rule as a queryset filter.
ERROR_SPANS = Q(status=ERROR) | Q(kind=ERROR)


def is_error(kind: object, status: object) -> bool:
    return kind == ERROR or status == ERROR


def error_mask(spans: pd.DataFrame) -> pd.Series:
    """True for each row of a span frame (columns kind and status) that is an error."""
    return (spans["kind"] == ERROR) | (spans["status"] == ERROR)
