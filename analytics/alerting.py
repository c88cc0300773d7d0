"""Alert evaluation and delivery: read a rule's window (analytics.queries), judge it
(analytics.alerts), record the state (analytics.store) and notify the webhook or email. The only
analytics module that talks to the outside world.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pandas as pd
import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import connections

from analytics import queries, store, webhooks
from analytics.alerts import (
    ALERT,
    OK,
    SCORE_METRICS,
    SIGNATURE_HEADER,
    anomaly_message,
    decide,
    describe_scope,
    encode_payload,
    metric_message,
    metric_state,
    metric_value,
    sign,
    webhook_payload,
)
from analytics.models import AlertEvent, AlertRule

# Notifications delivered at once by one alert evaluation; the rest wait for a free thread.
DELIVERY_THREADS = 8


def rule_value(rule: AlertRule, *, now: datetime) -> tuple[str, float | None, str]:
    """The rule's state, value and message for the window that ends now."""
    since = now - timedelta(minutes=rule.window_minutes)
    if rule.kind == AlertRule.Kind.ANOMALY:
        # One alert per incident: knock-on flags and a growing incident are not news again.
        explanations = queries.new_incident_explanations(
            rule.project_id, since=since, metric=rule.metric
        )
        state = ALERT if explanations else OK
        message = anomaly_message(name=rule.name, state=state, explanations=explanations)
        return state, float(len(explanations)), message
    value = _window_value(rule, since=since, now=now)
    state = metric_state(value, comparator=rule.comparator, threshold=rule.threshold)
    message = metric_message(
        name=rule.name,
        state=state,
        metric=rule.metric,
        value=value,
        comparator=rule.comparator,
        threshold=rule.threshold,
        window_minutes=rule.window_minutes,
        scope=describe_scope(
            agent=rule.agent, model=rule.model, tool=rule.tool, score_name=rule.score_name
        ),
    )
    return state, value, message


def _window_value(rule: AlertRule, *, since: datetime, now: datetime) -> float | None:
    if rule.metric in SCORE_METRICS:
        scores = queries.score_frame(
            rule.project_id, since=since, until=now, names=[rule.score_name]
        )
        return metric_value(pd.DataFrame(), pd.DataFrame(), rule.metric, scores)
    spans = queries.alert_span_frame(
        rule.project_id, since=since, until=now, agent=rule.agent, model=rule.model, tool=rule.tool
    )
    sessions = queries.alert_session_frame(rule.project_id, since=since, until=now)
    return metric_value(spans, sessions, rule.metric)


def evaluate_rule(rule: AlertRule, *, now: datetime) -> AlertEvent | None:
    """Judge one rule; on a change of state or a due re-notification, record an event and
    deliver it. Returns the event, if any."""
    event = judge_rule(rule, now=now)
    if event is not None:
        deliver(rule, event)
    return event


def evaluate_rules(rules: Iterable[AlertRule], *, now: datetime) -> list[AlertEvent]:
    """Judge every rule, then deliver their notifications side by side: one project's slow or
    dead webhook (each bounded by OBSERVATORY_WEBHOOK_TIMEOUT_SECONDS) must not hold back the
    other projects' alerts."""
    due = [(rule, event) for rule in rules if (event := judge_rule(rule, now=now)) is not None]
    if not due:
        return []
    with ThreadPoolExecutor(max_workers=min(DELIVERY_THREADS, len(due))) as pool:
        list(pool.map(lambda pair: _deliver_in_thread(*pair), due))
    return [event for _, event in due]


def _deliver_in_thread(rule: AlertRule, event: AlertEvent) -> str:
    try:
        return deliver(rule, event)
    finally:
        connections.close_all()  # each thread has its own database connection


def judge_rule(rule: AlertRule, *, now: datetime) -> AlertEvent | None:
    """Judge one rule and record its state; the event to deliver on a change of state or a due
    re-notification, else None."""
    state, value, message = rule_value(rule, now=now)
    decision = decide(
        previous_state=rule.state,
        state=state,
        last_notified_at=rule.last_notified_at,
        renotify_minutes=rule.renotify_minutes,
        now=now,
    )
    store.record_alert_evaluation(
        rule, state=state, value=value, at=now, notified=decision.should_notify
    )
    if not decision.should_notify:
        return None
    return store.add_alert_event(
        rule, at=now, state=state, previous_state=rule.state, value=value, message=message
    )


def send_test_notification(rule: AlertRule, *, now: datetime) -> AlertEvent:
    """A notification marked as a test, through the rule's channel, recorded in its history."""
    message = f"[TEST] {rule.name}: a test notification from Agent Observatory"
    event = store.add_alert_event(
        rule,
        at=now,
        state=rule.state,
        previous_state=rule.state,
        value=rule.last_value,
        message=message,
        is_test=True,
    )
    deliver(rule, event)
    return event


def deliver(rule: AlertRule, event: AlertEvent) -> str:
    """Send the event through the rule's channel; record and return the error ("" on success)."""
    try:
        if rule.channel == AlertRule.Channel.EMAIL:
            send_mail(
                subject=event.message[:150],
                message=f"{event.message}\n\n{_rules_url()}",
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[a.strip() for a in rule.target.split(",") if a.strip()],
            )
        else:
            _post_webhook(rule, event)
        error = ""
    except (requests.RequestException, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    store.record_delivery(event, error=error)
    return error


def _rules_url() -> str:
    return f"{settings.SITE_URL.rstrip('/')}/alerts/"


def _post_webhook(rule: AlertRule, event: AlertEvent) -> None:
    payload = webhook_payload(
        rule_id=rule.pk,
        rule=rule.name,
        project=rule.project.slug,
        state=event.state,
        previous_state=event.previous_state,
        value=event.value,
        message=event.message,
        at=event.at,
        is_test=event.is_test,
        url=_rules_url(),
        slack=rule.channel == AlertRule.Channel.SLACK,
    )
    body = encode_payload(payload)
    headers = {"Content-Type": "application/json", "User-Agent": "AgentObservatory-Alerts/1"}
    if rule.secret:
        headers[SIGNATURE_HEADER] = sign(body, rule.secret)
    status = webhooks.post(
        rule.target,
        body,
        headers,
        timeout=settings.OBSERVATORY_WEBHOOK_TIMEOUT_SECONDS,
        allow_private=settings.OBSERVATORY_WEBHOOK_ALLOW_PRIVATE,
    )
    if status >= 300:
        raise ValueError(f"the webhook answered HTTP {status}")
