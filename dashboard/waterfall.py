"""Span tree order for the session waterfall and its collapsible tree list. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.span_errors import is_error


@dataclass(frozen=True)
class WaterfallRow:
    """One span placed in the tree: its depth and its offset from the session start."""

    pk: int
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    status: str
    model: str
    depth: int
    start_ms: float
    duration_ms: float | None
    has_children: bool
    # How many open subtrees end right after this row; the template closes that many lists.
    closes: int
    # OTLP: the detailed kind (workflow, agent, task…) when it says more than `kind`.
    detailed_kind: str = ""
    trace_id: str = ""

    @property
    def is_error(self) -> bool:
        return is_error(self.kind, self.status)

    @property
    def close_range(self) -> range:
        return range(self.closes)


def _sort_key(span: Mapping[str, Any]) -> tuple[datetime, int]:
    return (span["started_at"], span["pk"])


def _children_by_parent(
    spans: Sequence[Mapping[str, Any]],
) -> tuple[list[Mapping[str, Any]], dict[str, list[Mapping[str, Any]]]]:
    known = {span["span_id"] for span in spans}
    roots: list[Mapping[str, Any]] = []
    children: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for span in spans:
        parent = span.get("parent_span_id") or ""
        if parent and parent in known and parent != span["span_id"]:
            children[parent].append(span)
        else:
            roots.append(span)
    for siblings in children.values():
        siblings.sort(key=_sort_key)
    return sorted(roots, key=_sort_key), children


def _depth_first(
    roots: Iterable[Mapping[str, Any]],
    children: Mapping[str, list[Mapping[str, Any]]],
    seen: set[int],
) -> list[tuple[Mapping[str, Any], int]]:
    ordered: list[tuple[Mapping[str, Any], int]] = []
    stack = [(span, 0) for span in reversed(list(roots))]
    while stack:
        span, depth = stack.pop()
        if span["pk"] in seen:
            continue
        seen.add(span["pk"])
        ordered.append((span, depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(span["span_id"], [])))
    return ordered


def _duration(span: Mapping[str, Any]) -> float | None:
    if span.get("duration_ms") is not None:
        return float(span["duration_ms"])
    if span.get("ended_at") is not None:
        return (span["ended_at"] - span["started_at"]).total_seconds() * 1000
    return None


def _detailed_kind(span: Mapping[str, Any]) -> str:
    detailed = str(span.get("detailed_kind") or "")
    return "" if detailed == span["kind"] else detailed


def waterfall_rows(
    spans: Sequence[Mapping[str, Any]], *, origin: datetime | None = None
) -> list[WaterfallRow]:
    """Spans in tree order: depth-first by parent_span_id, siblings by start time (then pk).

    Each span needs pk, span_id, parent_span_id, name, kind, status, model, started_at, and
    optionally ended_at, duration_ms, detailed_kind and trace_id. A span whose parent is missing
    is a root. Spans caught in a parent cycle come after the rest, starting from the earliest, so
    every span appears exactly once. Offsets are measured from `origin` (default: the earliest
    span start).
    """
    if not spans:
        return []
    roots, children = _children_by_parent(spans)
    seen: set[int] = set()
    ordered = _depth_first(roots, children, seen)
    leftovers = sorted((s for s in spans if s["pk"] not in seen), key=_sort_key)
    ordered += _depth_first(leftovers, children, seen)
    start = origin if origin is not None else min(span["started_at"] for span in spans)
    rows = []
    for index, (span, depth) in enumerate(ordered):
        next_depth = ordered[index + 1][1] if index + 1 < len(ordered) else 0
        has_children = next_depth > depth
        rows.append(
            WaterfallRow(
                pk=span["pk"],
                span_id=span["span_id"],
                parent_span_id=span.get("parent_span_id") or "",
                name=span["name"],
                kind=span["kind"],
                status=span.get("status") or "",
                model=span.get("model") or "",
                depth=depth,
                start_ms=(span["started_at"] - start).total_seconds() * 1000,
                duration_ms=_duration(span),
                has_children=has_children,
                closes=0 if has_children else depth - next_depth,
                detailed_kind=_detailed_kind(span),
                trace_id=span.get("trace_id") or "",
            )
        )
    return rows
