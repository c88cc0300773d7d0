"""The read API under /api/v1/: lists (JSON pages or `?format=csv`), details, schema and docs.

A session is addressed by the client's session id, which may contain `/`: the nested routes
come before the detail route so that `…/events/` and `…/transcript/` win.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api import (
    views,
    views_agents,
    views_analytics,
    views_audit,
    views_compare,
    views_lifecycle,
    views_messages,
    views_scores,
    views_search,
    views_testruns,
)

app_name = "api"

urlpatterns = [
    path("projects/", views.ProjectList.as_view(), name="project-list"),
    path("sessions/", views.SessionList.as_view(), name="session-list"),
    path(
        "sessions/<path:session_id>/events/",
        views.SessionEventList.as_view(),
        name="session-event-list",
    ),
    path(
        "sessions/<path:session_id>/transcript/",
        views.SessionTranscript.as_view(),
        name="session-transcript",
    ),
    path("sessions/<path:session_id>/", views.SessionDetail.as_view(), name="session-detail"),
    path(
        "session-comparison/",
        views_compare.SessionComparisonView.as_view(),
        name="session-comparison",
    ),
    path("events/", views.EventList.as_view(), name="event-list"),
    path("events/<int:pk>/", views.EventDetail.as_view(), name="event-detail"),
    path("agents/", views_agents.AgentNameList.as_view(), name="agent-list"),
    path("agent-instances/", views_agents.AgentInstanceList.as_view(), name="agent-instance-list"),
    path("status-lines/", views.StatusLineList.as_view(), name="status-line-list"),
    path("metrics/", views.MetricList.as_view(), name="metric-list"),
    path("scores/", views_scores.ScoreList.as_view(), name="score-list"),
    path("scores/<str:score_id>/", views_scores.ScoreDetail.as_view(), name="score-detail"),
    path("ingest-problems/", views.IngestProblemList.as_view(), name="ingest-problem-list"),
    path(
        "ingest-problems/<int:pk>/",
        views.IngestProblemDetail.as_view(),
        name="ingest-problem-detail",
    ),
    path("messages/", views_messages.MessageList.as_view(), name="message-list"),
    path("messages/<int:pk>/", views_messages.MessageDetail.as_view(), name="message-detail"),
    path("dead-letters/", views_messages.DeadLetterList.as_view(), name="dead-letter-list"),
    path(
        "dead-letters/requeue/",
        views_messages.DeadLetterBulk.as_view(action="requeue"),
        name="dead-letter-requeue-many",
    ),
    path(
        "dead-letters/resolve/",
        views_messages.DeadLetterBulk.as_view(action="resolve"),
        name="dead-letter-resolve-many",
    ),
    path(
        "dead-letters/<int:pk>/requeue/",
        views_messages.DeadLetterRequeue.as_view(),
        name="dead-letter-requeue",
    ),
    path(
        "dead-letters/<int:pk>/resolve/",
        views_messages.DeadLetterResolve.as_view(),
        name="dead-letter-resolve",
    ),
    path(
        "requeued-messages/poll/",
        views_messages.RequeuedPoll.as_view(),
        name="requeued-message-poll",
    ),
    path("agent-edges/", views_messages.AgentEdgeList.as_view(), name="agent-edge-list"),
    path("workflows/", views_messages.WorkflowList.as_view(), name="workflow-list"),
    path("steps/", views_messages.StepList.as_view(), name="step-list"),
    path("test-runs/", views_testruns.TestRunList.as_view(), name="test-run-list"),
    path("test-results/", views_testruns.TestResultList.as_view(), name="test-result-list"),
    path("flaky-tests/", views_testruns.FlakyTestList.as_view(), name="flaky-test-list"),
    path(
        "test-regressions/",
        views_testruns.TestRegressionList.as_view(),
        name="test-regression-list",
    ),
    path(
        "test-duration-regressions/",
        views_testruns.DurationRegressionList.as_view(),
        name="test-duration-regression-list",
    ),
    path("trends/", views_analytics.RollupList.as_view(), name="rollup-list"),
    path("trends/series/", views_analytics.TrendSeriesList.as_view(), name="trend-series"),
    path("anomalies/", views_analytics.AnomalyList.as_view(), name="anomaly-list"),
    path("incidents/", views_analytics.IncidentList.as_view(), name="incident-list"),
    path(
        "anomalies/<int:pk>/status/",
        views_analytics.AnomalyStatus.as_view(),
        name="anomaly-status",
    ),
    path("session-flags/", views_analytics.SessionFlagList.as_view(), name="session-flag-list"),
    path("error-clusters/", views_analytics.ErrorClusterList.as_view(), name="error-cluster-list"),
    path("alert-rules/", views_analytics.AlertRuleList.as_view(), name="alert-rule-list"),
    path("alert-events/", views_analytics.AlertEventList.as_view(), name="alert-event-list"),
    path("reports/", views_analytics.ReportList.as_view(), name="report-list"),
    path("reports/<int:pk>/csv/", views_analytics.ReportCsv.as_view(), name="report-csv"),
    path("report-builder/", views_analytics.ReportBuilder.as_view(), name="report-builder"),
    path("cohorts/", views_analytics.CohortComparison.as_view(), name="cohort-comparison"),
    path("forecasts/", views_analytics.ForecastList.as_view(), name="forecast-list"),
    path("audit/", views_audit.AuditEntryList.as_view(), name="audit-list"),
    path("erasures/", views_lifecycle.ErasureList.as_view(), name="erasure-list"),
    path("erasures/<int:pk>/", views_lifecycle.ErasureDetail.as_view(), name="erasure-detail"),
    path("search/", views_search.SearchList.as_view(), name="search"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="swagger-ui"),
    path(
        "redoc/",
        # Our template drops the upstream page's Google Fonts links: the docs work offline.
        SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html"),
        name="redoc",
    ),
]
