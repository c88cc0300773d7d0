"""Plotly figures for the dashboard, one module per chart family; pure (DataFrames and row
dataclasses in, figures out, no ORM). Views import `dashboard.charts` and use the names below."""

from __future__ import annotations

from dashboard.charts.analytics import (
    anomaly_timeline_chart,
    cluster_chart,
    cohort_chart,
    forecast_chart,
    latency_percentiles_chart,
    resource_chart,
    score_chart,
    series_chart,
    top_groups,
)
from dashboard.charts.base import COLORS, base_layout, figure_data, figure_json
from dashboard.charts.multiagent import (
    agent_graph_chart,
    density_chart,
    gantt_chart,
    sequence_chart,
)
from dashboard.charts.sessions import (
    LABEL_CHARS,
    activity_chart,
    cost_by_model_chart,
    daily_calls_chart,
    latency_chart,
    waterfall_chart,
)
from dashboard.charts.testruns import (
    OUTCOME_COLORS,
    outcome_heatmap,
    pass_rate_chart,
    run_duration_chart,
)

__all__ = [
    "COLORS",
    "LABEL_CHARS",
    "OUTCOME_COLORS",
    "activity_chart",
    "agent_graph_chart",
    "anomaly_timeline_chart",
    "base_layout",
    "cluster_chart",
    "cohort_chart",
    "cost_by_model_chart",
    "daily_calls_chart",
    "density_chart",
    "figure_data",
    "figure_json",
    "forecast_chart",
    "gantt_chart",
    "latency_chart",
    "latency_percentiles_chart",
    "outcome_heatmap",
    "pass_rate_chart",
    "resource_chart",
    "run_duration_chart",
    "score_chart",
    "sequence_chart",
    "series_chart",
    "top_groups",
    "waterfall_chart",
]
