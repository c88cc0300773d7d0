"""Writes of a project's settings by its people: the project itself, members and roles, API keys,
model price overrides and message mapping rules. Each returns the before/after of what changed,
which the caller records in the audit log (ingest/audit.py) in the same transaction.

Role checks are the caller's (ingest/access.py); the rules here hold whoever calls: a project
always keeps an owner, and a key's raw value is returned once and never stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.text import slugify

from ingest.audit import Changes, diff
from ingest.auth import forget_cached_keys
from ingest.models import (
    ApiKey,
    Membership,
    MessageMappingRule,
    ModelPrice,
    Project,
    new_webhook_secret,
)

PROJECT_FIELDS = ("name", "session_attributes", "requeue_webhook_url")
PRICE_FIELDS = (
    "input_per_million",
    "output_per_million",
    "cached_input_per_million",
    "reasoning_per_million",
)
RULE_FIELDS = (
    "name",
    "span_name",
    "sender_attribute",
    "receiver_attribute",
    "content_attribute",
    "channel_attribute",
    "message_id_attribute",
    "correlation_attribute",
)


class SettingsError(ValueError):
    """A change the rules refuse; the message says why and is shown to the person."""


def fields_of(instance: Model | None, names: Iterable[str]) -> dict[str, Any]:
    """The named attributes of a row (none of a row that does not exist yet)."""
    return {} if instance is None else {name: getattr(instance, name) for name in names}


def unused_slug(name: str) -> str:
    """`slugify(name)`, with `-2`, `-3`… when a project already has it."""
    base = slugify(name)[:190]
    if not base:
        raise SettingsError("A project name needs at least one letter or digit.")
    taken = set(Project.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


def create_project(name: str, *, owner: Any) -> Project:
    """A new project with `owner` as its owner."""
    with transaction.atomic():
        project = Project.objects.create(name=name.strip(), slug=unused_slug(name))
        Membership.objects.create(user=owner, project=project, role=Membership.Role.OWNER)
    return project


def update_project(project: Project, **values: str) -> Changes:
    """Set some of PROJECT_FIELDS (the slug stays: links and API clients use it)."""
    unknown = set(values) - set(PROJECT_FIELDS)
    if unknown:
        raise TypeError(f"not project settings: {sorted(unknown)}")
    before = fields_of(project, values)
    for name, value in values.items():
        setattr(project, name, value)
    changes = diff(before, fields_of(project, values))
    if changes:
        project.save(update_fields=list(changes))
    return changes


LIFECYCLE_FIELDS = (
    "raw_retention_days",
    "derived_retention_days",
    "is_redaction_enabled",
    "redaction_detectors",
    "redaction_patterns",
)


def update_lifecycle(project: Project, **values: Any) -> Changes:
    """Set some of LIFECYCLE_FIELDS (retention and PII redaction; docs/lifecycle.md). The
    caller has validated them (dashboard/forms_settings.py, api/serializers)."""
    unknown = set(values) - set(LIFECYCLE_FIELDS)
    if unknown:
        raise TypeError(f"not lifecycle settings: {sorted(unknown)}")
    before = fields_of(project, values)
    for name, value in values.items():
        setattr(project, name, value)
    changes = diff(before, fields_of(project, values))
    if changes:
        project.save(update_fields=list(changes))
    return changes


def rotate_requeue_webhook_secret(project: Project) -> Changes:
    """A new signing secret for the requeue webhook; the old one stops verifying at once (the
    receiver must be given the new one). The change is logged without either value."""
    before = {"requeue_webhook_secret": project.requeue_webhook_secret}
    project.requeue_webhook_secret = new_webhook_secret()
    project.save(update_fields=["requeue_webhook_secret"])
    after = {"requeue_webhook_secret": project.requeue_webhook_secret}
    return diff(before, after, secrets=["requeue_webhook_secret"])


def add_member(project: Project, user: Any, role: str) -> Membership:
    if Membership.objects.filter(project=project, user=user).exists():
        raise SettingsError(f"{user.get_username()} is already a member of {project.name}.")
    return Membership.objects.create(project=project, user=user, role=Membership.Role(role))


def _refuse_losing_last_owner(membership: Membership) -> None:
    others = Membership.objects.filter(project_id=membership.project_id, role="owner").exclude(
        pk=membership.pk
    )
    if membership.role == Membership.Role.OWNER and not others.exists():
        raise SettingsError("A project keeps at least one owner: make another owner first.")


def set_role(membership: Membership, role: str) -> Changes:
    new = Membership.Role(role)
    if new == membership.role:
        return {}
    with transaction.atomic():
        _refuse_losing_last_owner(membership)
        changes = diff({"role": membership.role}, {"role": new.value})
        membership.role = new
        membership.save(update_fields=["role"])
    return changes


def remove_member(membership: Membership) -> Changes:
    with transaction.atomic():
        _refuse_losing_last_owner(membership)
        changes = diff({"role": membership.role}, {"role": None})
        membership.delete()
    return changes


def create_key(
    project: Project, label: str, scopes: Iterable[str], *, created_by: str
) -> tuple[ApiKey, str, Changes]:
    """A new key and its raw value, which exists only in this answer (only its hash is kept)."""
    wanted = list(scopes)
    if not wanted:
        raise SettingsError("Choose at least one scope.")
    key, raw = ApiKey.generate(
        project, label.strip() or "default", scopes=wanted, created_by=created_by
    )
    return key, raw, diff({}, {"label": key.name, "scopes": key.scopes.split()})


def revoke_key(key: ApiKey) -> Changes:
    """Revoke for good (every agentops token made from the key stops working too)."""
    if key.revoked_at is not None:
        return {}
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    transaction.on_commit(forget_cached_keys)
    return diff({"revoked": False}, {"revoked": True})


def save_price(project: Project, model: str, **prices: float | None) -> Changes:
    """Create or replace the override for `model` (an exact name or a `gpt-4o*` pattern)."""
    existing = ModelPrice.objects.filter(project=project, model=model).first()
    before = fields_of(existing, PRICE_FIELDS)
    price = existing or ModelPrice(project=project, model=model)
    for name in PRICE_FIELDS:
        setattr(price, name, prices.get(name))
    price.save()
    return diff(before, fields_of(price, PRICE_FIELDS))


def delete_price(price: ModelPrice) -> Changes:
    changes = diff(fields_of(price, PRICE_FIELDS), {})
    price.delete()
    return changes


def save_message_rule(rule: MessageMappingRule, before: dict[str, Any]) -> Changes:
    """Save a rule (new, or edited by a form); `before` is fields_of() the stored one."""
    rule.save()
    return diff(before, fields_of(rule, RULE_FIELDS))


def delete_message_rule(rule: MessageMappingRule) -> Changes:
    changes = diff(fields_of(rule, RULE_FIELDS), {})
    rule.delete()
    return changes
