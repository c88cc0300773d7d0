"""Scores read back: the `?score=name:op:value` condition of the sessions list, score trends per
name, the per-session digest that CSV exports and reports show, and "judge score dropped"
anomaly flags. Pure: no Django, no I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import pandas as pd

from analytics.anomalies import AnomalyFlag

# Comparisons a condition may use; numbers compare the value, words the label.
NUMBER_OPS = ("lt", "lte", "gt", "gte", "eq", "ne")
WORD_OPS = ("eq", "ne")
BOOLEAN_WORDS = {"true": 1.0, "yes": 1.0, "up": 1.0, "false": 0.0, "no": 0.0, "down": 0.0}


class ConditionError(ValueError):
    """A `score` condition that cannot be read; the message says how to write one."""


@dataclass(frozen=True)
class ScoreCondition:
    """Sessions with a score `name` whose value (number, or boolean as 1/0) or label matches.
    `op` "" means: any score of that name."""

    name: str
    op: str = ""
    number: float | None = None
    word: str = ""


def parse_score_condition(text: str) -> ScoreCondition:
    """`judge` (has a judge score), `judge:lt:0.5`, `correct:eq:false`, `tone:ne:rude`.
    Numbers work with lt, lte, gt, gte, eq and ne; words and true/false with eq and ne."""
    parts = text.strip().split(":")
    name = parts[0].strip()
    if not name:
        raise ConditionError("name the score, e.g. judge:lt:0.5")
    if len(parts) == 1:
        return ScoreCondition(name)
    if len(parts) != 3 or not parts[2].strip():
        raise ConditionError(
            f"write name:op:value (op one of {', '.join(NUMBER_OPS)}), got {text!r}"
        )
    op, raw = parts[1].strip().lower(), parts[2].strip()
    if op not in NUMBER_OPS:
        raise ConditionError(f"op must be one of {', '.join(NUMBER_OPS)}, got {op!r}")
    number = _number(raw)
    if number is None and raw.lower() in BOOLEAN_WORDS:
        number = BOOLEAN_WORDS[raw.lower()]
    if number is not None:
        return ScoreCondition(name, op, number=number)
    if op not in WORD_OPS:
        raise ConditionError(f"{op} needs a number, got {raw!r}")
    return ScoreCondition(name, op, word=raw)


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def score_trend(scores: pd.DataFrame, *, freq: str = "1D") -> pd.DataFrame:
    """Mean value and count of the numeric and boolean scores per name and time bucket.

    Input columns: name, value (None for categorical), created_at (UTC). Output columns: name,
    bucket (start of the bucket), mean, count; sorted by name then bucket. Categorical scores
    have no mean and are left out."""
    columns = ["name", "bucket", "mean", "count"]
    numeric = scores.dropna(subset=["value"]) if len(scores) else scores
    if numeric.empty:
        return pd.DataFrame(columns=columns)
    buckets = pd.to_datetime(numeric["created_at"], utc=True).dt.floor(freq)
    grouped = numeric.assign(bucket=buckets).groupby(["name", "bucket"])["value"]
    trend = grouped.agg(mean="mean", count="count").reset_index()
    return trend.sort_values(["name", "bucket"]).reset_index(drop=True)[columns]


def score_digest(scores: Iterable[tuple[str, str, float | None, str]]) -> str:
    """One session's scores as one cell: `correct=true; judge=0.8; tone=polite`, by name; a name
    scored several times shows its mean (numbers), its share of true (booleans) or its latest
    label (categories, given oldest first). Input: (name, data_type, value, label) tuples."""
    return "; ".join(f"{name}={shown}" for name, shown in score_summary(scores))


def score_summary(scores: Iterable[tuple[str, str, float | None, str]]) -> list[tuple[str, str]]:
    """(name, value as shown) of each score name, by name: what score_digest() joins, for the
    sessions page's scores column. Input as score_digest()."""
    by_name: dict[str, list[tuple[str, float | None, str]]] = {}
    for name, data_type, value, label in scores:
        by_name.setdefault(name, []).append((data_type, value, label))
    return [(name, _shown(by_name[name])) for name in sorted(by_name)]


def _shown(given: list[tuple[str, float | None, str]]) -> str:
    kind = given[-1][0]
    values = [value for _, value, _ in given if value is not None]
    if kind == "numeric" and values:
        return f"{sum(values) / len(values):g}"
    if kind == "boolean" and values:
        share = sum(values) / len(values)
        return "true" if share == 1 else "false" if share == 0 else f"{share:.0%} true"
    return given[-1][2]


def session_score_digest(scores: pd.DataFrame) -> dict[int, str]:
    """score_digest() of each session. Input columns: session_id, name, data_type, value,
    label, created_at."""
    if scores.empty:
        return {}
    ordered = scores.sort_values(["session_id", "created_at"])
    rows: dict[int, list[tuple[str, str, float | None, str]]] = {}
    for session_id, name, data_type, value, label in ordered[
        ["session_id", "name", "data_type", "value", "label"]
    ].itertuples(index=False):
        number = None if value is None or pd.isna(value) else float(value)
        rows.setdefault(int(session_id), []).append((name, data_type, number, label))
    return {session_id: score_digest(given) for session_id, given in rows.items()}


@dataclass(frozen=True)
class ScoreLine:
    """One score name over a report's period, against the period before."""

    name: str
    count: int
    mean: float | None
    previous_mean: float | None

    @property
    def change(self) -> float | None:
        if self.mean is None or self.previous_mean is None:
            return None
        return self.mean - self.previous_mean


def score_lines(current: pd.DataFrame, previous: pd.DataFrame) -> list[ScoreLine]:
    """Each score name given in the period: how many scores, their mean (None for categories)
    and the mean of the period before; by name. Input columns: name, value."""
    if current.empty:
        return []

    def means(frame: pd.DataFrame) -> dict[str, float]:
        if frame.empty:
            return {}
        numbers = frame.assign(value=pd.to_numeric(frame["value"], errors="coerce"))
        by_name = numbers.dropna(subset=["value"]).groupby("name")["value"].mean()
        return cast(dict[str, float], by_name.to_dict())  # pandas is untyped (pyproject.toml)

    now, before = means(current), means(previous)
    counts = current.groupby("name").size().to_dict()
    return [
        ScoreLine(str(name), int(counts[name]), now.get(name), before.get(name))
        for name in sorted(counts)
    ]


# --- Anomalies: a score name's mean dropped ------------------------------------------------

SCORE_METRIC = "score_mean"
SCORE_SUBJECT = "score"


@dataclass(frozen=True)
class DropSettings:
    """When a score name's recent mean counts as dropped: the shortest window (hours, ending
    with the judged hour) that holds min_scores scores, against the baseline_days before it
    (at least min_baseline scores), by a z-score of the two means."""

    windows: tuple[int, ...] = (1, 3, 6, 12, 24)
    min_scores: int = 5
    baseline_days: int = 7
    min_baseline: int = 20
    threshold: float = 4.5
    min_drop: float = 0.05  # absolute, in the score's own unit (10 points for a share of yes)
    min_relative_drop: float = 0.1  # and a tenth of the baseline mean


def score_drops(
    scores: pd.DataFrame,
    *,
    since: datetime,
    until: datetime,
    settings: DropSettings | None = None,
) -> list[AnomalyFlag]:
    """Flags for score names whose mean fell far below their baseline in the hours of
    [since, until) (whole UTC hours). Consecutive flagged hours are one flag, keyed by its first
    hour, so a rerun gives the same flags. Only drops are flagged: for a score, lower is worse.

    scores: columns name, value (None for categories: left out), created_at; from
    baseline_days + 1 days before `since` up to `until`."""
    settings = settings or DropSettings()
    numbers = scores.dropna(subset=["value"]) if len(scores) else scores
    if numbers.empty:
        return []
    numbers = numbers.assign(
        at=pd.to_datetime(numbers["created_at"], utc=True),
        value=numbers["value"].astype(float),
    )
    flags: list[AnomalyFlag] = []
    for name, given in numbers.groupby("name", sort=True):
        given = given.sort_values("at")
        hours = [_judged_hour(given, hour, settings) for hour in _hours(since, until)]
        flags.extend(_episodes_of(str(name), [h for h in hours if h is not None]))
    return flags


@dataclass(frozen=True)
class _Drop:
    hour: datetime
    window_hours: int
    observed: float
    baseline: float
    z: float
    count: int
    baseline_count: int


def _hours(since: datetime, until: datetime) -> list[datetime]:
    first = pd.Timestamp(since).tz_convert("UTC").floor("1h").to_pydatetime()
    count = max(0, math.ceil((until - first) / timedelta(hours=1)))
    return [first + timedelta(hours=n) for n in range(count)]


def _judged_hour(given: pd.DataFrame, hour: datetime, settings: DropSettings) -> _Drop | None:
    end = hour + timedelta(hours=1)
    if not ((given["at"] >= hour) & (given["at"] < end)).any():
        return None  # an hour without scores is not judged (a wider window would repeat one)
    for window in settings.windows:
        start = end - timedelta(hours=window)
        recent = given[(given["at"] >= start) & (given["at"] < end)]["value"]
        if len(recent) >= settings.min_scores:
            break
    else:
        return None
    since = start - timedelta(days=settings.baseline_days)
    base = given[(given["at"] >= since) & (given["at"] < start)]["value"]
    if len(base) < settings.min_baseline:
        return None
    baseline, observed = float(base.mean()), float(recent.mean())
    drop = baseline - observed
    if drop < max(settings.min_drop, settings.min_relative_drop * abs(baseline)):
        return None
    # Standard error of the difference of two means; a floor keeps constant scores judgeable.
    spread = max(float(base.std(ddof=1)), settings.min_drop / 2)
    z = drop / (spread * math.sqrt(1 / len(recent) + 1 / len(base)))
    if z < settings.threshold:
        return None
    return _Drop(hour, window, observed, baseline, z, len(recent), len(base))


def _episodes_of(name: str, drops: list[_Drop]) -> list[AnomalyFlag]:
    episodes: list[list[_Drop]] = []
    for drop in drops:
        if episodes and drop.hour - episodes[-1][-1].hour == timedelta(hours=1):
            episodes[-1].append(drop)
        else:
            episodes.append([drop])
    return [_flag(name, episode) for episode in episodes]


def _flag(name: str, episode: list[_Drop]) -> AnomalyFlag:
    worst = max(episode, key=lambda d: d.z)
    window = "1 h" if worst.window_hours == 1 else f"{worst.window_hours} h"
    explanation = (
        f"Mean {name} score fell to {worst.observed:.3g} over {window} ({worst.count} scores) "
        f"against {worst.baseline:.3g} over the 7 days before ({worst.baseline_count} scores)"
    )
    return AnomalyFlag(
        subject_type=SCORE_SUBJECT,
        subject=name,
        metric=SCORE_METRIC,
        window_start=episode[0].hour,
        window_end=episode[-1].hour + timedelta(hours=1),
        observed=worst.observed,
        baseline=worst.baseline,
        score=round(worst.z, 3),
        sample_count=sum(d.count for d in episode),
        is_seasonal=False,
        top_dimension="",
        top_share=None,
        explanation=explanation,
    )
