"""The `score` record and the score value rules, without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.formats.native import parse_records
from ingest.formats.records import ScoreRecord, TestResultRecord
from ingest.formats.scores import ScoreValueError, evaluation, openinference_evaluation, score_value


def parse(**fields: Any) -> Any:
    raw = {"type": "score", "id": "sc1", "session_id": "s1", "name": "judge", **fields}
    return parse_records([raw], max_string_chars=10_000)


def test_a_number_is_a_numeric_score_with_its_comment_source_and_author() -> None:
    parsed = parse(
        value=0.75,
        comment="partly right",
        source="eval",
        author="gpt-judge",
        span_id="e1",
        at="2026-11-21T10:00:00Z",
    )
    assert parsed.errors == []
    assert parsed.records == [
        (
            0,
            ScoreRecord(
                record_id="sc1",
                session_id="s1",
                name="judge",
                data_type="numeric",
                value=0.75,
                span_id="e1",
                comment="partly right",
                source="eval",
                author="gpt-judge",
                at=datetime(2026, 11, 21, 10, tzinfo=UTC),
            ),
        )
    ]


@pytest.mark.parametrize(
    ("fields", "data_type", "value", "label"),
    [
        ({"value": True}, "boolean", 1.0, "true"),
        ({"value": False}, "boolean", 0.0, "false"),
        ({"value": "no", "data_type": "boolean"}, "boolean", 0.0, "false"),
        ({"value": "refund-promised"}, "categorical", None, "refund-promised"),
        ({"value": "0.5", "data_type": "numeric"}, "numeric", 0.5, ""),
        ({"value": 4, "label": "relevant"}, "numeric", 4.0, "relevant"),
    ],
)
def test_each_kind_of_value_is_read(
    fields: dict[str, Any], data_type: str, value: float | None, label: str
) -> None:
    [(_, record)] = parse(**fields).records
    assert (record.data_type, record.value, record.label) == (data_type, value, label)
    assert record.source == "api"


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"value": None}, "records[0].value", "is required"),
        ({"value": "high", "data_type": "numeric"}, "records[0].value", "must be a number"),
        ({"value": "maybe", "data_type": "boolean"}, "records[0].value", "true or false"),
        ({"value": 1, "data_type": "stars"}, "records[0].data_type", "must be one of"),
        ({"value": 1, "source": "robot"}, "records[0].source", "must be one of api, human, eval"),
        ({"value": 1, "name": ""}, "records[0].name", "is required"),
        ({"value": 1, "name": "x" * 201}, "records[0].name", "limit is 200"),
        ({"value": [1, 2]}, "records[0].value", "must be a number, a string or a boolean"),
        ({"value": float("nan")}, "records[0].value", "finite"),
    ],
)
def test_a_bad_score_is_refused_naming_its_field(
    fields: dict[str, Any], field: str, words: str
) -> None:
    parsed = parse(**fields)
    assert parsed.records == []
    [error] = parsed.errors
    assert error.field == field
    assert words in error.message


def test_a_score_needs_a_session() -> None:
    parsed = parse_records(
        [{"type": "score", "id": "sc1", "name": "judge", "value": 1}], max_string_chars=100
    )
    assert parsed.errors[0].field == "records[0].session_id"


def test_a_test_result_may_carry_scores_as_an_object_or_a_list() -> None:
    base = {"type": "test_result", "id": "r1", "run_id": "run", "test_id": "t", "outcome": "pass"}
    parsed = parse_records(
        [
            {**base, "scores": {"correct": True, "judge": 0.9}},
            {**base, "id": "r2", "scores": [{"name": "tone", "value": "polite", "comment": "ok"}]},
            {
                **base,
                "id": "r3",
                "scores": [{"name": "judge", "value": "lots", "data_type": "numeric"}],
            },
        ],
        max_string_chars=1000,
    )
    first: TestResultRecord = parsed.records[0][1]  # type: ignore[assignment]
    second: TestResultRecord = parsed.records[1][1]  # type: ignore[assignment]
    assert [(s.name, s.data_type, s.value, s.source) for s in first.scores] == [
        ("correct", "boolean", 1.0, "eval"),
        ("judge", "numeric", 0.9, "eval"),
    ]
    assert [(s.name, s.label, s.comment) for s in second.scores] == [("tone", "polite", "ok")]
    [error] = parsed.errors
    assert error.field == "records[2].scores[0].value"


def test_a_genai_evaluation_reads_its_score_label_and_explanation() -> None:
    found = evaluation(
        {
            "gen_ai.evaluation.name": "Relevance",
            "gen_ai.evaluation.score.value": 4.0,
            "gen_ai.evaluation.score.label": "relevant",
            "gen_ai.evaluation.explanation": "answers the question",
        }
    )
    assert found is not None
    assert (found.name, found.value.data_type, found.value.value, found.value.label) == (
        "Relevance",
        "numeric",
        4.0,
        "relevant",
    )
    assert found.explanation == "answers the question"


def test_an_evaluation_with_only_a_label_is_categorical_and_one_without_either_is_none() -> None:
    only_label = evaluation(
        {"gen_ai.evaluation.name": "tox", "gen_ai.evaluation.score.label": "ok"}
    )
    assert only_label is not None and only_label.value.data_type == "categorical"
    assert evaluation({"gen_ai.evaluation.name": "tox"}) is None
    assert evaluation({"gen_ai.evaluation.score.value": 1}) is None


def test_an_openinference_evaluator_span_is_an_evaluation_named_by_its_evaluator() -> None:
    attributes = {
        "openinference.span.kind": "EVALUATOR",
        "metadata.evaluator_name": "hallucination",
        "metadata.score": 0.0,
        "metadata.label": "factual",
    }
    found = openinference_evaluation(attributes, "eval span")
    assert found is not None and (found.name, found.value.value) == ("hallucination", 0.0)
    assert openinference_evaluation({"openinference.span.kind": "LLM"}, "llm") is None


def test_score_value_refuses_an_unknown_data_type() -> None:
    with pytest.raises(ScoreValueError, match="data_type must be one of"):
        score_value(1, data_type="stars")
