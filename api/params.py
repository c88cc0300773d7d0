"""The query parameters many API views share, parsed in one place: times and time ranges.

Each bad value is a 400 naming the parameter (a ValidationError keyed by it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from analytics.overview import MAX_RANGE_DAYS

DEFAULT_RANGE = timedelta(days=7)


def datetime_param(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 time (UTC when it names no offset), or None when the parameter is absent."""
    if not value:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError as exc:  # well-formed but no such time: 2026-02-30T00:00:00
        raise ValidationError({name: f"Not a real time ({exc}): {value[:40]!r}"}) from exc
    if parsed is None:
        raise ValidationError({name: "An ISO 8601 time, e.g. 2026-11-21T00:00:00Z"})
    return parsed if parsed.tzinfo else timezone.make_aware(parsed, UTC)


def time_range(
    request: Request, *, now: datetime, default: timedelta = DEFAULT_RANGE
) -> tuple[datetime, datetime]:
    """`?since=` and `?until=` (ISO times; until defaults to now), else `?days=` back from until
    (1 to MAX_RANGE_DAYS), else `default` back from until."""
    params = request.query_params
    until = datetime_param(params.get("until"), "until") or now
    since = datetime_param(params.get("since"), "since")
    if since is None:
        length = default
        days = params.get("days")
        if days is not None:
            if not days.isdecimal() or not 1 <= int(days) <= MAX_RANGE_DAYS:
                raise ValidationError({"days": f"A whole number from 1 to {MAX_RANGE_DAYS}"})
            length = timedelta(days=int(days))
        try:
            since = until - length
        except OverflowError:  # until in the year 1: no time before it
            raise ValidationError({"until": "Too early to look back from"}) from None
    if since >= until:
        raise ValidationError({"since": "Must be before until"})
    return since, until
