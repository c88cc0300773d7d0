"""Forms of the analytics pages: alert rules, report schedules, the report builder and cohorts.
They validate input only; writes go through analytics.store."""

from __future__ import annotations

from typing import Any

from django import forms

from analytics.alerts import ALERT_METRICS, COMPARATORS, SCORE_METRICS
from analytics.anomalies import METRICS as ANOMALY_METRICS
from analytics.models import AlertRule, ReportSchedule
from analytics.overview import MAX_RANGE_DAYS
from analytics.reports import GROUPINGS, REPORT_METRICS


class AlertRuleForm(forms.ModelForm):  # type: ignore[type-arg]
    metric = forms.ChoiceField(
        choices=[
            ("Metric rules", list(ALERT_METRICS.items())),
            ("Anomaly rules", [("", "any anomaly"), *ANOMALY_METRICS.items()]),
        ],
        required=False,
    )
    comparator = forms.ChoiceField(choices=[(c, c) for c in COMPARATORS])

    class Meta:
        model = AlertRule
        fields = [
            "name",
            "kind",
            "metric",
            "agent",
            "model",
            "tool",
            "score_name",
            "window_minutes",
            "comparator",
            "threshold",
            "channel",
            "target",
            "secret",
            "renotify_minutes",
            "is_enabled",
        ]
        # The signing secret is never sent back to a browser (any member can open the edit
        # form); left blank on an edit, the rule keeps the secret it has.
        widgets = {"secret": forms.PasswordInput(render_value=False)}
        help_texts = {"secret": "Left blank when editing: the current secret is kept."}

    def clean_secret(self) -> str:
        secret: str = self.cleaned_data.get("secret", "")
        if not secret and self.instance.pk:
            return str(self.instance.secret)
        return secret

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, metric = data.get("kind"), data.get("metric", "")
        if kind == AlertRule.Kind.METRIC and metric not in ALERT_METRICS:
            self.add_error("metric", "A metric rule needs one of the metrics.")
        if metric in SCORE_METRICS and not data.get("score_name"):
            self.add_error("score_name", "A score metric needs the name of the scores to judge.")
        if kind == AlertRule.Kind.ANOMALY and metric and metric not in ANOMALY_METRICS:
            self.add_error("metric", "An anomaly rule watches one anomaly metric, or any.")
        target = data.get("target", "")
        if data.get("channel") == AlertRule.Channel.EMAIL:
            for address in (a.strip() for a in target.split(",")):
                forms.EmailField().clean(address)
        elif target and not target.startswith(("http://", "https://")):
            self.add_error("target", "A webhook needs an http:// or https:// URL.")
        if (data.get("window_minutes") or 0) < 1:
            self.add_error("window_minutes", "At least one minute.")
        return data


class ReportScheduleForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = ReportSchedule
        fields = ["is_daily", "is_weekly", "email_to"]

    def clean_email_to(self) -> str:
        value: str = self.cleaned_data.get("email_to", "")
        for address in (a.strip() for a in value.split(",") if a.strip()):
            forms.EmailField().clean(address)
        return value


class ReportBuilderForm(forms.Form):
    """Rendered on the reports page; it submits to the report builder API (`?format=csv`)."""

    grouping = forms.ChoiceField(choices=[(g, g.replace("_", " by ")) for g in GROUPINGS])
    metrics = forms.MultipleChoiceField(
        choices=list(REPORT_METRICS.items()), widget=forms.CheckboxSelectMultiple
    )
    days = forms.IntegerField(min_value=1, max_value=MAX_RANGE_DAYS, initial=7)


class CohortForm(forms.Form):
    split = forms.ChoiceField(
        choices=[
            ("tag", "tag"),
            ("metadata", "metadata value (e.g. agent version)"),
            ("config", "config value"),
            ("before_after", "before / after a change"),
        ]
    )
    key = forms.CharField(required=False, help_text="metadata or config key")
    a = forms.CharField(required=False, label="Cohort a")
    b = forms.CharField(required=False, label="Cohort b")
    change_at = forms.DateTimeField(required=False, label="Change at (UTC)")
    days = forms.IntegerField(min_value=1, max_value=MAX_RANGE_DAYS, initial=14)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        split = data.get("split")
        if split == "before_after" and not data.get("change_at"):
            self.add_error("change_at", "When did the change happen?")
        if split in ("metadata", "config") and not data.get("key"):
            self.add_error("key", "Which key holds the value?")
        if split != "before_after" and not (data.get("a") and data.get("b")):
            self.add_error("b", "Name both cohorts.")
        return data
