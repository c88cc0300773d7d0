"""Per-project rules that turn spans into messages between agents (MessageRule), and the
built-in one for TaskWeaver's post spans. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.formats.semconv_values import Attributes


@dataclass(frozen=True, slots=True)
class MessageRule:
    """Which span attributes carry a message's fields (ingest.models.MessageMappingRule).

    A span matches when its name is `span_name` (or the rule names none) and it carries both the
    sender and the receiver attribute."""

    name: str
    sender_attribute: str
    receiver_attribute: str
    content_attribute: str = ""
    span_name: str = ""
    channel_attribute: str = ""
    message_id_attribute: str = ""
    correlation_attribute: str = ""

    def matches(self, span_name: str, attributes: Attributes) -> bool:
        if self.span_name and span_name != self.span_name:
            return False
        return bool(attributes.get(self.sender_attribute)) and bool(
            attributes.get(self.receiver_attribute)
        )


# TaskWeaver's Session._send_message spans: one post between User, Planner and the workers.
TASKWEAVER_POST_RULE = MessageRule(
    name="taskweaver post",
    sender_attribute="in.from",
    receiver_attribute="in.recipient",
    content_attribute="in.message",
)


BUILTIN_MESSAGE_RULES = (TASKWEAVER_POST_RULE,)
