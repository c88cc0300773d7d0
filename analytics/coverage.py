"""Test coverage of agent behaviour: which agents, tools and workflow steps the sessions linked to
test results exercised, and which ones production sessions use that no test ever reaches. Pure."""

from __future__ import annotations

import pandas as pd

USAGE_COLUMNS = ["kind", "name", "count"]
COVERAGE_COLUMNS = ["kind", "name", "production_count", "test_count", "is_covered"]
KINDS = ("agent", "tool", "step")


def coverage_table(production: pd.DataFrame, tested: pd.DataFrame) -> pd.DataFrame:
    """Every (kind, name) seen in either frame (COVERAGE_COLUMNS): uncovered ones first, the
    busiest in production first within that.

    production, tested: USAGE_COLUMNS, kind one of KINDS and count the sessions (agents) or calls
    (tools, steps) seen outside tests and in test sessions respectively.
    """
    merged = pd.merge(
        production.reindex(columns=USAGE_COLUMNS).rename(columns={"count": "production_count"}),
        tested.reindex(columns=USAGE_COLUMNS).rename(columns={"count": "test_count"}),
        on=["kind", "name"],
        how="outer",
    )
    merged = merged.fillna({"production_count": 0, "test_count": 0})
    merged["production_count"] = merged["production_count"].astype(int)
    merged["test_count"] = merged["test_count"].astype(int)
    merged["is_covered"] = merged["test_count"] > 0
    merged["kind_order"] = merged["kind"].map({kind: i for i, kind in enumerate(KINDS)})
    merged = merged.sort_values(
        ["is_covered", "kind_order", "production_count", "name"],
        ascending=[True, True, False, True],
    )
    return merged[COVERAGE_COLUMNS].reset_index(drop=True)


def coverage_summary(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per kind: how many names production uses, and how many of those tests reach."""
    summary: dict[str, dict[str, int]] = {}
    for kind in KINDS:
        rows = table[(table["kind"] == kind) & (table["production_count"] > 0)]
        summary[kind] = {"used": len(rows), "covered": int(rows["is_covered"].sum())}
    return summary
