"""Derived, recomputable tables: rollups, anomaly flags, session flags, error clusters, reports,
and the user-edited alert rules with their history. One module per concept; Django finds the
models through the imports below.

Everything here except AlertRule can be rebuilt from the telemetry tables in ingest
(`manage.py recompute_analytics`). Writes go through analytics/store.
"""

from __future__ import annotations

from analytics.models.alerts import (
    AlertEvent,
    AlertRule,
    Report,
    ReportSchedule,
)
from analytics.models.anomalies import (
    Anomaly,
    ErrorCluster,
    ErrorClusterDay,
    Incident,
    SessionFlag,
)
from analytics.models.rollups import (
    AgentEdgeRollup,
    AgentNameRollup,
    PendingRefresh,
    Rollup,
)
from analytics.models.search import (
    SearchEntry,
)
from analytics.models.test_analysis import (
    StoredDurationRegression,
    StoredFlakyTest,
    StoredTestRegression,
    TestAnalysisState,
    TestCoverageItem,
    TestDurationDay,
    TestPassRateDay,
    TestTierReliability,
)

__all__ = [
    "AgentEdgeRollup",
    "AgentNameRollup",
    "AlertEvent",
    "AlertRule",
    "Anomaly",
    "ErrorCluster",
    "ErrorClusterDay",
    "Incident",
    "PendingRefresh",
    "Report",
    "ReportSchedule",
    "Rollup",
    "SearchEntry",
    "SessionFlag",
    "StoredDurationRegression",
    "StoredFlakyTest",
    "StoredTestRegression",
    "TestAnalysisState",
    "TestCoverageItem",
    "TestDurationDay",
    "TestPassRateDay",
    "TestTierReliability",
]
