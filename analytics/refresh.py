"""The refresh steps that the Celery tasks and `manage.py recompute_analytics` share: read
(analytics.queries), compute (the pure modules), write (analytics.store), for one project and
time range at a time. Every step replaces or upserts by (project, window), so reruns are safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from django.conf import settings
from django.db import connection

from analytics import queries, store
from analytics.anomalies import (
    DetectionSettings,
    detect_anomalies,
    detect_message_anomalies,
)
from analytics.clusters import cluster_totals, error_cluster_days
from analytics.detectors import detect_failures
from analytics.incidents import GROUP_GAP, group_incidents
from analytics.messaging import edge_rollups
from analytics.queries.rollups import floor_hour
from analytics.scores import DropSettings, score_drops
from analytics.summaries import is_follow_up_due
from analytics.testanalysis import RangeUsage, TestAnalysis, project_test_analysis
from analytics.trends import FREQS, day_rollups, named_rollups, session_rollups, span_rollups
from analytics.workflows import DurationForecast, expected_duration
from ingest.models import Workflow

DAY = timedelta(days=1)
# An incremental refresh judges the hours since its data changed, but never more than this:
# a late batch for last month must not re-judge a month of hours on every refresh.
MAX_ANOMALY_LOOKBACK = timedelta(hours=48)
# Older hours whose data changed (an import, a late exporter) are remembered and judged this many
# at a time per refresh, oldest first, until none are left: bounded work, nothing left unjudged.
MAX_BACKLOG_CHUNK = timedelta(hours=72)
DETECTION = DetectionSettings()
# Score drops are judged against the scores of the days before their window (up to a day wide).
SCORE_HISTORY = timedelta(days=DropSettings().baseline_days + 1)


@dataclass(frozen=True)
class RefreshResult:
    rollup_rows: int
    anomalies: int
    clusters: int
    has_backlog: bool = False  # older hours are still to be judged: refresh again


def floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def days_between(since: datetime, until: datetime) -> Iterator[datetime]:
    """UTC day starts from since's day to until's day, inclusive."""
    day = floor_day(since)
    while day < until:
        yield day
        day += DAY


def _rollups_of(spans: pd.DataFrame, sessions: pd.DataFrame, freq: str) -> pd.DataFrame:
    parts = [span_rollups(spans, freq=freq), session_rollups(sessions, freq=freq)]
    parts = [part for part in parts if len(part)]
    return pd.concat(parts, ignore_index=True) if parts else span_rollups(spans, freq=freq)


def refresh_rollups_of_day(
    project_id: int, day: datetime, *, changed_since: datetime | None = None
) -> int:
    """Rebuild the hour rollups of one UTC day from its spans and sessions, from changed_since's
    hour on (the whole day without it), agents folded by name, then the day's rows from all its
    stored hours (a few rows an hour: names, not ids)."""
    start = day if changed_since is None else max(day, floor_hour(changed_since))
    until = day + DAY
    spans = queries.rollup_span_frame(project_id, since=start, until=until)
    sessions = queries.rollup_session_frame(project_id, since=start, until=until)
    names = queries.agent_names_by_id(project_id, since=day - DAY, until=until)
    hours = named_rollups(_rollups_of(spans, sessions, FREQS["hour"]), names)
    rows = store.replace_rollups(project_id, "hour", since=start, until=until, rollups=hours)
    if start > day:
        earlier = queries.rollup_frame(project_id, granularity="hour", since=day, until=start)
        hours = pd.concat([earlier, hours], ignore_index=True) if len(earlier) else hours
    rows += store.replace_rollups(
        project_id, "day", since=day, until=until, rollups=day_rollups(hours)
    )
    return rows


def refresh_edge_rollups_of_day(
    project_id: int, day: datetime, *, changed_since: datetime | None = None
) -> int:
    """Rebuild the hourly agent-edge rollups of one UTC day from its messages, from
    changed_since's hour on (the whole day without it)."""
    start = day if changed_since is None else max(day, floor_hour(changed_since))
    messages = queries.message_edge_rollup_frame(project_id, since=start, until=day + DAY)
    return store.replace_edge_rollups(
        project_id, since=start, until=day + DAY, rollups=edge_rollups(messages)
    )


def refresh_agent_name_rollups_of_day(
    project_id: int, day: datetime, *, changed_since: datetime | None = None
) -> int:
    """Rebuild the hourly activity per agent name of one UTC day (AgentNameRollup) from its
    sessions' agent instances and its messages (no span is read), from changed_since's hour on
    (the whole day without it)."""
    start = day if changed_since is None else max(day, floor_hour(changed_since))
    activity = queries.agent_activity_frame(project_id, [(start, day + DAY)])
    return store.replace_agent_name_rollups(
        project_id, since=start, until=day + DAY, activity=activity
    )


def refresh_clusters_of_days(project_id: int, days: Sequence[datetime]) -> int:
    """Rebuild the error-cluster days of these UTC days, then the touched clusters' totals."""
    touched: set[str] = set()
    for day in days:
        errors = queries.error_span_frame(project_id, since=day, until=day + DAY)
        cluster_days = error_cluster_days(errors)
        touched.update(store.replace_error_cluster_days(project_id, [day.date()], cluster_days))
    if not touched:
        return 0
    fingerprints = sorted(touched)
    totals = cluster_totals(queries.error_cluster_day_frame(project_id, fingerprints))
    return store.save_cluster_totals(project_id, totals, fingerprints)


def refresh_anomalies(project_id: int, *, since: datetime, until: datetime) -> int:
    """Judge the hours in [since, until) against the stored hourly rollups before them (and the
    inter-agent messages' hours), and upsert the flags with up to three example sessions each."""
    history = floor_hour(since) - timedelta(weeks=DETECTION.seasonal_weeks)
    # By name: OTLP and agentops give each session's agent its own id, and a series per
    # instance would hold a handful of calls.
    rollups = queries.rollup_frame(project_id, granularity="hour", since=history, until=until)
    flags = detect_anomalies(rollups, since=floor_hour(since), until=until, settings=DETECTION)
    messages = queries.message_hour_frame(project_id, since=history, until=until)
    flags += detect_message_anomalies(
        messages, since=floor_hour(since), until=until, settings=DETECTION
    )
    given = queries.score_frame(project_id, since=floor_hour(since) - SCORE_HISTORY, until=until)
    flags += score_drops(given, since=floor_hour(since), until=until)
    examples = {
        i: queries.example_session_pks(
            project_id,
            subject_type=flag.subject_type,
            subject=flag.subject,
            metric=flag.metric,
            since=flag.window_start,
            until=flag.window_end,
        )
        for i, flag in enumerate(flags)
    }
    saved = store.save_anomalies(project_id, flags, examples, since=floor_hour(since), until=until)
    regroup_incidents(project_id, since=floor_hour(since), now=until)
    return saved


def regroup_incidents(project_id: int, *, since: datetime, now: datetime) -> int:
    """Group the flags near the hours judged from `since` (and their incidents' other flags)
    into incidents again, and close the quiet ones."""
    facts = queries.incident_flag_facts(project_id, since=since - GROUP_GAP)
    groups = group_incidents(facts)
    return store.save_incidents(project_id, groups, regrouped=[f.key for f in facts], now=now)


def refresh_project(
    project_id: int,
    *,
    since: datetime,
    now: datetime,
    lookback: timedelta | None = MAX_ANOMALY_LOOKBACK,
    progress: Callable[[datetime], object] | None = None,
) -> RefreshResult:
    """Rollups and error clusters of every day from since's day to today, then anomaly flags for
    the hours since `since` (at most `lookback` back; None: all of them). `progress` is called
    after each day."""
    days = list(days_between(since, floor_day(now) + DAY))
    # Days whose raw telemetry retention removed (in part) keep the rollups and clusters made
    # while it was there: rebuilt from what is left, they would lose it.
    removed_before = queries.raw_removed_before(project_id)
    if removed_before is not None:
        days = [day for day in days if day >= removed_before]
    rows = 0
    for day in days:
        rows += refresh_rollups_of_day(project_id, day, changed_since=since)
        refresh_edge_rollups_of_day(project_id, day, changed_since=since)
        refresh_agent_name_rollups_of_day(project_id, day, changed_since=since)
        if progress is not None:
            progress(day)
    clusters = refresh_clusters_of_days(project_id, days)
    judge_from = since if lookback is None else max(since, floor_hour(now - lookback))
    if since < judge_from:
        store.remember_unjudged(project_id, since=floor_hour(since), until=judge_from)
    anomalies = refresh_anomalies(project_id, since=judge_from, until=now)
    chunk = store.claim_unjudged(project_id, hours=MAX_BACKLOG_CHUNK)
    if chunk is not None:
        # Its flags may reach into the live window: judged again there on the next refresh.
        anomalies += refresh_anomalies(project_id, since=chunk[0], until=chunk[1])
    return RefreshResult(
        rollup_rows=rows,
        anomalies=anomalies,
        clusters=clusters,
        has_backlog=store.has_unjudged(project_id),
    )


def recompute_project(
    project_id: int, *, now: datetime, progress: Callable[[datetime], object] | None = None
) -> RefreshResult:
    """Everything from the project's first span or message: rollups and clusters of every day,
    anomalies over every hour that has enough history."""
    first = _first_data(project_id)
    if first is None:
        return RefreshResult(0, 0, 0)
    return refresh_project(project_id, since=first, now=now, lookback=None, progress=progress)


def recompute_days(project_id: int, *, now: datetime) -> int:
    """How many days recompute_project walks (for a progress bar's total)."""
    first = _first_data(project_id)
    return 0 if first is None else len(list(days_between(first, floor_day(now) + DAY)))


def _first_data(project_id: int) -> datetime | None:
    starts = [queries.span_time_bounds(project_id)[0], queries.first_message_start(project_id)]
    return min((start for start in starts if start is not None), default=None)


def sessions_due_for_follow_up(session_pks: Sequence[int]) -> list[int]:
    """The sessions of a batch whose follow-up runs now (summaries.is_follow_up_due); the rest
    are marked stale, for the sweep. Run under store.summary_lock. SQLite (the small embedded
    install, where its lock guards nothing): every session, every time."""
    if connection.vendor != "postgresql":
        return sorted(set(session_pks))
    progress = queries.summary_progress(session_pks)
    due = {
        pk
        for pk, (summarized, now) in progress.items()
        if is_follow_up_due(
            summarized,
            now,
            every_batch_below=settings.OBSERVATORY_SUMMARY_EVERY_BATCH_BELOW_SPANS,
            growth_percent=settings.OBSERVATORY_SUMMARY_GROWTH_PERCENT,
        )
    }
    store.mark_summaries_stale(sorted(set(progress) - due))
    return sorted(due)


def detect_session_failures(session_pks: Sequence[int]) -> int:
    """Run the failure detectors over these sessions and replace their flags."""
    spans, lines, messages, sessions = queries.detector_inputs(session_pks)
    flags = detect_failures(spans, lines, sessions, messages=messages)
    return store.replace_session_flags(sessions, flags)


# The windows of newest runs whose analysis is stored: the dashboard's and the API's defaults.
TEST_ANALYSIS_WINDOWS = (100, 200)
# The ranges of days the trends and coverage pages offer; tier reliability and coverage are
# stored for each of them.
TEST_DAY_RANGES = (7, 14, 30, 90)
# Pass-rate and duration days are stored this far back (the trends page's longest range).
TEST_PASS_RATE_DAYS = max(TEST_DAY_RANGES)


def fetch_and_compute_test_analysis(project_id: int, *, now: datetime) -> TestAnalysis:
    """Read the newest runs' results, the last TEST_PASS_RATE_DAYS days' and the agent usage of
    each range of days, and analyse them."""
    runs = queries.test_run_frame(project_id, limit=max(TEST_ANALYSIS_WINDOWS))
    since = floor_day(now) - timedelta(days=TEST_PASS_RATE_DAYS)
    day_runs = queries.test_run_frame(project_id, since=since)
    return project_test_analysis(
        runs,
        queries.test_result_frame(runs),
        windows=TEST_ANALYSIS_WINDOWS,
        day_results=queries.test_result_frame(day_runs),
        since=since,
        usages=[fetch_range_usage(project_id, day_runs, days, now=now) for days in TEST_DAY_RANGES],
        now=now,
    )


def fetch_range_usage(
    project_id: int, day_runs: pd.DataFrame, days: int, *, now: datetime
) -> RangeUsage:
    """Coverage's inputs over the last `days` days: the sessions the results of runs started
    then link to, and production's agent, tool and step usage since then (seven queries)."""
    start = now - timedelta(days=days)
    started = pd.to_datetime(day_runs["run_started_at"], utc=True)
    run_pks = [int(pk) for pk in day_runs.loc[started >= pd.Timestamp(start), "run_pk"]]
    tested_ids = queries.tested_session_ids(run_pks)
    production, tested = queries.coverage_usage(project_id, tested_ids, since=start)
    return RangeUsage(days, production, tested, len(tested_ids))


# Finished runs of a name that a running run's expected duration is drawn from (the newest).
WORKFLOW_HISTORY_RUNS = 200


def expected_workflow_durations(
    workflows: Sequence[Workflow], *, now: datetime
) -> dict[int, DurationForecast]:
    """The expected durations of the running runs among `workflows`, by pk (the workflow page
    and the API): one steps read, and one history read per distinct workflow name."""
    running = [w for w in workflows if w.status == Workflow.Status.RUNNING and w.started_at]
    if not running:
        return {}
    steps = queries.steps_of_workflows([w.pk for w in running])
    histories = {
        key: queries.workflow_history_frames(key[0], key[1], limit=WORKFLOW_HISTORY_RUNS)
        for key in {(w.project_id, w.name) for w in running}
    }
    forecasts = {}
    for workflow in running:
        runs, run_steps = histories[(workflow.project_id, workflow.name)]
        assert workflow.started_at is not None
        forecast = expected_duration(
            workflow.started_at, steps[workflow.pk], runs, run_steps, now=now
        )
        if forecast is not None:
            forecasts[workflow.pk] = forecast
    return forecasts
