"""Inter-agent message anomalies: failure rates per edge and dead-letter growth, judged from
the hourly message frame with the same baselines. Pure.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from analytics.anomalies.baselines import (
    EDGE_ARROW,
    MESSAGE_SERIES,
    AnomalyFlag,
    DetectionSettings,
    Series,
    _episodes,
    _flagged_hours,
    _Hour,
)
from analytics.anomalies.sentence import explained_flag
from analytics.anomalies.sparse import _episode_window


def detect_message_anomalies(
    hours: pd.DataFrame,
    *,
    since: datetime,
    until: datetime,
    settings: DetectionSettings | None = None,
) -> list[AnomalyFlag]:
    """Flags for the message failure rate of each sender→receiver edge and the dead-letter
    growth (new dead letters an hour) of the project and of each sending agent, in the hours
    [since, until), with the baselines, episodes and sentences of detect_anomalies().

    hours: MESSAGE_HOUR_COLUMNS. `messages` and `failed` count messages that started in the
    hour and how many of them ended failed, dead-lettered or expired; `dead_lettered` counts
    messages dead-lettered in the hour. A message counts once per receiver, as on the agent
    graph. A failure rate is judged like an error rate (a binomial test against the pooled
    rate of the baseline days); dead letters like a level (median and MAD of the hours with
    traffic, so the quiet hours' zeros are the baseline).
    """
    settings = settings or DetectionSettings()
    if len(hours) == 0:
        return []
    hours = hours.assign(
        bucket=pd.to_datetime(hours["bucket"], utc=True),
        sender=hours["sender"].fillna("").replace("", "?"),
        receiver=hours["receiver"].fillna("").replace("", "?"),
        error_type=hours["error_type"].fillna(""),
    )
    flags: list[AnomalyFlag] = []
    for series in MESSAGE_SERIES:
        rows = hours.assign(subject=_message_subject(hours, series.subject_type))
        values = _message_values(rows, series.metric)
        for subject, subject_values in values.groupby("subject", sort=True):
            found = _flagged_hours(
                subject_values.set_index("bucket"), series.metric, since, until, settings
            )
            for episode in _episodes(found):
                subject_rows = rows[rows["subject"] == subject]
                flags.append(_message_flag(series, str(subject), episode, subject_rows, settings))
    return sorted(flags, key=lambda f: (f.window_start, f.subject_type, f.subject, f.metric))


def _message_subject(hours: pd.DataFrame, subject_type: str) -> pd.Series | str:
    if subject_type == "edge":
        return hours["sender"] + EDGE_ARROW + hours["receiver"]
    return hours["sender"] if subject_type == "agent" else ""


def _message_values(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """subject, bucket, value, count, errors per subject and hour (see _hourly_values)."""
    sums = rows.groupby(["subject", "bucket"])[["messages", "failed", "dead_lettered"]].sum()
    if metric == "message_failure_rate":
        sums = sums[sums["messages"] > 0]
        frame = pd.DataFrame(
            {
                "value": (sums["failed"] / sums["messages"]).astype("float64"),
                "count": sums["messages"],
                "errors": sums["failed"],
            }
        )
    else:  # dead_letter_growth; an hour's traffic is what makes it a judged or baseline hour
        frame = pd.DataFrame(
            {
                "value": sums["dead_lettered"].astype("float64"),
                "count": sums["messages"] + sums["dead_lettered"],
                "errors": sums["dead_lettered"],
            }
        )
    return frame.reset_index()


# Where a message anomaly may come from, by subject type: the rollup column and its dimension.
_MESSAGE_DIMENSIONS = {
    "edge": (("error_type", "error_type"),),
    "agent": (("receiver", "receiver"), ("error_type", "error_type")),
    "project": (("sender", "agent"), ("receiver", "receiver"), ("error_type", "error_type")),
}


def _message_flag(
    series: Series,
    subject: str,
    episode: list[_Hour],
    subject_rows: pd.DataFrame,
    settings: DetectionSettings,
) -> AnomalyFlag:
    window = _episode_window(episode)
    rows = subject_rows[
        (subject_rows["bucket"] >= window.start) & (subject_rows["bucket"] < window.end)
    ]
    if series.metric == "message_failure_rate":
        count = int(rows["messages"].sum())
        observed = float(rows["failed"].sum()) / max(count, 1)
        weights = rows["failed"].astype("float64")
    else:
        count = int(rows["dead_lettered"].sum())
        observed = count / len(episode)
        weights = rows["dead_lettered"].astype("float64")
    return explained_flag(
        series,
        subject,
        window,
        settings,
        observed=observed,
        sample_count=count,
        contribution=_top_message_dimension(rows, weights, series.subject_type),
    )


def _top_message_dimension(
    rows: pd.DataFrame, weights: pd.Series, subject_type: str
) -> tuple[str, float | None]:
    """The sender, receiver or error type behind at least half of the failures (dead letters),
    the one with the largest share; ("", None) when none is. A sender or receiver counts only
    when the window has more than one."""
    total = float(weights.sum())
    best: tuple[float, str] | None = None
    if total <= 0:
        return "", None
    for column, dimension in _MESSAGE_DIMENSIONS[subject_type]:
        named = rows[column] != ""
        if not named.any() or (column != "error_type" and rows[column].nunique() < 2):
            continue  # an agent that only sends to one receiver: naming it says nothing
        by_value = weights[named].groupby(rows.loc[named, column]).sum() / total
        share = float(by_value.max())
        if share >= 0.5 and (best is None or share > best[0]):
            best = (share, f"{dimension}={by_value.idxmax()}")
    return ("", None) if best is None else (best[1], round(best[0], 3))
