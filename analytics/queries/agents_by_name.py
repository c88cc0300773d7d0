"""Reads of agents by name: an agent name's instances, rollups and activity."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from django.db.models import Count, F, Max, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncHour

from analytics.agent_names import (
    AGENT_ROLLUP_COLUMNS,
    INSTANCE_COLUMNS,
    SENT_COLUMNS,
    TOTAL_COLUMNS,
    activity_totals,
    agent_activity,
    agent_name_stats,
    name_of_id,
    rollup_window,
)
from analytics.messaging import FAILURE_STATUSES, whole_hours
from analytics.models import AgentNameRollup, Rollup
from analytics.queries.frames import histogram_frame, rows_frame
from analytics.queries.messages import received_by
from ingest.models import Agent, Message


def agent_instance_frame(
    project_id: int, *, since: datetime, until: datetime, name: str | None = None
) -> pd.DataFrame:
    """Agents (one per session) whose session started in [since, until): INSTANCE_COLUMNS, with
    last_seen the session's end (or start). `name` keeps only the instances of one name (an
    instance without a name is called by its id)."""
    return _instance_frame(project_id, [(since, until)], name=name)


def _started_in(field: str, ranges: Sequence[tuple[datetime, datetime]]) -> Q:
    within = Q(pk__in=[])
    for since, until in ranges:
        within |= Q(**{f"{field}__gte": since, f"{field}__lt": until})
    return within


def _instance_frame(
    project_id: int, ranges: Sequence[tuple[datetime, datetime]], *, name: str | None = None
) -> pd.DataFrame:
    rows = Agent.objects.filter(_started_in("session__started_at", ranges), project_id=project_id)
    if name is not None:
        rows = rows.filter(Q(name=name) | Q(name="", external_id=name))
    values = rows.annotate(
        started_at=F("session__started_at"),
        last_seen=Coalesce("session__ended_at", "session__started_at"),
    ).values_list(*INSTANCE_COLUMNS)
    return rows_frame(values, INSTANCE_COLUMNS)


def agent_rollup_frame(
    project_id: int,
    *,
    granularity: str,
    since: datetime,
    until: datetime,
    name: str | None = None,
) -> pd.DataFrame:
    """Stored span rollups by agent name (Rollup) that name an agent, bucket_start in
    [since, until): AGENT_ROLLUP_COLUMNS with `day` the bucket's UTC date."""
    rows = (
        Rollup.objects.filter(
            project_id=project_id,
            granularity=granularity,
            bucket_start__gte=since,
            bucket_start__lt=until,
        )
        .exclude(agent="")
        .exclude(kind="session")
    )
    if name is not None:
        rows = rows.filter(agent=name)
    fields = ["agent", "bucket_start", *AGENT_ROLLUP_COLUMNS[2:]]
    frame = histogram_frame(rows, fields)
    frame["day"] = pd.to_datetime(frame.pop("bucket_start"), utc=True).dt.date
    return frame[AGENT_ROLLUP_COLUMNS]


def agent_sent_frame(project_id: int, ranges: Sequence[tuple[datetime, datetime]]) -> pd.DataFrame:
    """Messages started in any of the [since, until) ranges per sender and UTC hour:
    SENT_COLUMNS, one query. A sender that is the id of an agent of the message's session with a
    name is given that name (agentops senders are per-session uuids)."""
    instance_name = (
        Agent.objects.filter(session_id=OuterRef("session_id"), external_id=OuterRef("sender"))
        .exclude(name="")
        .values("name")[:1]
    )
    counted = (
        Message.objects.filter(_started_in("started_at", ranges), project_id=project_id)
        .exclude(sender="")
        .order_by()
        .annotate(who=Coalesce(Subquery(instance_name), F("sender")), hour=TruncHour("started_at"))
        .values("who", "hour")
        .annotate(sent=Count("pk"), failed=Count("pk", filter=Q(status__in=FAILURE_STATUSES)))
        .values_list("who", "hour", "sent", "failed")
    )
    return rows_frame(counted, SENT_COLUMNS)


def agent_activity_frame(
    project_id: int, ranges: Sequence[tuple[datetime, datetime]]
) -> pd.DataFrame:
    """The hourly activity per agent name (ACTIVITY_COLUMNS) of the sessions and messages that
    started in the ranges, from the instances and messages (what the refresh stores): two
    queries."""
    instances = _instance_frame(project_id, ranges)
    return agent_activity(instances, agent_sent_frame(project_id, ranges))


def agent_activity_totals(
    project_id: int, *, since: datetime, until: datetime, name: str | None = None
) -> pd.DataFrame:
    """TOTAL_COLUMNS per agent name for the sessions and messages that started in [since,
    until): the whole hours summed in the database from the stored AgentNameRollup rows, the
    partial hours at either end from the instances and messages."""
    first_hour, end_hour = whole_hours(since, until)
    parts = []
    if first_hour < end_hour:
        stored = AgentNameRollup.objects.filter(
            project_id=project_id, hour__gte=first_hour, hour__lt=end_hour
        )
        if name is not None:
            stored = stored.filter(name=name)
        summed = (
            stored.order_by()
            .values("name")
            .annotate(
                sessions=Sum("session_count"),
                last=Max("last_seen"),
                sent=Sum("sent_count"),
                failed=Sum("failed_count"),
            )
            .values_list("name", "sessions", "last", "sent", "failed")
        )
        parts.append(rows_frame(summed, TOTAL_COLUMNS))
    else:
        first_hour = end_hour = since
    edges = [(start, end) for start, end in ((since, first_hour), (end_hour, until)) if start < end]
    if edges:
        activity = agent_activity_frame(project_id, edges)
        if name is not None:
            activity = activity[activity["name"] == name]
        parts.append(activity_totals(activity))
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.DataFrame(columns=TOTAL_COLUMNS)
    return activity_totals(pd.concat(parts, ignore_index=True))


def agent_name_table(
    project_id: int, *, since: datetime, until: datetime, name: str | None = None
) -> pd.DataFrame:
    """analytics.agent_names.NAME_STAT_COLUMNS per agent name (or for one name), from stored
    rollups only (a few queries whatever the number of sessions): span figures from Rollup
    (hourly up to 2 days, else whole UTC days), sessions and messages from AgentNameRollup."""
    granularity, start, days = rollup_window(since, until)
    totals = agent_activity_totals(project_id, since=since, until=until, name=name)
    rollups = agent_rollup_frame(
        project_id, granularity=granularity, since=start, until=until, name=name
    )
    table = agent_name_stats(totals, rollups, days=days)
    return table if name is None else table[table["name"] == name]


def agent_name_ids(project_id: int, name: str, *, since: datetime, until: datetime) -> list[str]:
    """Every id and name messages may use for one agent name in the range."""
    instances = agent_instance_frame(project_id, since=since, until=until, name=name)
    return sorted({name, *name_of_id(instances)})


def agent_name_messages(
    project_id: int, names: Sequence[str], *, since: datetime, until: datetime, limit: int
) -> list[Message]:
    """Messages sent or received by any of `names` (ids and names of one agent), newest first."""
    messages = Message.objects.filter(
        project_id=project_id, started_at__gte=since, started_at__lt=until
    ).filter(Q(sender__in=list(names)) | received_by(names))
    messages = messages.annotate(session_external_id=F("session__external_id"))
    return list(messages.order_by("-started_at", "-id")[:limit])


def agent_name_instances(
    project_id: int, name: str, *, since: datetime, until: datetime, limit: int
) -> list[Agent]:
    """The instances (one per session) of one agent name, newest session first."""
    rows = Agent.objects.filter(
        project_id=project_id, session__started_at__gte=since, session__started_at__lt=until
    ).filter(Q(name=name) | Q(name="", external_id=name))
    return list(rows.select_related("session").order_by("-session__started_at", "-id")[:limit])
