"""The alerts page: alert rules (saved, tested, toggled, deleted through analytics.store, each
change in the audit log) and the latest alert events."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from analytics import queries, store
from analytics.alerting import send_test_notification
from analytics.models import AlertRule
from dashboard.forms_analytics import AlertRuleForm
from dashboard.pages import Nav, api_url, project_page
from ingest import access, audit
from ingest.models import AuditEntry

ALERT_HISTORY = 50


def _rule_or_404(request: HttpRequest, pk: int) -> AlertRule:
    rules = queries.alert_rules_for_projects(queries.projects_for_user(request.user))
    return get_object_or_404(rules.select_related("project"), pk=pk)


# What the audit log keeps of a rule; the secret only as "(changed)".
RULE_AUDIT_FIELDS = (
    "name",
    "kind",
    "metric",
    "agent",
    "model",
    "tool",
    "window_minutes",
    "comparator",
    "threshold",
    "channel",
    "target",
    "secret",
    "renotify_minutes",
    "is_enabled",
)


def _rule_fields(rule: AlertRule | None) -> dict[str, Any]:
    return {} if rule is None else {name: getattr(rule, name) for name in RULE_AUDIT_FIELDS}


def _record_rule(
    request: HttpRequest, action: AuditEntry.Action, rule: AlertRule, before: dict[str, Any]
) -> None:
    after = _rule_fields(rule) if action == AuditEntry.Action.ALERT_RULE_SAVE else {}
    audit.record(
        request,
        action,
        project_id=rule.project_id,
        target=f"alert rule “{rule.name}”",
        changes=audit.diff(before, after, secrets=["secret"]),
    )


@login_required
@project_page
def alerts(request: HttpRequest, nav: Nav) -> HttpResponse:
    editing = (
        _rule_or_404(request, int(request.GET["edit"]))
        if request.GET.get("edit", "").isdecimal()
        else None
    )
    if request.method == "POST":
        project_id = nav.project.pk if editing is None else editing.project_id
        access.require(request.user, project_id, access.Action.EDIT_ALERT_RULES)
    before = _rule_fields(editing)  # the form writes into `editing` as it validates
    form = AlertRuleForm(request.POST or None, instance=editing)
    if request.method == "POST" and form.is_valid():
        rule = form.save(commit=False)
        rule.project = nav.project if editing is None else editing.project
        with transaction.atomic():
            store.save_alert_rule(rule)
            _record_rule(request, AuditEntry.Action.ALERT_RULE_SAVE, rule, before)
        messages.success(request, f"Alert rule “{rule.name}” saved.")
        return redirect("dashboard:alerts")
    context = {
        "nav": nav,
        "form": form,
        "editing": editing,
        "rules": list(queries.alert_rules_for_projects([nav.project.pk])),
        "events": list(queries.alert_events_for_projects([nav.project.pk])[:ALERT_HISTORY]),
        "csv_rules": api_url("api:alert-rule-list", project=nav.project.slug, format="csv"),
        "csv_events": api_url("api:alert-event-list", project=nav.project.slug, format="csv"),
    }
    return render(request, "dashboard/alerts.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def alert_action(request: HttpRequest, pk: int) -> HttpResponse:
    """test (send a test notification), toggle (enable/disable) or delete."""
    rule = _rule_or_404(request, pk)
    access.require(request.user, rule.project_id, access.Action.EDIT_ALERT_RULES)
    action = request.POST.get("action", "")
    before = _rule_fields(rule)
    if action == "test":
        audit.record(
            request,
            AuditEntry.Action.ALERT_RULE_TEST,
            project_id=rule.project_id,
            target=f"alert rule “{rule.name}”",
        )
        event = send_test_notification(rule, now=timezone.now())
        event.refresh_from_db()
        if event.is_delivered:
            messages.success(request, f"Test notification sent to {rule.target}.")
        else:
            messages.error(request, f"Test notification failed: {event.delivery_error}")
    elif action == "toggle":
        rule.is_enabled = not rule.is_enabled
        with transaction.atomic():
            store.save_alert_rule(rule)
            _record_rule(request, AuditEntry.Action.ALERT_RULE_SAVE, rule, before)
        messages.success(request, f"“{rule.name}” {'enabled' if rule.is_enabled else 'disabled'}.")
    elif action == "delete":
        with transaction.atomic():
            _record_rule(request, AuditEntry.Action.ALERT_RULE_DELETE, rule, before)
            store.delete_alert_rule(rule)
        messages.success(request, f"“{rule.name}” deleted.")
    return redirect("dashboard:alerts")
