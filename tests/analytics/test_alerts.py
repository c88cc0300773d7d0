"""analytics.alerts: metric values, states, when to notify, messages and signatures. Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from analytics.alerts import (
    ALERT,
    NO_DATA,
    OK,
    anomaly_message,
    decide,
    encode_payload,
    is_valid_signature,
    metric_message,
    metric_state,
    metric_value,
    sign,
    webhook_payload,
)
from analytics.trends import SPAN_COLUMNS

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def spans(*rows: tuple[str, str, float, str]) -> pd.DataFrame:
    """(kind, status, duration_ms, error_message) rows."""
    return pd.DataFrame(
        [
            {
                "started_at": NOW,
                "kind": kind,
                "name": "x",
                "agent_external_id": "a",
                "model": "",
                "status": status,
                "duration_ms": duration,
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "cost": 0.5,
                "error_type": "",
                "error_message": message,
            }
            for kind, status, duration, message in rows
        ],
        columns=SPAN_COLUMNS,
    )


SESSIONS = pd.DataFrame({"end_state": ["fail", "success", "fail"]})
FOUR = spans(
    ("llm", "ok", 100.0, ""),
    ("llm", "error", 300.0, "Error code: 429 - Rate limit reached"),
    ("tool", "ok", 200.0, ""),
    ("error", "unset", 50.0, "boom"),
)


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        ("error_rate", 0.5),
        ("error_count", 2.0),
        ("rate_limit_count", 1.0),
        ("latency_p50_ms", 150.0),
        ("event_count", 4.0),
        ("tokens", 60.0),
        ("cost", 2.0),
        ("session_count", 3.0),
        ("failed_session_count", 2.0),
    ],
)
def test_each_metric_is_computed_over_the_window(metric: str, value: float) -> None:
    assert metric_value(FOUR, SESSIONS, metric) == pytest.approx(value)


def test_no_events_is_no_data_but_no_sessions_is_zero() -> None:
    empty_sessions = pd.DataFrame({"end_state": []})

    assert metric_value(spans(), empty_sessions, "error_rate") is None
    assert metric_value(spans(), empty_sessions, "session_count") == 0.0


def test_the_state_follows_the_comparator() -> None:
    assert metric_state(0.6, comparator=">", threshold=0.5) == ALERT
    assert metric_state(0.5, comparator=">", threshold=0.5) == OK
    assert metric_state(0.5, comparator=">=", threshold=0.5) == ALERT
    assert metric_state(2, comparator="<", threshold=3) == ALERT
    assert metric_state(None, comparator=">", threshold=0) == NO_DATA


def test_a_change_to_alert_notifies_and_a_lasting_alert_renotifies_when_due() -> None:
    first = decide(
        previous_state=OK, state=ALERT, last_notified_at=None, renotify_minutes=60, now=NOW
    )
    soon = decide(
        previous_state=ALERT,
        state=ALERT,
        last_notified_at=NOW,
        renotify_minutes=60,
        now=NOW + timedelta(minutes=30),
    )
    later = decide(
        previous_state=ALERT,
        state=ALERT,
        last_notified_at=NOW,
        renotify_minutes=60,
        now=NOW + timedelta(minutes=60),
    )
    never = decide(
        previous_state=ALERT,
        state=ALERT,
        last_notified_at=NOW,
        renotify_minutes=0,
        now=NOW + timedelta(days=1),
    )

    assert (first.should_notify, first.is_change) == (True, True)
    assert not soon.should_notify
    assert later.should_notify and not later.is_change
    assert not never.should_notify


def test_recovery_notifies_but_quiet_periods_do_not() -> None:
    assert decide(
        previous_state=ALERT, state=OK, last_notified_at=NOW, renotify_minutes=60, now=NOW
    ).should_notify
    assert decide(
        previous_state=ALERT, state=NO_DATA, last_notified_at=NOW, renotify_minutes=60, now=NOW
    ).should_notify
    assert not decide(
        previous_state=OK, state=NO_DATA, last_notified_at=None, renotify_minutes=60, now=NOW
    ).should_notify
    assert not decide(
        previous_state=NO_DATA, state=OK, last_notified_at=None, renotify_minutes=60, now=NOW
    ).should_notify


def test_messages_say_what_crossed_which_threshold() -> None:
    fired = metric_message(
        name="Slow search",
        state=ALERT,
        metric="latency_p95_ms",
        value=4100.0,
        comparator=">",
        threshold=2000.0,
        window_minutes=60,
        scope="tool search",
    )
    recovered = metric_message(
        name="Slow search",
        state=OK,
        metric="latency_p95_ms",
        value=900.0,
        comparator=">",
        threshold=2000.0,
        window_minutes=60,
        scope="tool search",
    )
    quiet = metric_message(
        name="Slow search",
        state=NO_DATA,
        metric="latency_p95_ms",
        value=None,
        comparator=">",
        threshold=2000.0,
        window_minutes=60,
        scope="tool search",
    )

    assert (
        fired
        == "[ALERT] Slow search: p95 latency (ms) of tool search was 4,100 > 2,000 in the last 60 min"
    )
    assert (
        recovered
        == "[OK] Slow search: p95 latency (ms) of tool search was 900 <= 2,000 in the last 60 min"
    )
    assert (
        quiet
        == "[NO DATA] Slow search: no p95 latency (ms) data for tool search in the last 60 min"
    )


def test_an_anomaly_rule_message_quotes_the_first_explanation() -> None:
    message = anomaly_message(name="Any anomaly", state=ALERT, explanations=["p95 up", "errors up"])

    assert message == "[ALERT] Any anomaly: p95 up (+1 more)"


def test_a_slack_payload_adds_text_to_the_structured_fields() -> None:
    fields: dict[str, Any] = {
        "rule_id": 3,
        "rule": "R",
        "project": "p",
        "state": ALERT,
        "previous_state": OK,
        "value": 1.0,
        "message": "[ALERT] R",
        "at": NOW,
        "is_test": False,
        "url": "http://x/alerts/",
    }

    plain = webhook_payload(**fields, slack=False)
    slack = webhook_payload(**fields, slack=True)

    assert "text" not in plain
    assert slack["text"] == "[ALERT] R <http://x/alerts/|Open in Agent Observatory>"
    assert slack["state"] == "alert"


def test_the_signature_is_the_hmac_sha256_of_the_exact_body() -> None:
    body = encode_payload({"b": 1, "a": "x"})

    signature = sign(body, "secret")

    assert body == b'{"a":"x","b":1}'
    # echo -n '{"a":"x","b":1}' | openssl dgst -sha256 -hmac secret
    assert signature == "sha256=0da57a8ea118b51c45ac6ea1ad8b1774b004c188ece0d7d5cd4bde2283e2fe41"
    assert is_valid_signature(body, "secret", signature)
    assert not is_valid_signature(body + b" ", "secret", signature)
    assert json.loads(body) == {"a": "x", "b": 1}
