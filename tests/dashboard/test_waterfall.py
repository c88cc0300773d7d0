"""dashboard.waterfall: span tree order and the close counts the tree list needs. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dashboard.waterfall import waterfall_rows

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def span(pk: int, span_id: str, parent: str = "", *, at: float = 0, **extra: Any) -> dict[str, Any]:
    """A span row as analytics.queries.waterfall_spans returns it; `at` is seconds after T0."""
    return {
        "pk": pk,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": span_id,
        "kind": "action",
        "status": "ok",
        "model": "",
        "started_at": T0 + timedelta(seconds=at),
        "ended_at": None,
        "duration_ms": 1000.0,
    } | extra


def order(rows: list[Any]) -> list[tuple[str, int]]:
    return [(row.span_id, row.depth) for row in rows]


def test_rows_are_depth_first_with_siblings_in_start_time_order() -> None:
    spans = [
        span(1, "root", at=0),
        span(2, "b", "root", at=5),
        span(3, "a", "root", at=1),
        span(4, "a1", "a", at=2),
        span(5, "second-root", at=3),
    ]

    assert order(waterfall_rows(spans)) == [
        ("root", 0),
        ("a", 1),
        ("a1", 2),
        ("b", 1),
        ("second-root", 0),
    ]


def test_siblings_that_start_together_keep_their_pk_order() -> None:
    spans = [span(7, "late-pk", at=1), span(3, "early-pk", at=1)]

    assert order(waterfall_rows(spans)) == [("early-pk", 0), ("late-pk", 0)]


def test_a_span_whose_parent_never_arrived_is_a_root() -> None:
    spans = [span(1, "child", "missing-parent", at=0), span(2, "other", at=1)]

    assert order(waterfall_rows(spans)) == [("child", 0), ("other", 0)]


def test_spans_in_a_parent_cycle_still_appear_exactly_once() -> None:
    spans = [span(1, "x", "y", at=0), span(2, "y", "x", at=1), span(3, "self", "self", at=2)]

    rows = waterfall_rows(spans)

    assert sorted(row.span_id for row in rows) == ["self", "x", "y"]
    assert order(rows) == [("self", 0), ("x", 0), ("y", 1)]


def test_close_counts_end_each_subtree_after_its_last_row() -> None:
    spans = [
        span(1, "root", at=0),
        span(2, "a", "root", at=1),
        span(3, "a1", "a", at=2),
        span(4, "b", at=3),
    ]

    rows = waterfall_rows(spans)

    assert [(r.span_id, r.has_children, r.closes) for r in rows] == [
        ("root", True, 0),
        ("a", True, 0),
        ("a1", False, 2),  # closes the lists of "a" and "root"
        ("b", False, 0),
    ]


def test_offsets_are_measured_from_the_origin_and_a_missing_duration_uses_the_end_time() -> None:
    spans = [
        span(1, "a", at=2, duration_ms=None, ended_at=T0 + timedelta(seconds=2.5)),
        span(2, "b", at=3, duration_ms=None),
    ]

    rows = waterfall_rows(spans, origin=T0)

    assert [(r.start_ms, r.duration_ms) for r in rows] == [(2000.0, 500.0), (3000.0, None)]


def test_error_status_or_error_kind_marks_a_row_as_an_error() -> None:
    spans = [span(1, "a", status="error"), span(2, "b", kind="error", status="unset", at=1)]

    assert [row.is_error for row in waterfall_rows(spans)] == [True, True]


def test_no_spans_make_no_rows() -> None:
    assert waterfall_rows([]) == []


def test_rows_carry_the_detailed_kind_only_when_it_says_more_than_the_kind() -> None:
    spans = [
        span(1, "root", detailed_kind="workflow", trace_id="ab" * 16),
        span(2, "same", "root", at=1, detailed_kind="action"),
        span(3, "none", "root", at=2, detailed_kind=None),
    ]

    rows = waterfall_rows(spans)

    assert [row.detailed_kind for row in rows] == ["workflow", "", ""]
    assert [row.trace_id for row in rows] == ["ab" * 16, "", ""]
