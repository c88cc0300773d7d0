"""Score conditions, trends and digests (pure), and a score alert rule judged on stored scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from analytics.alerting import rule_value
from analytics.models import Anomaly
from analytics.refresh import refresh_anomalies
from analytics.reporting import make_report
from analytics.scores import (
    ConditionError,
    ScoreCondition,
    parse_score_condition,
    score_digest,
    score_drops,
    score_lines,
    score_trend,
)
from dashboard.charts import score_chart
from ingest.models import Score
from tests.builders import make_alert_rule, make_project, make_session

T0 = datetime(2026, 11, 21, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("judge", ScoreCondition("judge")),
        ("judge:lt:0.5", ScoreCondition("judge", "lt", number=0.5)),
        ("correct:eq:false", ScoreCondition("correct", "eq", number=0.0)),
        ("tone:ne:rude", ScoreCondition("tone", "ne", word="rude")),
        (" judge : GTE : 4 ", ScoreCondition("judge", "gte", number=4.0)),
    ],
)
def test_a_score_condition_is_read(text: str, condition: ScoreCondition) -> None:
    assert parse_score_condition(text) == condition


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "name the score"),
        ("judge:lt", "write name:op:value"),
        ("judge:about:1", "op must be one of lt, lte, gt, gte, eq, ne"),
        ("tone:gt:rude", "gt needs a number"),
    ],
)
def test_a_bad_condition_says_how_to_write_one(text: str, words: str) -> None:
    with pytest.raises(ConditionError, match=words):
        parse_score_condition(text)


def frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["name", "value", "created_at"])


def test_the_trend_is_the_mean_and_count_per_name_and_day_without_categories() -> None:
    trend = score_trend(
        frame(
            [
                ("judge", 0.8, T0),
                ("judge", 0.4, T0 + timedelta(hours=3)),
                ("judge", 0.1, T0 + timedelta(days=1)),
                ("tone", None, T0),
                ("correct", 1.0, T0),
            ]
        ),
        freq="1D",
    )
    assert [(r.name, r.mean, r.count) for r in trend.itertuples()] == [
        ("correct", 1.0, 1),
        ("judge", pytest.approx(0.6), 2),
        ("judge", 0.1, 1),
    ]
    assert score_trend(frame([("tone", None, T0)])).empty


def test_the_digest_shows_means_shares_of_yes_and_the_latest_category() -> None:
    digest = score_digest(
        [
            ("judge", "numeric", 0.5, ""),
            ("judge", "numeric", 1.0, ""),
            ("helpful", "boolean", 1.0, "true"),
            ("helpful", "boolean", 0.0, "false"),
            ("tone", "categorical", None, "rude"),
            ("tone", "categorical", None, "polite"),
        ]
    )
    assert digest == "helpful=50% true; judge=0.75; tone=polite"


def test_the_score_chart_has_one_line_per_name_with_agent_text_escaped() -> None:
    trend = score_trend(frame([("<b>judge</b>", 0.5, T0), ("correct", 1.0, T0)]))
    figure = score_chart(trend).to_dict()
    assert sorted(trace["name"] for trace in figure["data"]) == [
        "&lt;b&gt;judge&lt;/b&gt;",
        "correct",
    ]


def given(session: Any, name: str, value: float, at: datetime) -> None:
    Score.objects.create(
        project=session.project,
        session=session,
        client_id=f"{name}-{value}-{at:%H%M}",
        name=name,
        data_type="numeric",
        value=value,
        created_at=at,
    )


def test_a_score_rule_alerts_when_the_judges_mean_drops_below_its_threshold(db: None) -> None:
    project, _ = make_project(name="Judged")
    session = make_session(project)
    now = T0 + timedelta(hours=5)
    rule = make_alert_rule(
        project,
        name="Judge score dropped",
        metric="score_mean",
        score_name="judge",
        comparator="<",
        threshold=0.5,
    )
    given(session, "judge", 0.9, now - timedelta(hours=3))  # outside the 60 min window
    given(session, "judge", 0.3, now - timedelta(minutes=20))
    given(session, "judge", 0.4, now - timedelta(minutes=10))
    given(session, "other", 0.0, now - timedelta(minutes=10))

    state, value, message = rule_value(rule, now=now)

    assert (state, value) == ("alert", pytest.approx(0.35))
    assert "mean score" in message and "score judge" in message and "< 0.5" in message
    quiet_state, quiet_value, _ = rule_value(rule, now=now + timedelta(hours=2))
    assert (quiet_state, quiet_value) == ("no_data", None)


def test_the_daily_report_lists_each_score_against_the_day_before(db: None) -> None:
    project, _ = make_project(name="Reported")
    session = make_session(project)
    now = datetime(2026, 11, 23, 6, tzinfo=UTC)  # the report covers 2026-11-22
    given(session, "judge", 0.8, datetime(2026, 11, 21, 12, tzinfo=UTC))
    given(session, "judge", 0.2, datetime(2026, 11, 22, 12, tzinfo=UTC))
    given(session, "judge", 0.4, datetime(2026, 11, 22, 13, tzinfo=UTC))

    report = make_report(project.pk, "daily", now=now)

    html = report.html_text
    assert '<td>judge</td><td class="num">2</td><td class="num">0.300</td>' in html
    assert '<td class="num">0.800</td><td class="num">-0.500</td>' in html
    assert "after=2026-11-22T00%3A00%3A00%2B00%3A00" in html  # the period's scores CSV


def test_score_lines_are_empty_without_scores_and_categories_have_no_mean() -> None:
    assert score_lines(pd.DataFrame(columns=["name", "value"]), pd.DataFrame()) == []
    lines = score_lines(pd.DataFrame([("tone", None)], columns=["name", "value"]), pd.DataFrame())
    assert [(line.name, line.count, line.mean, line.change) for line in lines] == [
        ("tone", 1, None, None)
    ]


def judged(values_by_hour: dict[int, list[float]], *, name: str = "judge") -> pd.DataFrame:
    """Scores at hours counted back from NOW (hour -1 is the last whole hour)."""
    rows = [
        (name, value, NOW + timedelta(hours=hour, minutes=5 + n))
        for hour, values in values_by_hour.items()
        for n, value in enumerate(values)
    ]
    return pd.DataFrame(rows, columns=["name", "value", "created_at"])


NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
STEADY = {-h: [0.8, 0.9, 0.7] for h in range(3, 24 * 6, 4)}  # six days of a judge near 0.8


def test_a_judge_score_that_drops_for_two_hours_is_one_flag_explained() -> None:
    scores = judged({**STEADY, -2: [0.2, 0.3, 0.1, 0.3, 0.2], -1: [0.3, 0.2, 0.25, 0.1, 0.2]})

    [flag] = score_drops(scores, since=NOW - timedelta(hours=6), until=NOW)

    assert (flag.subject_type, flag.subject, flag.metric) == ("score", "judge", "score_mean")
    assert (flag.window_start, flag.window_end) == (NOW - timedelta(hours=2), NOW)
    assert flag.observed == pytest.approx(0.21, abs=0.02)
    assert flag.baseline == pytest.approx(0.8, abs=0.01)
    assert "Mean judge score fell to" in flag.explanation
    assert "over the 7 days before" in flag.explanation


def test_steady_scores_a_small_dip_and_a_rise_are_not_flagged() -> None:
    assert score_drops(judged(STEADY), since=NOW - timedelta(hours=6), until=NOW) == []
    dip = judged({**STEADY, -1: [0.75, 0.7, 0.8, 0.72, 0.7]})
    assert score_drops(dip, since=NOW - timedelta(hours=6), until=NOW) == []
    rise = judged({**STEADY, -1: [1.0, 1.0, 1.0, 1.0, 1.0]})
    assert score_drops(rise, since=NOW - timedelta(hours=6), until=NOW) == []


def test_too_few_scores_are_not_judged() -> None:
    sparse = judged({-30: [0.9] * 3, -1: [0.0] * 5})  # a baseline of three scores
    assert score_drops(sparse, since=NOW - timedelta(hours=6), until=NOW) == []


def test_the_refresh_stores_a_score_drop_with_its_lowest_scored_sessions(db: None) -> None:
    project, _ = make_project(name="Arena")
    sessions = [make_session(project) for _ in range(3)]
    rows = judged({**STEADY, -1: [0.1, 0.2, 0.15, 0.2, 0.1]})
    Score.objects.bulk_create(
        Score(
            project=project,
            session=sessions[n % 3],
            client_id=f"s{n}",
            name="judge",
            data_type="numeric",
            value=row.value,
            created_at=row.created_at,
        )
        for n, row in enumerate(rows.itertuples())
    )

    refresh_anomalies(project.pk, since=NOW - timedelta(hours=3), until=NOW)

    flag = Anomaly.objects.get(project=project, metric="score_mean")
    assert (flag.subject_type, flag.subject) == ("score", "judge")
    assert 1 <= len(flag.example_session_ids) <= 3
    assert set(flag.example_session_ids) <= {s.pk for s in sessions}
