"""Cursor pagination over (sort column, id), so pages stay stable however many rows tie.

DRF's CursorPagination keeps only the sort value in its cursor and steps over ties with an offset
capped at 1,000, so 1,001 sessions with the same cost could not be walked. Our cursor carries the
row's id as well, and nulls sort last in whichever direction was asked for.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F, Model, OrderBy, Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class SortKey:
    """The column a list is ordered by (its first `order_by` term), with id as the tie-breaker."""

    field: str
    descending: bool
    nullable: bool

    @property
    def text(self) -> str:
        return ("-" if self.descending else "") + self.field


@dataclass(frozen=True)
class Position:
    """A row's place in the ordering; `reverse` means "the rows before it"."""

    value: Any
    pk: int
    reverse: bool


def sort_key(queryset: QuerySet[Any]) -> SortKey:
    """The SortKey of a queryset ordered by plain field names (`"-started_at", "-id"`)."""
    order = queryset.query.order_by or ("-id",)
    first = order[0]
    if not isinstance(first, str):
        raise ImproperlyConfigured(f"Paginated lists order by field names, not {first!r}")
    name = first.lstrip("-")
    try:
        field = queryset.model._meta.get_field("id" if name == "pk" else name)
    except FieldDoesNotExist as exc:
        raise ImproperlyConfigured(f"Cannot paginate by {name!r}: not a column") from exc
    return SortKey(field=field.attname, descending=first.startswith("-"), nullable=field.null)


def keyset_order(queryset: QuerySet[Any], key: SortKey, *, reverse: bool = False) -> QuerySet[Any]:
    """Order by the key then id, nulls last; `reverse` flips it all (for "previous" pages)."""
    descending = key.descending != reverse
    nulls: dict[str, bool] = {"nulls_first": True} if reverse else {"nulls_last": True}
    column = OrderBy(F(key.field), descending=descending, **(nulls if key.nullable else {}))
    return queryset.order_by(column, OrderBy(F("id"), descending=descending))


def keyset_after(key: SortKey, position: Position) -> Q:
    """The rows that come after `position` in keyset_order(…, reverse=position.reverse)."""
    descending = key.descending != position.reverse
    nulls_first = position.reverse
    op = "lt" if descending else "gt"
    if position.value is None:
        after = Q(**{f"{key.field}__isnull": True, f"id__{op}": position.pk})
        return after | Q(**{f"{key.field}__isnull": False}) if nulls_first else after
    after = Q(**{f"{key.field}__{op}": position.value}) | Q(
        **{key.field: position.value, f"id__{op}": position.pk}
    )
    if key.nullable and not nulls_first:
        after |= Q(**{f"{key.field}__isnull": True})
    return after


class KeysetCursorPagination(CursorPagination):
    """`?cursor=` and `?page_size=` (max 1,000); the order is whatever the filters chose."""

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    # Set from the settings' PAGE_SIZE, then per request in paginate_queryset.
    page_size: int
    base_url: str

    # Keyset pagination needs a queryset to order and filter; DRF's base also takes a list.
    def paginate_queryset(  # type: ignore[override]
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any]:
        self.request = request
        self.base_url = request.build_absolute_uri()
        self.page_size = self.get_page_size(request)
        self.key = sort_key(queryset)
        self.model = queryset.model
        position = self.decode_cursor(request)
        reverse = position is not None and position.reverse
        queryset = keyset_order(queryset, self.key, reverse=reverse)
        if position is not None:
            queryset = queryset.filter(keyset_after(self.key, position))
        rows = list(queryset[: self.page_size + 1])
        has_more = len(rows) > self.page_size
        self.page = rows[: self.page_size]
        if reverse:
            self.page.reverse()
            self.has_next, self.has_previous = True, has_more
        else:
            self.has_next, self.has_previous = has_more, position is not None
        return self.page

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param, "")
        if raw == "":
            return int(self.page_size)
        if not raw.isdecimal() or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: "Must be a positive whole number"})
        return min(int(raw), self.max_page_size)

    def get_next_link(self) -> str | None:
        if not (self.has_next and self.page):
            return None
        return self.encode_cursor(self.position_of(self.page[-1], reverse=False))

    def get_previous_link(self) -> str | None:
        if not (self.has_previous and self.page):
            return None
        return self.encode_cursor(self.position_of(self.page[0], reverse=True))

    def position_of(self, row: Model, *, reverse: bool) -> Position:
        return Position(value=getattr(row, self.key.field), pk=row.pk, reverse=reverse)

    def encode_cursor(self, position: Position) -> str:  # type: ignore[override]
        value = position.value
        data = {
            "k": self.key.text,
            "v": value.isoformat() if isinstance(value, datetime) else value,
            "id": position.pk,
            "r": int(position.reverse),
        }
        token = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
        url = remove_query_param(self.base_url, self.cursor_query_param)
        return replace_query_param(url, self.cursor_query_param, token)

    def decode_cursor(self, request: Request) -> Position | None:  # type: ignore[override]
        token = request.query_params.get(self.cursor_query_param, "")
        if not token:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            key, value, pk, reverse = data["k"], data["v"], int(data["id"]), bool(data["r"])
            if value is not None:
                value = self.model._meta.get_field(self.key.field).to_python(value)
        except (ValueError, TypeError, KeyError, binascii.Error, DjangoValidationError) as exc:
            raise ValidationError({self.cursor_query_param: "Invalid cursor"}) from exc
        if key != self.key.text:
            raise ValidationError(
                {self.cursor_query_param: "The cursor is for another ordering; drop it to restart"}
            )
        return Position(value=value, pk=pk, reverse=reverse)
