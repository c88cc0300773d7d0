"""Writes of anomalies, incidents, detector flags and error clusters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from analytics.anomalies import AnomalyFlag
from analytics.incidents import IncidentGroup, is_closed
from analytics.models import Anomaly, ErrorCluster, ErrorClusterDay, Incident, SessionFlag
from analytics.store.rollups import BULK_BATCH


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
