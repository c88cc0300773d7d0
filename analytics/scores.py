"""Scores read back: the `?score=name:op:value` condition of the sessions list, score trends per
name, and the per-session digest that CSV exports and reports show. Pure: no Django, no I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

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
    by_name: dict[str, list[tuple[str, float | None, str]]] = {}
    for name, data_type, value, label in scores:
        by_name.setdefault(name, []).append((data_type, value, label))
    return "; ".join(f"{name}={_shown(by_name[name])}" for name in sorted(by_name))


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
        return numbers.dropna(subset=["value"]).groupby("name")["value"].mean().to_dict()

    now, before = means(current), means(previous)
    counts = current.groupby("name").size().to_dict()
    return [
        ScoreLine(str(name), int(counts[name]), now.get(name), before.get(name))
        for name in sorted(counts)
    ]
