"""Dead letters: resolve, requeue, and the poll that hands requeued messages back."""

from __future__ import annotations

from django.db import (
    connection,
    transaction,
)
from django.db.models import F, QuerySet
from django.utils import timezone

from ingest.models import (
    Message,
    Project,
)


def resolve_messages(messages: QuerySet[Message], *, note: str = "") -> int:
    """Mark these dead letters resolved (a person dealt with them); returns how many changed."""
    dead = messages.exclude(dead_letter_state="")
    return dead.update(
        dead_letter_state=Message.DeadLetterState.RESOLVED,
        resolved_at=timezone.now(),
        resolution_note=note[:500],
    )


def requeue_messages(messages: QuerySet[Message]) -> list[int]:
    """Requeue these dead letters: the next poll by the agent system hands them over. Returns
    the pks requeued. Requeueing again makes a message pollable again."""
    pks = list(messages.exclude(dead_letter_state="").values_list("pk", flat=True))
    Message.objects.filter(pk__in=pks).update(
        dead_letter_state=Message.DeadLetterState.REQUEUED,
        requeued_at=timezone.now(),
        requeue_count=F("requeue_count") + 1,
        poll_id="",
        polled_at=None,
    )
    return pks


def claim_requeued_messages(project: Project, *, poll_id: str, limit: int) -> list[Message]:
    """The requeued messages a poll hands over, oldest requeue first, with their content.

    Idempotent per poll_id: the same poll_id gets the same messages back (a poller that lost the
    answer asks again), and a message is handed to one poll only, even with concurrent pollers
    (PostgreSQL skips rows another poll has locked)."""
    with transaction.atomic():
        taken = Message.objects.filter(project=project, poll_id=poll_id)
        if not taken.exists():
            waiting = Message.objects.filter(
                project=project, dead_letter_state=Message.DeadLetterState.REQUEUED, poll_id=""
            ).order_by("requeued_at", "id")
            if connection.features.has_select_for_update_skip_locked:
                waiting = waiting.select_for_update(skip_locked=True)
            pks = list(waiting.values_list("pk", flat=True)[:limit])
            Message.objects.filter(pk__in=pks).update(poll_id=poll_id, polled_at=timezone.now())
        claimed = taken.select_related("session", "body").order_by("requeued_at", "id")
        return list(claimed)
