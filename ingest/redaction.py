"""PII redaction at ingest: detectors of personal data and secrets, and their application to the
agent-written fields of parsed records before the store writes them. Pure (no Django).

A match is replaced by `[REDACTED:<detector>]`. Built-in detectors are our own `re` patterns,
each written to scan in linear time (bounded repeats, a lookbehind so a match starts only at a
word's start) and most guarded by a substring test that skips texts that cannot match. Custom
patterns are people's, so they compile with RE2 (google-re2), whose matching is linear in the
text whatever the pattern: the project fixed a ReDoS once, and a backtracking engine would let
one bad pattern stall ingest. Presidio and scrubadub were weighed and not used (docs/lifecycle.md).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import re2

from ingest.formats.records import (
    AgentMessageRecord,
    AgentRecord,
    MetricRecord,
    Record,
    SessionRecord,
    SpanRecord,
    StepRecord,
    TestResultRecord,
    TranscriptRecord,
    WorkflowRecord,
)

MARK = "[REDACTED:{}]"
# The span attribute that counts a span's redacted values (shown on the span page).
COUNT_ATTRIBUTE = "observatory.redacted"
# Session metadata keys that name the end user: kept, so that an erasure request for a user id
# still finds the sessions (analytics/deletion.py reads the same keys).
USER_ID_KEYS = ("user_id", "user.id", "enduser.id", "userId")
MAX_CUSTOM_PATTERNS = 20
MAX_PATTERN_CHARS = 500
NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_HAS_DIGIT = re.compile(r"\d")
# Shorter strings hold none of the detected kinds (the shortest, an IPv4 address, has 7).
MIN_CHARS = 7


@dataclass(frozen=True)
class Detector:
    """A named pattern. `hints`: substrings of which a text must hold one (None: any digit) to
    be searched at all. `validate` confirms a candidate match (a Luhn check, an IBAN checksum).
    `group` is the part of the match that is replaced (a bearer token, not the word Bearer)."""

    name: str
    pattern: Any  # a compiled re or re2 pattern
    hints: tuple[str, ...] | None = ()
    validate: Callable[[str], bool] | None = None
    group: int = 0

    @property
    def mark(self) -> str:
        return MARK.format(self.name)


def luhn_valid(digits: str) -> bool:
    """Whether a digit string passes the Luhn checksum (card numbers)."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def is_card_number(candidate: str) -> bool:
    digits = re.sub(r"[ -]", "", candidate)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def is_iban(candidate: str) -> bool:
    """ISO 13616: 15 to 34 characters whose mod-97 check (letters as 10..35) gives 1."""
    text = candidate.replace(" ", "")
    if not 15 <= len(text) <= 34:
        return False
    moved = text[4:] + text[:4]
    return int("".join(str(int(char, 36)) for char in moved)) % 97 == 1


def is_ipv6(candidate: str) -> bool:
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


def is_phone_number(candidate: str) -> bool:
    """International numbers (a `+`, 8 to 15 digits) or national ones written with separators
    (10 or 11 digits, not a date): plain digit runs (timestamps, ids) and dates are kept."""
    digits = sum(char.isdigit() for char in candidate)
    if candidate.startswith("+"):
        return 8 <= digits <= 15
    if _DATE.fullmatch(candidate.strip()) or _DATE.match(candidate):
        return False
    return 10 <= digits <= 11


def _builtin(name: str, pattern: str, **options: Any) -> Detector:
    return Detector(name, re.compile(pattern), **options)


# Order matters: secrets before e-mail and numbers, so a token's digits are not taken for a phone
# number; each replacement holds no digit or @, so no later detector matches inside it.
BUILTIN_DETECTORS: tuple[Detector, ...] = (
    _builtin(
        "jwt",
        r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
        hints=("eyJ",),
    ),
    _builtin("bearer", r"\b[Bb]earer\s+([A-Za-z0-9._~+/=-]{8,})", hints=("earer",), group=1),
    _builtin("anthropic_key", r"(?<![\w-])sk-ant-[A-Za-z0-9_-]{20,}", hints=("sk-ant-",)),
    _builtin("openai_key", r"(?<![\w-])sk-[A-Za-z0-9_-]{20,}", hints=("sk-",)),
    _builtin("aws_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", hints=("AKIA", "ASIA")),
    _builtin(
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,255})\b",
        hints=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    _builtin("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", hints=("xox",)),
    _builtin("google_key", r"\bAIza[0-9A-Za-z_-]{35}", hints=("AIza",)),
    _builtin(
        "email",
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}"
        r"[A-Za-z]{2,24}(?![A-Za-z0-9-])",
        hints=("@",),
    ),
    _builtin(
        "iban",
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
        hints=None,
        validate=is_iban,
    ),
    _builtin(
        "card", r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", hints=None, validate=is_card_number
    ),
    _builtin(
        "ipv6",
        r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])",
        hints=None,  # a colon is everywhere in prose; an address worth masking has a digit
        validate=is_ipv6,
    ),
    _builtin(
        "ipv4",
        r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
        r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\.?\d)",
        hints=None,
    ),
    _builtin(
        "phone",
        r"(?<![\w+.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}"
        r"(?!\w|[.-]\d)",
        hints=None,
        validate=is_phone_number,
    ),
)
BUILTIN_NAMES = tuple(detector.name for detector in BUILTIN_DETECTORS)


class PatternError(ValueError):
    """A custom pattern that cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class CustomPattern:
    name: str
    pattern: str


def compile_custom(pattern: CustomPattern) -> Detector:
    """A custom pattern as a detector, compiled by RE2 (linear-time matching). PatternError for
    a bad name, a pattern too long, one RE2 cannot compile (backreferences, lookarounds) or one
    that matches the empty string (it would mark every position)."""
    if not NAME_RE.fullmatch(pattern.name):
        raise PatternError(
            f"Pattern name {pattern.name!r}: use 1 to 40 lower-case letters, digits, - or _, "
            "starting with a letter."
        )
    if pattern.name in BUILTIN_NAMES:
        raise PatternError(f"Pattern name {pattern.name!r} is a built-in detector's name.")
    if not pattern.pattern or len(pattern.pattern) > MAX_PATTERN_CHARS:
        raise PatternError(
            f"Pattern {pattern.name!r}: give 1 to {MAX_PATTERN_CHARS} characters "
            f"(got {len(pattern.pattern)})."
        )
    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(pattern.pattern, options)
    except re2.error as exc:
        raise PatternError(
            f"Pattern {pattern.name!r} is not one RE2 accepts (no backreferences or "
            f"lookarounds): {exc}"
        ) from None
    if compiled.fullmatch("") is not None:
        raise PatternError(f"Pattern {pattern.name!r} matches the empty string.")
    return Detector(pattern.name, compiled)


def parse_custom_patterns(text: str) -> list[CustomPattern]:
    """`name: pattern` lines (blank lines skipped) as patterns, each checked by
    compile_custom(); PatternError naming the line for the first bad one."""
    patterns = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, pattern = line.partition(":")
        if not sep:
            raise PatternError(f"Line {number}: write `name: pattern`.")
        found = CustomPattern(name.strip(), pattern.strip())
        try:
            compile_custom(found)
        except PatternError as exc:
            raise PatternError(f"Line {number}: {exc}") from None
        patterns.append(found)
    if len(patterns) > MAX_CUSTOM_PATTERNS:
        raise PatternError(f"At most {MAX_CUSTOM_PATTERNS} custom patterns (got {len(patterns)}).")
    if len({p.name for p in patterns}) < len(patterns):
        raise PatternError("Each custom pattern needs its own name.")
    return patterns


@dataclass(frozen=True)
class Redactor:
    detectors: tuple[Detector, ...]
    # One search that every text a detector could match passes (a hint or a digit): most
    # strings of a span (names, roles, model ids, plain prose) pass none and cost one scan.
    # None when a custom pattern is in use, which may match anything.
    trigger: Any = field(init=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if any(d.hints == () for d in self.detectors):
            return
        hints = sorted({h for d in self.detectors for h in d.hints or ()})
        parts = [re.escape(h) for h in hints]
        if any(d.hints is None for d in self.detectors):
            parts.append(r"\d")
        if parts:
            object.__setattr__(self, "trigger", re.compile("|".join(parts)))

    def text(self, text: str) -> tuple[str, int]:
        """The text with every match replaced by its mark, and how many were replaced."""
        if self.trigger is not None and self.trigger.search(text) is None:
            return text, 0
        count = 0
        has_digit: bool | None = None  # searched once, for all the numeric detectors
        for detector in self.detectors:
            hints = detector.hints
            if hints is None:
                if has_digit is None:
                    has_digit = _HAS_DIGIT.search(text) is not None
                if not has_digit:
                    continue
            elif hints and not _holds_any(text, hints):
                continue
            text, found = _replace(detector, text)
            count += found
        return text, count

    def value(self, value: Any) -> tuple[Any, int]:
        """A JSON-shaped value with its strings redacted (dict keys are kept). Containers are
        copied only when something in them changed."""
        if isinstance(value, str):
            return self.text(value) if len(value) >= MIN_CHARS else (value, 0)
        if isinstance(value, dict):
            changed: dict[Any, Any] | None = None
            total = 0
            for key, item in value.items():
                redacted, count = self._item(item)
                if count:
                    changed = dict(value) if changed is None else changed
                    changed[key] = redacted
                    total += count
            return (changed, total) if changed is not None else (value, 0)
        if isinstance(value, list | tuple):
            items: list[Any] | None = None
            total = 0
            for i, item in enumerate(value):
                redacted, count = self._item(item)
                if count:
                    items = list(value) if items is None else items
                    items[i] = redacted
                    total += count
            return (type(value)(items), total) if items is not None else (value, 0)
        return value, 0

    def _item(self, item: Any) -> tuple[Any, int]:
        # Scalars and short strings (most attribute values) return without a call.
        if isinstance(item, str):
            return self.text(item) if len(item) >= MIN_CHARS else (item, 0)
        if isinstance(item, dict | list | tuple):
            return self.value(item)
        return item, 0


def _holds_any(text: str, hints: tuple[str, ...]) -> bool:
    # A loop, not any() over a generator, which cost a third of redaction's CPU on the bench.
    for hint in hints:  # noqa: SIM110
        if hint in text:
            return True
    return False


def _replace(detector: Detector, text: str) -> tuple[str, int]:
    parts: list[str] = []
    last, count = 0, 0
    for match in detector.pattern.finditer(text):
        if detector.validate is not None and not detector.validate(match.group(0)):
            continue
        start, end = match.span(detector.group)
        parts += [text[last:start], detector.mark]
        last, count = end, count + 1
    if not count:
        return text, 0
    parts.append(text[last:])
    return "".join(parts), count


@lru_cache(maxsize=256)
def redactor_for(builtins: tuple[str, ...], custom: tuple[CustomPattern, ...]) -> Redactor:
    """The redactor of a project's choice (cached: compiled once per configuration)."""
    chosen = tuple(d for d in BUILTIN_DETECTORS if d.name in builtins)
    return Redactor(chosen + tuple(compile_custom(pattern) for pattern in custom))


# The agent-written fields of each record type. Ids, names, times and numbers are not redacted:
# they key the rows (and an id that is personal data is for erasure, not masking).
REDACTED_FIELDS: dict[type, tuple[str, ...]] = {
    SpanRecord: (
        "prompt",
        "completion",
        "params",
        "returns",
        "attributes",
        "error_message",
        "stack_trace",
    ),
    TranscriptRecord: ("text",),
    AgentMessageRecord: ("content", "metadata", "error_message"),
    SessionRecord: ("user_query", "end_state_reason", "metadata"),
    AgentRecord: ("init_params", "reason"),
    MetricRecord: ("attributes",),
    WorkflowRecord: ("result_summary", "metadata"),
    StepRecord: ("result_summary", "error_message"),
    TestResultRecord: ("error_message", "error_trace"),
}


def redact_record(record: Record, redactor: Redactor) -> tuple[Record, int]:
    """The record with its agent-written fields redacted; a span also counts its redacted
    values in its COUNT_ATTRIBUTE. Returns the record itself when nothing matched."""
    names = REDACTED_FIELDS.get(type(record), ())
    changes: dict[str, Any] = {}
    total = 0
    for name in names:
        value = getattr(record, name)
        if name == "metadata" and isinstance(record, SessionRecord) and value:
            kept = {k: v for k, v in value.items() if k in USER_ID_KEYS}
            redacted, count = redactor.value({k: v for k, v in value.items() if k not in kept})
            redacted = {**redacted, **kept}
        else:
            redacted, count = redactor.value(value)
        if count:
            changes[name] = redacted
            total += count
    if not total:
        return record, 0
    if isinstance(record, SpanRecord):
        attributes = changes.get("attributes", record.attributes)
        changes["attributes"] = {**attributes, COUNT_ATTRIBUTE: total}
    return replace(record, **changes), total


def redact_records(
    records: Sequence[tuple[int, Record]], redactor: Redactor
) -> list[tuple[int, Record]]:
    """Every record redacted (batch indexes kept)."""
    return [(index, redact_record(record, redactor)[0]) for index, record in records]


def redact_raw(values: Iterable[Any], redactor: Redactor) -> list[Any]:
    """Raw values (what a refused record held) redacted, for the ingest problems list."""
    return [redactor.value(value)[0] for value in values]
