"""Writes of derived results (session summary columns live on ingest.Session but are derived),
and of the user-edited alert rules and report schedules. One module per concept; this package
re-exports their functions, so callers keep writing `store.save_anomalies`."""

from __future__ import annotations

from analytics.store.alerts import (
    add_alert_event,
    delete_alert_rule,
    mark_report_emailed,
    record_alert_evaluation,
    record_delivery,
    save_alert_rule,
    save_report,
    save_report_schedule,
)
from analytics.store.anomalies import (
    replace_error_cluster_days,
    replace_session_flags,
    save_anomalies,
    save_cluster_totals,
    save_incidents,
    set_anomaly_status,
)
from analytics.store.refresh import (
    claim_refresh,
    claim_test_analysis,
    claim_unjudged,
    has_unjudged,
    mark_refresh_pending,
    mark_test_analysis_pending,
    remember_unjudged,
)
from analytics.store.rollups import (
    replace_agent_name_rollups,
    replace_edge_rollups,
    replace_rollups,
)
from analytics.store.summaries import (
    mark_summaries_stale,
    save_session_summaries,
    summary_lock,
)
from analytics.store.test_analysis import (
    save_test_analysis,
)

__all__ = [
    "add_alert_event",
    "claim_refresh",
    "claim_test_analysis",
    "claim_unjudged",
    "delete_alert_rule",
    "has_unjudged",
    "mark_refresh_pending",
    "mark_report_emailed",
    "mark_summaries_stale",
    "mark_test_analysis_pending",
    "record_alert_evaluation",
    "record_delivery",
    "remember_unjudged",
    "replace_agent_name_rollups",
    "replace_edge_rollups",
    "replace_error_cluster_days",
    "replace_rollups",
    "replace_session_flags",
    "save_alert_rule",
    "save_anomalies",
    "save_cluster_totals",
    "save_incidents",
    "save_report",
    "save_report_schedule",
    "save_session_summaries",
    "save_test_analysis",
    "set_anomaly_status",
    "summary_lock",
]
