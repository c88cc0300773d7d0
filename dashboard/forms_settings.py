"""Forms of the settings pages (projects, members, keys, prices, mapping rules, the requeue
webhook). They validate input only; writes go through ingest/projects.py."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from analytics.deletion import retention_error
from analytics.webhooks import is_blocked_address
from ingest.models import (
    ApiKey,
    ErasureRequest,
    Membership,
    MessageMappingRule,
    ModelPrice,
    Project,
)
from ingest.redaction import BUILTIN_NAMES, PatternError, parse_custom_patterns

ROLE_CHOICES = Membership.Role.choices


class ProjectNameForm(forms.Form):
    name = forms.CharField(max_length=200, strip=True)


class MemberAddForm(forms.Form):
    user = forms.CharField(
        max_length=254, label="User name or email", help_text="Someone who already has a login."
    )
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Membership.Role.VIEWER)

    def clean_user(self) -> Any:
        text = self.cleaned_data["user"].strip()
        found = list(get_user_model().objects.filter(Q(username=text) | Q(email__iexact=text))[:2])
        if len(found) != 1:
            raise forms.ValidationError(
                "No such user." if not found else "Several users have this email: use the name."
            )
        return found[0]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


class KeyForm(forms.Form):
    label = forms.CharField(
        max_length=100, help_text="Where the key is used, e.g. “support agent, production”."
    )
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        initial=[ApiKey.Scope.INGEST],
        widget=forms.CheckboxSelectMultiple,
        help_text="An agent needs only ingest. Give read, actions and poll only where needed.",
    )


class PriceForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = ModelPrice
        fields = [
            "model",
            "input_per_million",
            "output_per_million",
            "cached_input_per_million",
            "reasoning_per_million",
        ]
        help_texts = {
            "model": "An exact model name, or a pattern such as gpt-4o* (exact names win).",
            "input_per_million": "USD per million input tokens.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Editing changes the prices of one model; another model is a new override.
        self.fields["model"].disabled = self.instance.pk is not None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name, value in data.items():
            if isinstance(value, float) and value < 0:
                self.add_error(name, "A price cannot be negative.")
        return data

    def validate_unique(self) -> None:
        # Saving a model's price again replaces it (ingest/projects.py: save_price).
        pass


class MessageRuleForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = MessageMappingRule
        fields = [
            "name",
            "span_name",
            "sender_attribute",
            "receiver_attribute",
            "content_attribute",
            "channel_attribute",
            "message_id_attribute",
            "correlation_attribute",
        ]

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        taken = MessageMappingRule.objects.filter(project=self.project, name=name)
        if taken.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("The project has a rule by this name.")
        return name


class SessionAttributesForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Project
        fields = ["session_attributes"]


class RequeueWebhookForm(forms.ModelForm):  # type: ignore[type-arg]
    requeue_webhook_url = forms.URLField(
        required=False,
        max_length=200,
        assume_scheme="https",
        label="Requeue webhook URL",
        help_text=Project._meta.get_field("requeue_webhook_url").help_text,
        widget=forms.URLInput(attrs={"placeholder": "https://…"}),
    )

    class Meta:
        model = Project
        fields = ["requeue_webhook_url"]

    def clean_requeue_webhook_url(self) -> str:
        """An address typed as such is refused now; a name is checked again when dialled
        (analytics/webhooks.py), since what it resolves to can change."""
        url = str(self.cleaned_data["requeue_webhook_url"])
        host = urlsplit(url).hostname or ""
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        blocked = host == "localhost" or (literal is not None and is_blocked_address(host))
        if blocked and not settings.OBSERVATORY_WEBHOOK_ALLOW_PRIVATE:
            raise forms.ValidationError("Webhooks may not reach local or private addresses.")
        return url


class RetentionForm(forms.Form):
    raw_retention_days = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=36_500,
        label="Raw telemetry, days",
        help_text="Spans, prompts and completions, transcript lines, messages, metric samples, "
        "the ingest ledger and problems. Blank: the server's default; 0: forever.",
    )
    derived_retention_days = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=36_500,
        label="Sessions, rollups and incidents, days",
        help_text="Session summaries, hourly and daily rollups, anomalies, incidents; at least "
        "the raw days. Blank: the server's default; 0: forever.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        raw, derived = data.get("raw_retention_days"), data.get("derived_retention_days")
        error = retention_error(
            settings.OBSERVATORY_RAW_RETENTION_DAYS if raw is None else raw,
            settings.OBSERVATORY_DERIVED_RETENTION_DAYS if derived is None else derived,
        )
        if error:
            field = error.split(" ", 1)[0].rstrip(":")  # the message starts with the field
            self.add_error(field if field in self.fields else None, error)
        return data


DETECTOR_LABELS = {
    "jwt": "JSON web tokens",
    "bearer": "Bearer tokens",
    "anthropic_key": "Anthropic keys (sk-ant-)",
    "openai_key": "OpenAI keys (sk-)",
    "aws_key": "AWS access keys (AKIA, ASIA)",
    "github_token": "GitHub tokens (ghp_, github_pat_)",
    "slack_token": "Slack tokens (xox…)",
    "google_key": "Google API keys (AIza)",
    "email": "E-mail addresses",
    "iban": "IBANs (checksum checked)",
    "card": "Card numbers (Luhn checked)",
    "ipv6": "IPv6 addresses",
    "ipv4": "IPv4 addresses",
    "phone": "Phone numbers",
}


class RedactionForm(forms.Form):
    is_redaction_enabled = forms.BooleanField(
        required=False,
        label="Redact personal data and secrets before they are stored",
        help_text="Applies to what arrives from now on; stored data is not rewritten.",
    )
    redaction_detectors = forms.MultipleChoiceField(
        required=False,
        choices=[(name, DETECTOR_LABELS.get(name, name)) for name in BUILTIN_NAMES],
        widget=forms.CheckboxSelectMultiple,
        label="Built-in detectors",
    )
    redaction_patterns = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Custom patterns",
        help_text="One `name: pattern` per line, in RE2 syntax (no backreferences or "
        "lookarounds); a match becomes [REDACTED:name].",
    )

    def clean_redaction_patterns(self) -> list[dict[str, str]]:
        try:
            patterns = parse_custom_patterns(self.cleaned_data.get("redaction_patterns") or "")
        except PatternError as exc:
            raise forms.ValidationError(str(exc)) from None
        return [{"name": p.name, "pattern": p.pattern} for p in patterns]


class ErasureForm(forms.Form):
    kind = forms.ChoiceField(choices=ErasureRequest.Kind.choices, label="Erase every session of")
    value = forms.CharField(
        max_length=300,
        strip=True,
        label="User id or tag",
        help_text="A user id is looked up in session metadata (user_id, user.id, enduser.id, "
        "userId); a tag must match exactly.",
    )
    confirm = forms.BooleanField(
        label="I understand the sessions and everything under them are deleted for good."
    )
