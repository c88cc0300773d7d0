"""Coverage of agents, tools and steps by test sessions, without a database."""

from __future__ import annotations

import pandas as pd

from analytics.coverage import coverage_summary, coverage_table


def usage(*rows: tuple[str, str, int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["kind", "name", "count"])


def test_what_production_uses_and_no_test_reaches_comes_first() -> None:
    production = usage(
        ("agent", "planner", 40),
        ("agent", "judge", 12),
        ("tool", "search", 300),
        ("tool", "sql", 9),
    )
    tested = usage(("agent", "planner", 3), ("tool", "search", 20), ("tool", "mock_only", 2))

    table = coverage_table(production, tested)

    assert table.values.tolist() == [
        ["agent", "judge", 12, 0, False],
        ["tool", "sql", 9, 0, False],
        ["agent", "planner", 40, 3, True],
        ["tool", "search", 300, 20, True],
        ["tool", "mock_only", 0, 2, True],
    ]
    assert coverage_summary(table) == {
        "agent": {"used": 2, "covered": 1},
        "tool": {"used": 2, "covered": 1},
        "step": {"used": 0, "covered": 0},
    }


def test_no_usage_at_all_is_an_empty_table() -> None:
    assert coverage_table(usage(), usage()).empty
