"""What a score is on the wire, for every format that carries one: the value rules (numeric,
categorical, boolean) shared by the native `score` record, POST /api/v1/scores/ and the page's
form, and the OpenTelemetry evaluation conventions mapped onto ScoreRecords. Pure.

OpenTelemetry GenAI (semantic-conventions-genai, model/gen-ai/events.yaml, development status):
an evaluation is the event `gen_ai.evaluation.result`, parented to the span it judges, with
`gen_ai.evaluation.name` (required), `gen_ai.evaluation.score.value` (a number),
`gen_ai.evaluation.score.label` (a low-cardinality label such as "relevant" or "fail") and
`gen_ai.evaluation.explanation`. It arrives as a span event, as a log record of that event name,
or (some score SDKs send one span per score) as a span carrying the same attributes, which then
judges its parent span. OpenInference EVALUATOR spans carry `eval.*` or `metadata.*` versions of
the same three fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingest.formats.records import ScoreRecord

DATA_TYPES = ("numeric", "categorical", "boolean")
SOURCES = ("api", "human", "eval")
MAX_SCORE_NAME_CHARS = 200
MAX_LABEL_CHARS = 200
MAX_AUTHOR_CHARS = 200
MAX_COMMENT_CHARS = 10_000
TRUE_WORDS = ("true", "yes", "1", "pass", "up")
FALSE_WORDS = ("false", "no", "0", "fail", "down")

EVALUATION_EVENT = "gen_ai.evaluation.result"
EVALUATION_NAME = "gen_ai.evaluation.name"
EVALUATION_VALUE = "gen_ai.evaluation.score.value"
EVALUATION_LABEL = "gen_ai.evaluation.score.label"
EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"
# OpenInference evaluator spans: (name, value, label, explanation) keys, first found wins.
OPENINFERENCE_KIND = "openinference.span.kind"
OPENINFERENCE_KEYS = (
    ("eval.name", "eval.score", "eval.label", "eval.explanation"),
    ("metadata.evaluator_name", "metadata.score", "metadata.label", "metadata.explanation"),
)


class ScoreValueError(ValueError):
    """A value that cannot be the score's: the message says why, for the field's error."""


@dataclass(frozen=True, slots=True)
class ScoreValue:
    data_type: str
    value: float | None
    label: str


def score_value(raw: Any, *, data_type: str | None = None, label: Any = None) -> ScoreValue:
    """Read a score's value. Without `data_type`: a JSON number is numeric, true/false boolean, a
    string categorical. With it, a string may spell a number ("0.8") or a yes/no ("true", "yes",
    "pass", "up", "1" and their opposites). `label` is a numeric score's optional label. Raises
    ScoreValueError naming what is wrong."""
    if data_type is not None and data_type not in DATA_TYPES:
        raise ScoreValueError(
            f"data_type must be one of {', '.join(DATA_TYPES)}, got {data_type!r}"
        )
    if raw is None or raw == "":
        raise ScoreValueError("value is required")
    kind = data_type or _inferred_type(raw)
    if kind == "boolean":
        return ScoreValue("boolean", *_boolean(raw))
    if kind == "numeric":
        return ScoreValue("numeric", _number(raw), _label(label))
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ScoreValueError(f"a categorical value must be a string, got {type(raw).__name__}")
    return ScoreValue("categorical", None, _label(raw))


def _inferred_type(raw: Any) -> str:
    if isinstance(raw, bool):
        return "boolean"
    if isinstance(raw, int | float):
        return "numeric"
    if isinstance(raw, str):
        return "categorical"
    raise ScoreValueError(
        f"value must be a number, a string or a boolean, got {type(raw).__name__}"
    )


def _boolean(raw: Any) -> tuple[float, str]:
    if isinstance(raw, bool):
        yes = raw
    elif str(raw).strip().lower() in TRUE_WORDS:
        yes = True
    elif str(raw).strip().lower() in FALSE_WORDS:
        yes = False
    else:
        raise ScoreValueError(f"a boolean value must be true or false, got {raw!r}")
    return (1.0, "true") if yes else (0.0, "false")


def _number(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ScoreValueError("a numeric value must be a number, got a boolean")
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise ScoreValueError(f"a numeric value must be a number, got {raw!r}") from None
    if not math.isfinite(number):
        raise ScoreValueError("a numeric value must be a finite number")
    return number


def _label(raw: Any) -> str:
    if raw is None:
        return ""
    text = str(raw).strip()
    if len(text) > MAX_LABEL_CHARS:
        raise ScoreValueError(f"is {len(text)} characters; the limit is {MAX_LABEL_CHARS}")
    return text


# --- OpenTelemetry ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One evaluation found in telemetry, before it is tied to a session."""

    name: str
    value: ScoreValue
    explanation: str


def evaluation(attributes: Mapping[str, Any]) -> Evaluation | None:
    """The GenAI evaluation these attributes state (an event's, a log record's or a span's), or
    None when they name none or give neither a score nor a label."""
    return _evaluation_from(
        attributes, EVALUATION_NAME, EVALUATION_VALUE, EVALUATION_LABEL, EVALUATION_EXPLANATION
    )


def openinference_evaluation(attributes: Mapping[str, Any], span_name: str) -> Evaluation | None:
    """An OpenInference EVALUATOR span's result (named by its evaluator, else the span)."""
    if str(attributes.get(OPENINFERENCE_KIND, "")).upper() != "EVALUATOR":
        return None
    for name_key, value_key, label_key, explanation_key in OPENINFERENCE_KEYS:
        if value_key in attributes or label_key in attributes:
            named = dict(attributes)
            named.setdefault(name_key, span_name)
            return _evaluation_from(named, name_key, value_key, label_key, explanation_key)
    return None


def _evaluation_from(
    attributes: Mapping[str, Any], name_key: str, value_key: str, label_key: str, why_key: str
) -> Evaluation | None:
    name = str(attributes.get(name_key) or "").strip()[:MAX_SCORE_NAME_CHARS]
    raw_value, raw_label = attributes.get(value_key), attributes.get(label_key)
    if not name or (raw_value in (None, "") and raw_label in (None, "")):
        return None
    try:
        if raw_value in (None, ""):
            value = score_value(raw_label, data_type="categorical")
        elif isinstance(raw_value, bool):
            value = score_value(raw_value, data_type="boolean")
        else:
            value = score_value(raw_value, data_type="numeric", label=raw_label)
    except ScoreValueError:
        return None  # an unreadable score stays visible among the span's attributes
    explanation = str(attributes.get(why_key) or "")[:MAX_COMMENT_CHARS]
    return Evaluation(name=name, value=value, explanation=explanation)


def evaluation_record(
    found: Evaluation,
    *,
    record_id: str,
    session_id: str,
    span_id: str,
    at: datetime,
    author: str,
) -> ScoreRecord:
    """A ScoreRecord (source eval) for an evaluation judged at `at` of span `span_id`."""
    return ScoreRecord(
        record_id=record_id[:128],
        session_id=session_id,
        span_id=span_id,
        name=found.name,
        data_type=found.value.data_type,
        value=found.value.value,
        label=found.value.label,
        comment=found.explanation,
        source="eval",
        author=author[:MAX_AUTHOR_CHARS],
        at=at,
    )
