"""Incidents: the anomaly flags of one cause grouped into one, so that a tool failing for a day
is one incident (with its agent, model and project moving alongside) rather than a flag per
subject and per stretch of hours. Pure: flags in, groups out.

Two flags belong to one incident when their windows overlap or lie within `gap` of each other
and they name a common subject: a flag's own subject, its top dimension, or for an edge its two
agents. A project-wide cost flag with no top dimension joins the token flags beside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from analytics.anomalies import EDGE_ARROW, METRICS

# Flagged stretches of one cause this far apart are still one incident (a dip below the
# threshold in the middle of a day-long incident must not split it).
GROUP_GAP = timedelta(hours=4)
# An incident closes once this long has passed since its last flagged hour with nothing new.
QUIET_TO_CLOSE = timedelta(hours=3)
MAX_EXAMPLES = 5
# When several subjects are named equally often, the most specific is the likelier cause.
SPECIFICITY = {"tool": 0, "model": 1, "edge": 2, "agent": 3, "receiver": 3, "project": 4}
COST_METRICS = frozenset({"cost_per_session", "tokens_per_call"})


@dataclass(frozen=True)
class FlagFacts:
    """What grouping needs of a stored flag (analytics.models.Anomaly)."""

    key: int
    subject_type: str
    subject: str
    metric: str
    window_start: datetime
    window_end: datetime
    observed: float
    baseline: float
    score: float
    top_dimension: str
    explanation: str
    example_session_ids: tuple[int, ...] = ()
    incident_key: int | None = None  # the incident it belonged to at the last grouping


@dataclass(frozen=True)
class IncidentGroup:
    """One incident: its flags, window, lead flag (whose numbers it shows) and top dimension.
    incident_key: the existing incident it continues (None: a new one)."""

    flag_keys: tuple[int, ...]
    window_start: datetime
    window_end: datetime
    lead_key: int
    subject_type: str
    subject: str
    metric: str
    observed: float
    baseline: float
    score: float
    top_dimension: str
    example_session_ids: tuple[int, ...]
    explanation: str
    incident_key: int | None


def flag_entities(flag: FlagFacts) -> frozenset[str]:
    """The subjects a flag names, as "type=name" ("project=" for the project)."""
    entities = {f"{flag.subject_type}={flag.subject}"}
    if flag.subject_type == "edge":
        sender, _, receiver = flag.subject.partition(EDGE_ARROW)
        entities |= {f"agent={sender}", f"agent={receiver}"}
    if flag.top_dimension:
        column, _, value = flag.top_dimension.partition("=")
        entities.add(f"{'agent' if column == 'receiver' else column}={value}")
    return frozenset(entities)


def _near(a: FlagFacts, b: FlagFacts, gap: timedelta) -> bool:
    return a.window_start <= b.window_end + gap and b.window_start <= a.window_end + gap


def _related(a: FlagFacts, b: FlagFacts) -> bool:
    if flag_entities(a) & flag_entities(b):
        return True
    # A project's cost rises with the tokens of whichever model it named, or of any beside it.
    bare = [f for f in (a, b) if f.subject_type == "project" and not f.top_dimension]
    return bool(bare) and a.metric in COST_METRICS and b.metric in COST_METRICS


def group_incidents(
    flags: Sequence[FlagFacts], *, gap: timedelta = GROUP_GAP
) -> list[IncidentGroup]:
    """The incidents the flags make, ordered by start. Deterministic for a set of flags; each
    group continues the existing incident most of its flags belonged to (ties: the oldest)."""
    ordered = sorted(flags, key=lambda f: (f.window_start, f.key))
    parent = list(range(len(ordered)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(ordered):
        for j in range(i + 1, len(ordered)):
            b = ordered[j]
            if b.window_start > a.window_end + gap:
                break  # ordered by start: nothing later can be near a
            if _related(a, b):
                parent[root(j)] = root(i)
    members: dict[int, list[FlagFacts]] = {}
    for i, flag in enumerate(ordered):
        members.setdefault(root(i), []).append(flag)
    groups = [_group(group) for group in members.values()]
    return _unique_keys(sorted(groups, key=lambda g: (g.window_start, g.lead_key)))


def _unique_keys(groups: list[IncidentGroup]) -> list[IncidentGroup]:
    """An existing incident split in two continues in the larger part only."""
    seen: set[int] = set()
    out = []
    for group in sorted(groups, key=lambda g: -len(g.flag_keys)):
        if group.incident_key is not None and group.incident_key in seen:
            group = _replace_key(group, None)
        if group.incident_key is not None:
            seen.add(group.incident_key)
        out.append(group)
    return sorted(out, key=lambda g: (g.window_start, g.lead_key))


def _replace_key(group: IncidentGroup, key: int | None) -> IncidentGroup:
    from dataclasses import replace

    return replace(group, incident_key=key)


def top_entity(flags: Sequence[FlagFacts]) -> str:
    """The subject most of the flags name; ties go to the most specific kind, then the flag
    with the highest score."""
    counts = Counter(entity for flag in flags for entity in flag_entities(flag))
    best_score = {
        entity: max(f.score for f in flags if entity in flag_entities(f)) for entity in counts
    }
    return min(
        counts,
        key=lambda e: (-counts[e], SPECIFICITY.get(e.partition("=")[0], 9), -best_score[e], e),
    )


def _group(flags: list[FlagFacts]) -> IncidentGroup:
    top = top_entity(flags)
    own = [f for f in flags if f"{f.subject_type}={f.subject}" == top]
    lead = max(own or flags, key=lambda f: (f.score, -f.key))
    examples: list[int] = []
    for flag in sorted(flags, key=lambda f: -f.score):
        examples += [pk for pk in flag.example_session_ids if pk not in examples]
    previous = Counter(f.incident_key for f in flags if f.incident_key is not None)
    key = min(previous, key=lambda k: (-previous[k], k)) if previous else None
    start = min(f.window_start for f in flags)
    end = max(f.window_end for f in flags)
    return IncidentGroup(
        flag_keys=tuple(sorted(f.key for f in flags)),
        window_start=start,
        window_end=end,
        lead_key=lead.key,
        subject_type=lead.subject_type,
        subject=lead.subject,
        metric=lead.metric,
        observed=lead.observed,
        baseline=lead.baseline,
        score=max(f.score for f in flags),
        top_dimension="" if top == "project=" else top,
        example_session_ids=tuple(examples[:MAX_EXAMPLES]),
        explanation=incident_explanation(
            lead, [f for f in flags if f is not lead], start, end, top=top
        ),
        incident_key=key,
    )


def incident_explanation(
    lead: FlagFacts, others: Sequence[FlagFacts], start: datetime, end: datetime, *, top: str = ""
) -> str:
    """The lead flag's sentence, the window, the top dimension when the lead's sentence does not
    name it, and what else moved with it: "...; from Tue 17 Nov 09:00 to 17:00 UTC (8 h); with
    it: error rate of agent billing". top: the incident's top entity ("model=gpt-4o")."""
    hours = round((end - start) / timedelta(hours=1))
    until = f"{end:%H:%M}" if start.date() == end.date() else f"{end:%a %d %b %H:%M}"
    sentence = f"{lead.explanation}; from {start:%a %d %b %H:%M} to {until} UTC ({hours} h)"
    named = {f"{lead.subject_type}={lead.subject}", lead.top_dimension, "project="}
    if top and top not in named:
        column, _, value = top.partition("=")
        sentence += f"; most of its flags name {column} {value}"
    # Another stretch of the lead's own series is not news.
    moved = [_series_name(lead)]
    for flag in sorted(others, key=lambda f: -f.score):
        if _series_name(flag) not in moved:
            moved.append(_series_name(flag))
    moved = moved[1:]
    if moved:
        sentence += "; with it: " + ", ".join(moved[:6])
        if len(moved) > 6:
            sentence += f" and {len(moved) - 6} more"
    return sentence


def _series_name(flag: FlagFacts) -> str:
    """ "error rate of agent billing", "cost per session of the project"."""
    name = (
        "the project" if flag.subject_type == "project" else f"{flag.subject_type} {flag.subject}"
    )
    return f"{METRICS.get(flag.metric, flag.metric)} of {name}"


def is_closed(window_end: datetime, *, now: datetime, quiet: timedelta = QUIET_TO_CLOSE) -> bool:
    """An incident is over once `quiet` has passed since its last flagged hour."""
    return window_end <= now - quiet
