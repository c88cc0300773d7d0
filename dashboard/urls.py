"""Dashboard page URLs (all require login)."""

from __future__ import annotations

from django.urls import path

from dashboard import (
    views,
    views_analytics,
    views_compare,
    views_messages,
    views_overview,
    views_problems,
    views_scores,
    views_search,
    views_settings,
    views_testruns,
)

app_name = "dashboard"

urlpatterns = [
    path("", views_overview.overview, name="overview"),
    path("sessions/", views.session_list, name="session-list"),
    path("search/", views_search.search_page, name="search"),
    path("sessions/compare/", views_compare.session_compare, name="session-compare"),
    path("sessions/<int:pk>/", views.session_detail, name="session-detail"),
    path("sessions/<int:pk>/stream/", views.session_stream, name="session-stream"),
    path("sessions/<int:pk>/delete/", views.session_delete, name="session-delete"),
    path("sessions/<int:pk>/lines/<int:line_pk>/", views.session_line, name="session-line"),
    path("sessions/<int:pk>/spans/<int:span_pk>/", views.span_detail, name="span-detail"),
    path("sessions/<int:pk>/scores/", views_scores.score_save, name="score-save"),
    path(
        "sessions/<int:pk>/scores/<int:score_pk>/delete/",
        views_scores.score_delete,
        name="score-delete",
    ),
    path("sessions/<int:pk>/messages/", views_messages.session_messages, name="session-messages"),
    path("messages/", views_messages.message_list, name="message-list"),
    path("messages/<int:pk>/", views_messages.message_detail, name="message-detail"),
    path("dead-letters/", views_messages.dead_letters, name="dead-letters"),
    path("dead-letters/action/", views_messages.dead_letter_action, name="dead-letter-action"),
    path("agents/", views_messages.agent_list, name="agent-list"),
    path("agents/<int:pk>/", views_messages.agent_detail, name="agent-detail"),
    path("agents/named/<path:name>/", views_messages.agent_name_detail, name="agent-name"),
    path("workflows/", views_messages.workflow_list, name="workflow-list"),
    path("workflows/<int:pk>/", views_messages.workflow_detail, name="workflow-detail"),
    path("trends/", views_analytics.trends, name="trends"),
    path("anomalies/", views_analytics.anomalies, name="anomalies"),
    path("incidents/", views_analytics.incidents, name="incidents"),
    path("anomalies/<int:pk>/status/", views_analytics.anomaly_status, name="anomaly-status"),
    path("errors/", views_analytics.errors, name="errors"),
    path("alerts/", views_analytics.alerts, name="alerts"),
    path("alerts/<int:pk>/action/", views_analytics.alert_action, name="alert-action"),
    path("reports/", views_analytics.reports, name="reports"),
    path("reports/make/", views_analytics.report_make, name="report-make"),
    path("reports/<int:pk>/", views_analytics.report_html, name="report-html"),
    path("compare/", views_analytics.compare, name="compare"),
    path("ingest-problems/", views_problems.ingest_problems, name="ingest-problems"),
    path(
        "ingest-problems/replay/",
        views_problems.rejection_replay_selected,
        name="rejection-replay-selected",
    ),
    path(
        "ingest-problems/<int:pk>/replay/", views_problems.rejection_replay, name="rejection-replay"
    ),
    path("tests/", views_testruns.heatmap, name="tests"),
    path("tests/runs/", views_testruns.run_list, name="test-runs"),
    path("tests/runs/<int:pk>/", views_testruns.run_detail, name="test-run-detail"),
    path("tests/results/<int:pk>/", views_testruns.result_detail, name="test-result-detail"),
    path("tests/flaky/", views_testruns.flaky, name="tests-flaky"),
    path("tests/regressions/", views_testruns.regressions, name="tests-regressions"),
    path("tests/trends/", views_testruns.trends, name="tests-trends"),
    path("tests/coverage/", views_testruns.coverage, name="tests-coverage"),
    path("settings/", views_settings.project_settings, name="settings"),
    path("settings/new-project/", views_settings.project_create, name="project-create"),
    path("settings/members/", views_settings.members, name="settings-members"),
    path("settings/members/<int:pk>/", views_settings.member_change, name="member-change"),
    path("settings/keys/", views_settings.keys, name="settings-keys"),
    path("settings/keys/<int:pk>/revoke/", views_settings.key_revoke, name="key-revoke"),
    path("settings/prices/", views_settings.prices, name="settings-prices"),
    path("settings/prices/<int:pk>/delete/", views_settings.price_delete, name="price-delete"),
    path("settings/mapping/", views_settings.mapping, name="settings-mapping"),
    path(
        "settings/mapping/rules/<int:pk>/delete/",
        views_settings.message_rule_delete,
        name="message-rule-delete",
    ),
    path("settings/channels/", views_settings.channels, name="settings-channels"),
    path("settings/lifecycle/", views_settings.lifecycle, name="settings-lifecycle"),
    path("audit/", views_settings.audit_log, name="audit"),
]
