"""Anomaly flags: hourly metrics of each agent, tool and model (and the project's cost per
session) compared with a robust baseline, median and MAD of the previous days, by hour of week
once there are two weeks of history. Each flag names its top contributing dimension and explains
itself in one sentence. Pure: hourly rollups in, frozen dataclasses out.
"""

from __future__ import annotations

from analytics.anomalies.baselines import (
    EDGE_ARROW,
    MESSAGE_HOUR_COLUMNS,
    MESSAGE_METRICS,
    METRICS,
    SERIES,
    AnomalyFlag,
    DetectionSettings,
)
from analytics.anomalies.detection import detect_anomalies
from analytics.anomalies.messages import detect_message_anomalies
from analytics.anomalies.sentence import explain, format_value

__all__ = [
    "EDGE_ARROW",
    "MESSAGE_HOUR_COLUMNS",
    "MESSAGE_METRICS",
    "METRICS",
    "SERIES",
    "AnomalyFlag",
    "DetectionSettings",
    "detect_anomalies",
    "detect_message_anomalies",
    "explain",
    "format_value",
]
