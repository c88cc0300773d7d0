"""analytics.trends: rollups of spans and sessions, and merging them. Pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.trends import (
    SESSION_COLUMNS,
    SPAN_COLUMNS,
    histogram_quantile,
    is_rate_limit,
    merge_rollups,
    merged_histogram,
    named_rollups,
    resource_trend,
    session_rollups,
    span_rollups,
    trend_series,
)

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def span(
    minutes: float,
    *,
    kind: str = "llm",
    name: str = "openai.chat",
    agent: str = "planner",
    model: str = "gpt-4o",
    status: str = "ok",
    duration_ms: float | None = 100.0,
    prompt_tokens: int | None = 10,
    completion_tokens: int | None = 5,
    cost: float | None = 0.01,
    error_type: str = "",
    error_message: str = "",
) -> dict[str, object]:
    return {
        "started_at": T0 + timedelta(minutes=minutes),
        "kind": kind,
        "name": name,
        "agent_external_id": agent,
        "model": model if kind == "llm" else "",
        "status": status,
        "duration_ms": duration_ms,
        "prompt_tokens": prompt_tokens if kind == "llm" else None,
        "completion_tokens": completion_tokens if kind == "llm" else None,
        "cost": cost if kind == "llm" else None,
        "error_type": error_type,
        "error_message": error_message,
    }


def spans(*rows: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=SPAN_COLUMNS)


def test_spans_roll_up_per_hour_agent_model_tool_and_kind() -> None:
    frame = spans(
        span(1),
        span(2, duration_ms=300.0),
        span(3, kind="tool", name="search", duration_ms=50.0),
        span(70),
    )

    rollups = span_rollups(frame, freq="1h")

    keys = list(rollups[["bucket", "agent", "model", "tool", "kind"]].itertuples(index=False))
    assert [tuple(k) for k in keys] == [
        (pd.Timestamp(T0), "planner", "", "search", "tool"),
        (pd.Timestamp(T0), "planner", "gpt-4o", "", "llm"),
        (pd.Timestamp(T0 + timedelta(hours=1)), "planner", "gpt-4o", "", "llm"),
    ]
    llm = rollups.iloc[1]
    assert (llm["count"], llm["prompt_tokens"], llm["completion_tokens"]) == (2, 20, 10)
    assert llm["cost"] == pytest.approx(0.02)
    assert llm["latency_p50_ms"] == pytest.approx(200.0)
    assert sum(llm["latency_histogram"].values()) == 2


def test_errors_and_provider_429s_are_counted_separately() -> None:
    frame = spans(
        span(1, status="error", error_type="RateLimitError", error_message="Error code: 429"),
        span(2, status="error", error_type="ValueError", error_message="bad json"),
        span(3),
    )

    row = span_rollups(frame).iloc[0]

    assert (row["count"], row["error_count"], row["rate_limit_count"]) == (3, 2, 1)


@pytest.mark.parametrize(
    ("error_type", "message", "expected"),
    [
        ("RateLimitError", "", True),
        ("", "HTTP 429 Too Many Requests", True),
        ("ThrottlingException", "slow down", True),
        ("", "rate_limit_exceeded", True),
        ("TimeoutError", "took 4290 ms", False),
    ],
)
def test_rate_limit_errors_are_recognised_however_they_are_spelled(
    error_type: str, message: str, expected: bool
) -> None:
    assert is_rate_limit(error_type, message) is expected


def test_a_span_without_duration_is_counted_but_not_timed() -> None:
    row = span_rollups(spans(span(1, duration_ms=None), span(2, duration_ms=80.0))).iloc[0]

    assert (row["count"], row["timed_count"]) == (2, 1)
    assert row["latency_p99_ms"] == pytest.approx(80.0)


def test_a_day_rollup_puts_every_hour_of_the_day_in_one_bucket() -> None:
    frame = spans(span(0), span(60 * 5), span(60 * 13))

    rollups = span_rollups(frame, freq="1D")

    assert len(rollups) == 1
    assert rollups.iloc[0]["bucket"] == pd.Timestamp(datetime(2026, 11, 2, tzinfo=UTC))
    assert rollups.iloc[0]["count"] == 3


def test_no_spans_give_no_rows() -> None:
    assert len(span_rollups(spans())) == 0


def test_sessions_roll_up_with_duration_as_latency_and_failures_as_errors() -> None:
    sessions = pd.DataFrame(
        [
            (T0, "success", 1000.0, 100, 10, 0.5, 12, 4),
            (T0 + timedelta(minutes=5), "fail", 3000.0, 50, 5, 0.25, 8, 2),
        ],
        columns=SESSION_COLUMNS,
    )

    row = session_rollups(sessions).iloc[0]

    assert (row["kind"], row["count"], row["error_count"]) == ("session", 2, 1)
    assert (row["step_count"], row["message_count"]) == (20, 6)
    assert row["cost"] == pytest.approx(0.75)
    assert row["latency_p50_ms"] == pytest.approx(2000.0)


def test_merged_percentiles_are_within_five_percent_of_the_exact_ones() -> None:
    rng = np.random.default_rng(3)
    durations = rng.lognormal(mean=6.5, sigma=0.8, size=4000)
    models = rng.choice(["gpt-4o", "gpt-4o-mini", "claude"], size=4000)
    rows = [
        span(i % 600 / 10, model=str(model), duration_ms=float(d))
        for i, (model, d) in enumerate(zip(models, durations, strict=True))
    ]

    merged = merge_rollups(span_rollups(spans(*rows)), by=["agent"])

    for q, column in ((0.5, "latency_p50_ms"), (0.95, "latency_p95_ms"), (0.99, "latency_p99_ms")):
        exact = float(np.quantile(durations, q))
        assert merged.iloc[0][column] == pytest.approx(exact, rel=0.05)


def test_merging_sums_counts_and_derives_rates() -> None:
    frame = spans(
        span(1, model="a", status="error"),
        span(2, model="b"),
        span(3, model="b", prompt_tokens=30, completion_tokens=10),
    )

    merged = merge_rollups(span_rollups(frame), by=["agent"]).iloc[0]

    assert merged["count"] == 3
    assert merged["error_rate"] == pytest.approx(1 / 3)
    assert merged["tokens_per_call"] == pytest.approx((15 + 15 + 40) / 3)


def test_merging_without_percentiles_gives_the_same_sums_and_no_percentiles() -> None:
    frame = spans(
        span(1, model="a", status="error", duration_ms=50.0),
        span(2, model="a", duration_ms=900.0),
        span(3, model="b", prompt_tokens=30, completion_tokens=10),
    )
    rollups = span_rollups(frame)

    full = merge_rollups(rollups, by=["model"])
    counts_only = merge_rollups(rollups, by=["model"], percentiles=False)

    assert list(counts_only.columns) == list(full.columns)
    shared = ["model", "count", "error_count", "error_rate", "cost", "latency_mean_ms"]
    assert counts_only[shared].equals(full[shared])
    assert full["latency_p95_ms"].notna().all()
    assert counts_only["latency_p95_ms"].isna().all()


def test_a_group_of_one_row_keeps_its_exact_percentiles() -> None:
    frame = spans(span(1, duration_ms=123.0))

    merged = merge_rollups(span_rollups(frame), by=["model"]).iloc[0]

    assert merged["latency_p50_ms"] == pytest.approx(123.0)


def test_histogram_quantile_of_an_empty_histogram_is_none() -> None:
    assert histogram_quantile(merged_histogram([{}, {}]), 0.5) is None


def test_resource_samples_are_averaged_per_bucket_and_name() -> None:
    samples = pd.DataFrame(
        [
            (T0, "memory_mb", 100.0),
            (T0 + timedelta(minutes=10), "memory_mb", 300.0),
            (T0, "cpu_percent", 40.0),
        ],
        columns=["at", "name", "value"],
    )

    trend = resource_trend(samples)

    memory = trend[trend["name"] == "memory_mb"].iloc[0]
    assert (memory["mean"], memory["max"], memory["samples"]) == (200.0, 300.0, 2)


def test_sessions_without_a_duration_roll_up_untimed() -> None:
    sessions = pd.DataFrame([(T0, "running", None, 0, 0, 0.0, 1, 0)], columns=SESSION_COLUMNS)

    row = session_rollups(sessions).iloc[0]

    assert (row["count"], row["timed_count"]) == (1, 0)
    assert pd.isna(row["latency_p50_ms"])


def test_a_trend_series_has_one_row_per_bucket_and_group() -> None:
    frame = spans(
        span(1, model="a"),
        span(2, model="b", duration_ms=900.0),
        span(70, model="a"),
        span(3, kind="tool", name="search"),
    )

    series = trend_series(span_rollups(frame), group="model", kinds=("llm",))

    assert [(row.bucket.hour, row.group, row.count) for row in series.itertuples()] == [
        (10, "a", 1),
        (10, "b", 1),
        (11, "a", 1),
    ]
    assert series.iloc[1]["latency_p95_ms"] == pytest.approx(900.0)


def test_a_series_without_a_group_sums_every_span_kind_but_sessions() -> None:
    rollups = pd.concat(
        [
            span_rollups(spans(span(1), span(2, kind="tool", name="search"))),
            session_rollups(
                pd.DataFrame([(T0, "success", 10.0, 0, 0, 0.0, 2, 0)], columns=SESSION_COLUMNS)
            ),
        ]
    )

    series = trend_series(rollups, group=None)

    assert list(series["count"]) == [2]


def test_named_rollups_fold_each_sessions_agent_instance_into_its_name() -> None:
    """Three sessions' instances of one agent (OTLP gives each its own id) and an unnamed one:
    one row for the name with the calls, tokens and histograms of all three; the unnamed
    instance keeps its id."""
    rollups = span_rollups(
        spans(
            span(1, agent="id-1", duration_ms=100.0),
            span(2, agent="id-2", duration_ms=200.0),
            span(3, agent="id-3", duration_ms=300.0),
            span(4, agent="id-4", duration_ms=50.0),
        )
    )
    names = {"id-1": "Researcher", "id-2": "Researcher", "id-3": "Researcher"}

    named = named_rollups(rollups, names)

    assert named["agent"].tolist() == ["Researcher", "id-4"]
    researcher = named.iloc[0]
    assert (researcher["count"], researcher["prompt_tokens"]) == (3, 30)
    assert sum(researcher["latency_histogram"].values()) == 3
    assert researcher["latency_p50_ms"] == pytest.approx(200.0, rel=0.05)
    assert named.iloc[1]["latency_p50_ms"] == 50.0  # a row of one keeps its exact percentiles
    assert list(named.columns) == list(rollups.columns)


def test_named_rollups_of_nothing_are_empty() -> None:
    assert named_rollups(span_rollups(spans()), {"a": "b"}).empty
