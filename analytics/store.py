"""Writes of derived results (session summary columns live on ingest.Session but are derived),
and of the user-edited alert rules and report schedules."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from django.db import IntegrityError, transaction
from django.db.models import F, Model, Q
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from analytics.anomalies import AnomalyFlag
from analytics.flakiness import FLAKY_COLUMNS
from analytics.incidents import IncidentGroup, is_closed
from analytics.models import (
    AgentEdgeRollup,
    AgentNameRollup,
    AlertEvent,
    AlertRule,
    Anomaly,
    ErrorCluster,
    ErrorClusterDay,
    Incident,
    NamedRollup,
    PendingRefresh,
    Report,
    ReportSchedule,
    Rollup,
    RollupFields,
    SessionFlag,
    StoredDurationRegression,
    StoredFlakyTest,
    StoredTestRegression,
    TestAnalysisState,
    TestCoverageItem,
    TestDurationDay,
    TestPassRateDay,
    TestTierReliability,
)
from analytics.regressions import DURATION_COLUMNS, REGRESSION_COLUMNS
from analytics.testanalysis import (
    DURATION_DAY_COLUMNS,
    PASS_RATE_DAY_COLUMNS,
    RANGE_COVERAGE_COLUMNS,
    TIER_RELIABILITY_COLUMNS,
    TestAnalysis,
)
from ingest.models import Session


def save_session_summaries(updates: dict[int, dict[str, Any]]) -> int:
    """Write recomputed summaries and clear the stale flag, in one bulk update. Idempotent."""
    sessions = list(Session.objects.filter(pk__in=updates.keys()).only("pk"))
    columns: set[str] = set()
    for session in sessions:
        for name, value in updates[session.pk].items():
            setattr(session, name, value)
            columns.add(name)
        session.is_summary_stale = False
    if sessions:
        Session.objects.bulk_update(sessions, [*sorted(columns), "is_summary_stale"])
    return len(sessions)


# --- Analytics engine: refresh marks, rollups, anomalies, flags, clusters ----------------------

BULK_BATCH = 2000


def mark_refresh_pending(starts: dict[int, datetime]) -> list[int]:
    """Note that each project's data changed from its datetime on; widen, never narrow, an
    earlier mark. Returns the projects that had no refresh queued and now have (the caller queues
    one for each). Concurrent callers are safe: the flag flips in one UPDATE."""
    scheduled = []
    for project_id, since in starts.items():
        PendingRefresh.objects.get_or_create(project_id=project_id)
        # updated_at is left alone here: it says when a refresh was last queued or claimed, and
        # the beat sweep uses it to find queued refreshes that never ran, even while data flows.
        PendingRefresh.objects.filter(project_id=project_id).update(
            dirty_from=Least(Coalesce(F("dirty_from"), since), since)
        )
        flipped = PendingRefresh.objects.filter(project_id=project_id, is_scheduled=False).update(
            is_scheduled=True, updated_at=timezone.now()
        )
        if flipped:
            scheduled.append(project_id)
    return scheduled


def claim_refresh(project_id: int) -> datetime | None:
    """Take a project's pending mark: return where its changes begin and clear it, so data that
    arrives meanwhile marks (and schedules) a new refresh. None when nothing is pending."""
    with transaction.atomic():
        pending = PendingRefresh.objects.select_for_update().filter(project_id=project_id).first()
        if pending is None:
            return None
        since = pending.dirty_from
        if since is None and pending.unjudged_from is not None:
            since = timezone.now()  # only older hours are left: a refresh judges a chunk
        PendingRefresh.objects.filter(pk=pending.pk).update(
            dirty_from=None, is_scheduled=False, updated_at=timezone.now()
        )
    return since


def remember_unjudged(project_id: int, *, since: datetime, until: datetime) -> None:
    """Note hours [since, until) to judge later (widening what is already noted)."""
    PendingRefresh.objects.get_or_create(project_id=project_id)
    PendingRefresh.objects.filter(project_id=project_id).update(
        unjudged_from=Least(Coalesce(F("unjudged_from"), since), since),
        unjudged_until=Greatest(Coalesce(F("unjudged_until"), until), until),
    )


def claim_unjudged(project_id: int, *, hours: timedelta) -> tuple[datetime, datetime] | None:
    """Take the oldest `hours` of the noted hours to judge now and leave the rest noted; None
    when nothing is noted."""
    with transaction.atomic():
        pending = PendingRefresh.objects.select_for_update().filter(project_id=project_id).first()
        if pending is None or pending.unjudged_from is None or pending.unjudged_until is None:
            return None
        start, end = (
            pending.unjudged_from,
            min(pending.unjudged_until, pending.unjudged_from + hours),
        )
        rest = end < pending.unjudged_until
        PendingRefresh.objects.filter(pk=pending.pk).update(
            unjudged_from=end if rest else None,
            unjudged_until=pending.unjudged_until if rest else None,
        )
    return start, end


def has_unjudged(project_id: int) -> bool:
    return PendingRefresh.objects.filter(
        project_id=project_id, unjudged_from__isnull=False
    ).exists()


def _none_if_nan(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _rollup_rows(
    project_id: int, granularity: str, rollups: pd.DataFrame, table: type[RollupFields]
) -> list[RollupFields]:
    return [
        table(
            project_id=project_id,
            granularity=granularity,
            bucket_start=row.bucket.to_pydatetime(),
            agent=row.agent[:128],
            model=row.model[:200],
            tool=row.tool[:300],
            kind=row.kind,
            count=int(row.count),
            error_count=int(row.error_count),
            rate_limit_count=int(row.rate_limit_count),
            timed_count=int(row.timed_count),
            latency_sum_ms=float(row.latency_sum_ms),
            latency_p50_ms=_none_if_nan(row.latency_p50_ms),
            latency_p95_ms=_none_if_nan(row.latency_p95_ms),
            latency_p99_ms=_none_if_nan(row.latency_p99_ms),
            latency_histogram=row.latency_histogram,
            prompt_tokens=int(row.prompt_tokens),
            completion_tokens=int(row.completion_tokens),
            token_call_count=int(row.token_call_count),
            cost=float(row.cost),
            step_count=int(row.step_count),
            message_count=int(row.message_count),
        )
        for row in rollups.itertuples(index=False)
    ]


def _replace_rows(model: type[Model], stale: dict[str, Any], rows: Sequence[Model]) -> int:
    """Delete the rows matching `stale` and insert `rows`, in one transaction. Two refreshes of
    one project racing each other collide on the table's unique constraint; the loser retries
    once (the winner's commit is then what it deletes)."""
    for attempt in range(2):
        try:
            with transaction.atomic():
                model.objects.filter(**stale).delete()
                model.objects.bulk_create(rows, batch_size=BULK_BATCH)
            return len(rows)
        except IntegrityError:
            if attempt:
                raise
    return len(rows)


def replace_rollups(
    project_id: int,
    granularity: str,
    *,
    since: datetime,
    until: datetime,
    rollups: pd.DataFrame,
    named: bool = False,
) -> int:
    """Make the stored rollups (Rollup, or with `named` NamedRollup: rows by agent name) of
    buckets in [since, until) exactly `rollups`, in one transaction: dimension values that no
    longer occur disappear. Idempotent. Two refreshes of one project racing each other collide on
    the unique constraint; the loser retries once."""
    table: type[RollupFields] = NamedRollup if named else Rollup
    rows = _rollup_rows(project_id, granularity, rollups, table)
    stale = {
        "project_id": project_id,
        "granularity": granularity,
        "bucket_start__gte": since,
        "bucket_start__lt": until,
    }
    return _replace_rows(table, stale, rows)


def replace_agent_name_rollups(
    project_id: int, *, since: datetime, until: datetime, activity: pd.DataFrame
) -> int:
    """Make the stored AgentNameRollup rows of the hours in [since, until) exactly `activity`
    (analytics.agent_names.ACTIVITY_COLUMNS), in one transaction. Idempotent; a racing refresh
    of the same hours collides on the unique constraint and the loser retries once."""
    rows = [
        AgentNameRollup(
            project_id=project_id,
            hour=row.hour.to_pydatetime(),
            name=str(row.name)[:128],
            session_count=int(row.session_count),
            last_seen=None
            if pd.isna(row.last_seen)
            else pd.Timestamp(row.last_seen).to_pydatetime(),
            sent_count=int(row.sent_count),
            failed_count=int(row.failed_count),
        )
        for row in activity.itertuples(index=False)
    ]
    stale = {"project_id": project_id, "hour__gte": since, "hour__lt": until}
    return _replace_rows(AgentNameRollup, stale, rows)


def replace_edge_rollups(
    project_id: int, *, since: datetime, until: datetime, rollups: pd.DataFrame
) -> int:
    """Make the stored agent-edge rollups of the hours in [since, until) exactly `rollups`
    (analytics.messaging.EDGE_ROLLUP_COLUMNS), in one transaction. Idempotent; a racing
    refresh of the same hours collides on the unique constraint and the loser retries once."""
    rows = [
        AgentEdgeRollup(
            project_id=project_id,
            hour=row.hour.to_pydatetime(),
            sender=row.sender[:128],
            receiver=row.receiver[:128],
            message_count=int(row.message_count),
            failed_count=int(row.failed_count),
            dead_lettered_count=int(row.dead_lettered_count),
            delivery_histogram=row.delivery_histogram,
        )
        for row in rollups.itertuples(index=False)
    ]
    stale = {"project_id": project_id, "hour__gte": since, "hour__lt": until}
    return _replace_rows(AgentEdgeRollup, stale, rows)


def save_anomalies(
    project_id: int,
    flags: Sequence[AnomalyFlag],
    examples: dict[int, list[int]],
    *,
    since: datetime,
    until: datetime,
) -> int:
    """Make the flags judged over [since, until) exactly `flags`: upsert them by (project,
    subject, metric, window start), so a rerun updates the numbers and keeps an acknowledged or
    resolved status, and delete open flags starting in the range that were not found again
    (the data changed). examples: session pks by index into `flags`."""
    keep = {(f.subject_type, f.subject[:300], f.metric, f.window_start) for f in flags}
    judged = Anomaly.objects.filter(
        project_id=project_id,
        status=Anomaly.Status.OPEN,
        window_start__gte=since,
        window_start__lt=until,
    )
    gone = [
        pk
        for pk, *key in judged.values_list(
            "pk", "subject_type", "subject", "metric", "window_start"
        )
        if tuple(key) not in keep
    ]
    Anomaly.objects.filter(pk__in=gone).delete()
    rows = [
        Anomaly(
            project_id=project_id,
            subject_type=flag.subject_type,
            subject=flag.subject[:300],
            metric=flag.metric,
            window_start=flag.window_start,
            window_end=flag.window_end,
            observed=flag.observed,
            baseline=flag.baseline,
            score=flag.score,
            sample_count=flag.sample_count,
            is_seasonal=flag.is_seasonal,
            top_dimension=flag.top_dimension[:400],
            top_share=flag.top_share,
            example_session_ids=examples.get(i, []),
            explanation=flag.explanation,
            updated_at=timezone.now(),
        )
        for i, flag in enumerate(flags)
    ]
    Anomaly.objects.bulk_create(
        rows,
        batch_size=BULK_BATCH,
        update_conflicts=True,
        unique_fields=["project", "subject_type", "subject", "metric", "window_start"],
        update_fields=[
            "window_end",
            "observed",
            "baseline",
            "score",
            "sample_count",
            "is_seasonal",
            "top_dimension",
            "top_share",
            "example_session_ids",
            "explanation",
            "updated_at",
        ],
    )
    return len(rows)


def save_incidents(
    project_id: int, groups: Sequence[IncidentGroup], *, regrouped: Sequence[int], now: datetime
) -> int:
    """Make the incidents of the flags `regrouped` (Anomaly pks) exactly `groups`: a group
    continuing an incident updates it (its opened_at, so its alert, stays), a new one is created,
    and an incident none of its flags is in any more is deleted. Then every open incident of the
    project quiet since QUIET_TO_CLOSE closes. One transaction."""
    with transaction.atomic():
        existing = {
            i.pk: i for i in Incident.objects.filter(project_id=project_id, anomalies__in=regrouped)
        }
        kept: set[int] = set()
        for group in groups:
            incident = existing.get(group.incident_key or 0) or Incident(
                project_id=project_id, opened_at=now
            )
            _fill_incident(incident, group, now=now)
            incident.save()
            kept.add(incident.pk)
            Anomaly.objects.filter(pk__in=group.flag_keys).update(incident=incident)
        # Emptied by the regrouping, or by save_anomalies deleting flags not found again.
        Incident.objects.filter(project_id=project_id, anomalies__isnull=True).delete()
        stale = Incident.objects.filter(project_id=project_id, status=Incident.Status.OPEN)
        for incident in stale.only("pk", "window_end"):
            if is_closed(incident.window_end, now=now):
                Incident.objects.filter(pk=incident.pk).update(
                    status=Incident.Status.CLOSED, closed_at=now
                )
    return len(groups)


def _fill_incident(incident: Incident, group: IncidentGroup, *, now: datetime) -> None:
    incident.window_start = group.window_start
    incident.window_end = group.window_end
    incident.subject_type = group.subject_type
    incident.subject = group.subject[:300]
    incident.metric = group.metric
    incident.observed = group.observed
    incident.baseline = group.baseline
    incident.score = group.score
    incident.top_dimension = group.top_dimension[:400]
    incident.flag_count = len(group.flag_keys)
    incident.example_session_ids = list(group.example_session_ids)
    incident.explanation = group.explanation
    closed = is_closed(group.window_end, now=now)
    incident.status = Incident.Status.CLOSED if closed else Incident.Status.OPEN
    incident.closed_at = (incident.closed_at or now) if closed else None


def set_anomaly_status(anomaly: Anomaly, status: str, *, user: Any) -> None:
    """Acknowledge, resolve or reopen an anomaly, recording who did it and when."""
    if status not in Anomaly.Status.values:
        raise ValueError(f"unknown anomaly status {status!r}")
    Anomaly.objects.filter(pk=anomaly.pk).update(
        status=status, status_changed_at=timezone.now(), status_changed_by=user
    )


def replace_session_flags(sessions: pd.DataFrame, flags: pd.DataFrame) -> int:
    """Make these sessions' detector flags exactly `flags` (a session that recovered loses its
    flag). sessions: id, project_id; flags: analytics.detectors.FLAG_COLUMNS. Idempotent."""
    projects = dict(zip(sessions["id"], sessions["project_id"], strict=True))
    rows = [
        SessionFlag(
            project_id=projects[row.session_id],
            session_id=int(row.session_id),
            detector=row.detector,
            detail=row.detail,
            evidence_count=int(row.evidence_count),
        )
        for row in flags.itertuples(index=False)
    ]
    with transaction.atomic():
        stale = SessionFlag.objects.filter(session_id__in=list(projects))
        keep = Q()
        for row in rows:
            keep |= Q(session_id=row.session_id, detector=row.detector)
        (stale.exclude(keep) if rows else stale).delete()
        SessionFlag.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["session", "detector"],
            update_fields=["detail", "evidence_count", "detected_at"],
        )
    return len(rows)


def replace_error_cluster_days(
    project_id: int, days: Sequence[date], cluster_days: pd.DataFrame
) -> list[str]:
    """Make the cluster-day rows of these days exactly `cluster_days`
    (analytics.clusters.DAY_COLUMNS) and create clusters seen for the first time. Returns the
    fingerprints whose totals changed (to pass to save_cluster_totals)."""
    with transaction.atomic():
        old = ErrorClusterDay.objects.filter(project_id=project_id, day__in=list(days))
        touched = set(old.values_list("fingerprint", flat=True))
        old.delete()
        ErrorClusterDay.objects.bulk_create(
            [
                ErrorClusterDay(
                    project_id=project_id,
                    fingerprint=row.fingerprint,
                    day=row.day,
                    count=int(row.count),
                    first_seen_at=row.first_seen_at.to_pydatetime(),
                    last_seen_at=row.last_seen_at.to_pydatetime(),
                    agents=list(row.agents),
                )
                for row in cluster_days.itertuples(index=False)
            ],
            batch_size=BULK_BATCH,
        )
        ErrorCluster.objects.bulk_create(
            [
                ErrorCluster(
                    project_id=project_id,
                    fingerprint=row.fingerprint,
                    error_type=row.error_type[:200],
                    pattern=row.pattern,
                    example_message=row.example_message,
                    example_session_id=row.example_session_id,
                    first_seen_at=row.first_seen_at.to_pydatetime(),
                    last_seen_at=row.last_seen_at.to_pydatetime(),
                )
                for row in cluster_days.drop_duplicates("fingerprint").itertuples(index=False)
            ],
            ignore_conflicts=True,
        )
    return sorted(touched | set(cluster_days["fingerprint"]))


def save_cluster_totals(project_id: int, totals: pd.DataFrame, fingerprints: Sequence[str]) -> int:
    """Write clusters' totals (analytics.clusters.cluster_totals of all their days); clusters
    among `fingerprints` with no day left are deleted."""
    with transaction.atomic():
        ErrorCluster.objects.filter(project_id=project_id, fingerprint__in=fingerprints).exclude(
            fingerprint__in=list(totals["fingerprint"])
        ).delete()
        clusters = {
            c.fingerprint: c
            for c in ErrorCluster.objects.filter(
                project_id=project_id, fingerprint__in=list(totals["fingerprint"])
            )
        }
        for row in totals.itertuples(index=False):
            cluster = clusters[row.fingerprint]
            cluster.count = int(row.count)
            cluster.first_seen_at = pd.Timestamp(row.first_seen_at).to_pydatetime()
            cluster.last_seen_at = pd.Timestamp(row.last_seen_at).to_pydatetime()
            cluster.agents = list(row.agents)
        ErrorCluster.objects.bulk_update(
            clusters.values(), ["count", "first_seen_at", "last_seen_at", "agents"], batch_size=500
        )
    return len(clusters)


# --- Alert rules, their evaluations and reports ---------------------------------------------


def save_alert_rule(rule: AlertRule) -> AlertRule:
    """Create or update a rule (the form has validated it); a changed rule starts again at OK."""
    if rule.pk is not None:
        rule.state = AlertRule.State.OK
        rule.state_changed_at = None
        rule.last_notified_at = None
    rule.save()
    return rule


def delete_alert_rule(rule: AlertRule) -> None:
    rule.delete()


def record_alert_evaluation(
    rule: AlertRule,
    *,
    state: str,
    value: float | None,
    at: datetime,
    notified: bool,
) -> None:
    """Store a rule's latest evaluation: its state (and when it changed), value, last notice."""
    fields: dict[str, Any] = {"last_value": value, "last_evaluated_at": at, "state": state}
    if state != rule.state:
        fields["state_changed_at"] = at
    if notified:
        fields["last_notified_at"] = at
    AlertRule.objects.filter(pk=rule.pk).update(**fields)


def add_alert_event(
    rule: AlertRule,
    *,
    at: datetime,
    state: str,
    previous_state: str,
    value: float | None,
    message: str,
    is_test: bool = False,
) -> AlertEvent:
    return AlertEvent.objects.create(
        rule=rule,
        project_id=rule.project_id,
        at=at,
        state=state,
        previous_state=previous_state,
        value=value,
        message=message,
        is_test=is_test,
    )


def record_delivery(event: AlertEvent, *, error: str) -> None:
    """Whether the event's notification got through; `error` empty means it did."""
    AlertEvent.objects.filter(pk=event.pk).update(is_delivered=not error, delivery_error=error)


def save_report(
    project_id: int,
    *,
    period: str,
    period_start: datetime,
    period_end: datetime,
    csv_text: str,
    html_text: str,
) -> Report:
    """Create or replace the report of one project, period and start. Idempotent."""
    report, _ = Report.objects.update_or_create(
        project_id=project_id,
        period=period,
        period_start=period_start,
        defaults={"period_end": period_end, "csv_text": csv_text, "html_text": html_text},
    )
    return report


def mark_report_emailed(report: Report, *, at: datetime) -> None:
    Report.objects.filter(pk=report.pk).update(emailed_at=at)


def save_report_schedule(
    project_id: int, *, is_daily: bool, is_weekly: bool, email_to: str
) -> ReportSchedule:
    schedule, _ = ReportSchedule.objects.update_or_create(
        project_id=project_id,
        defaults={"is_daily": is_daily, "is_weekly": is_weekly, "email_to": email_to},
    )
    return schedule


# --- Test-run analysis (issue 5) -----------------------------------------------------------------


def _model_rows(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Frame rows as model field values: NaN and NaT become None, timestamps datetimes."""
    rows = []
    for record in frame.reindex(columns=list(columns)).to_dict("records"):
        row = {}
        for name, value in record.items():
            if isinstance(value, pd.Timestamp):
                value = None if pd.isna(value) else value.to_pydatetime()
            elif value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
                value = None
            elif hasattr(value, "item"):  # numpy scalars
                value = value.item()
            row[name] = "" if value is None and name in _TEXT_FIELDS else value
        rows.append(row)
    return rows


_TEXT_FIELDS = {
    "name",
    "kind",
    "tier",
    "suite",
    "branch",
    "last_outcome",
    "first_failing_commit",
    "last_passing_commit",
    "slower_since_commit",
}


def _upsert_window(
    model: Any,
    project_id: int,
    window_runs: int,
    frame: pd.DataFrame,
    *,
    columns: Sequence[str],
    key: Sequence[str],
) -> int:
    """Upsert these rows by (project, window_runs, *key) and delete the window's rows the frame
    no longer has: afterwards the window holds exactly the frame. Idempotent."""
    fields = [c for c in columns if c not in key]
    objects = [
        model(project_id=project_id, window_runs=window_runs, **row)
        for row in _model_rows(frame, columns)
    ]
    model.objects.bulk_create(
        objects,
        batch_size=BULK_BATCH,
        update_conflicts=True,
        unique_fields=["project", "window_runs", *key],
        update_fields=fields,
    )
    # bulk_create sets the pks of inserted and updated rows (PostgreSQL and SQLite RETURNING).
    kept = [obj.pk for obj in objects]
    model.objects.filter(project_id=project_id, window_runs=window_runs).exclude(
        pk__in=kept
    ).delete()
    return len(objects)


def save_test_analysis(project_id: int, analysis: TestAnalysis, *, now: datetime) -> int:
    """Store a project's computed test analysis, every window and day in one transaction, and
    mark it computed at `now`. Idempotent: rows are upserted by their keys and the rows a
    recompute no longer finds are deleted. Returns the rows stored."""
    stored = 0
    with transaction.atomic():
        for window_runs, window in analysis.windows.items():
            stored += _upsert_window(
                StoredFlakyTest,
                project_id,
                window_runs,
                window.flaky,
                columns=FLAKY_COLUMNS,
                key=["test_id"],
            )
            stored += _upsert_window(
                StoredTestRegression,
                project_id,
                window_runs,
                window.regressions,
                columns=REGRESSION_COLUMNS,
                key=["branch", "test_id"],
            )
            stored += _upsert_window(
                StoredDurationRegression,
                project_id,
                window_runs,
                window.slower,
                columns=DURATION_COLUMNS,
                key=["test_id"],
            )
        stored += _replace_pass_rate_days(project_id, analysis)
        stored += _replace_trends_and_coverage(project_id, analysis)
        counts = {str(days): count for days, count in analysis.tested_sessions.items()}
        TestAnalysisState.objects.update_or_create(
            project_id=project_id,
            defaults={"computed_at": now, "tested_session_counts": counts},
        )
    return stored


def _upsert_rows(
    model: Any,
    project_id: int,
    frame: pd.DataFrame,
    *,
    columns: Sequence[str],
    key: Sequence[str],
    scope: Q,
) -> int:
    """Upsert the frame's rows by (project, *key) and delete the project's rows within `scope`
    the frame no longer has. Idempotent."""
    objects = [model(project_id=project_id, **row) for row in _model_rows(frame, columns)]
    model.objects.bulk_create(
        objects,
        batch_size=BULK_BATCH,
        update_conflicts=True,
        unique_fields=["project", *key],
        update_fields=[c for c in columns if c not in key],
    )
    model.objects.filter(scope, project_id=project_id).exclude(
        pk__in=[obj.pk for obj in objects]
    ).delete()
    return len(objects)


def _replace_trends_and_coverage(project_id: int, analysis: TestAnalysis) -> int:
    """Duration days from since's day on; tier reliability and coverage of every range (each
    refresh recomputes all the ranges, so rows of a range no longer computed go too)."""
    stored = _upsert_rows(
        TestDurationDay,
        project_id,
        analysis.duration_days,
        columns=DURATION_DAY_COLUMNS,
        key=["day", "tier"],
        scope=Q(day__gte=analysis.since.date()),
    )
    stored += _upsert_rows(
        TestTierReliability,
        project_id,
        analysis.tier_reliability,
        columns=TIER_RELIABILITY_COLUMNS,
        key=["days", "tier"],
        scope=Q(),
    )
    stored += _upsert_rows(
        TestCoverageItem,
        project_id,
        analysis.coverage,
        columns=RANGE_COVERAGE_COLUMNS,
        key=["days", "kind", "name"],
        scope=Q(),
    )
    return stored


def _replace_pass_rate_days(project_id: int, analysis: TestAnalysis) -> int:
    rows = [
        TestPassRateDay(project_id=project_id, **row)
        for row in _model_rows(analysis.pass_rate_days, PASS_RATE_DAY_COLUMNS)
    ]
    TestPassRateDay.objects.bulk_create(
        rows,
        batch_size=BULK_BATCH,
        update_conflicts=True,
        unique_fields=["project", "day", "tier", "suite"],
        update_fields=["passed", "failed", "total", "runs"],
    )
    TestPassRateDay.objects.filter(project_id=project_id, day__gte=analysis.since.date()).exclude(
        pk__in=[row.pk for row in rows]
    ).delete()
    return len(rows)


def mark_test_analysis_pending(project_ids: Sequence[int], *, now: datetime) -> list[int]:
    """Note that these projects' test results changed. Returns those that had no refresh queued
    and now have one (the caller queues a task for each): a burst of results queues one."""
    scheduled = []
    for project_id in sorted(set(project_ids)):
        TestAnalysisState.objects.get_or_create(project_id=project_id)
        flipped = TestAnalysisState.objects.filter(
            project_id=project_id, is_scheduled=False
        ).update(is_scheduled=True, scheduled_at=now)
        if flipped:
            scheduled.append(project_id)
    return scheduled


def claim_test_analysis(project_id: int) -> None:
    """Clear the queued mark before computing, so results that arrive during the computation
    queue another refresh rather than being missed."""
    TestAnalysisState.objects.filter(project_id=project_id).update(is_scheduled=False)
