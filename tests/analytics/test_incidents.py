"""Grouping anomaly flags into incidents (analytics/incidents.py), without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from analytics.incidents import FlagFacts, group_incidents, is_closed, top_entity

T0 = datetime(2026, 11, 17, 9, tzinfo=UTC)
H = timedelta(hours=1)


def flag(
    key: int,
    subject: str,
    metric: str = "error_rate",
    *,
    start: int = 0,
    hours: int = 2,
    top: str = "",
    score: float = 6.0,
    incident: int | None = None,
    examples: tuple[int, ...] = (),
) -> FlagFacts:
    subject_type, _, name = subject.partition("=")
    return FlagFacts(
        key=key,
        subject_type=subject_type,
        subject=name,
        metric=metric,
        window_start=T0 + start * H,
        window_end=T0 + (start + hours) * H,
        observed=0.5,
        baseline=0.015,
        score=score,
        top_dimension=top,
        explanation=f"error rate of {subject_type} {name} was 50 %",
        example_session_ids=examples,
        incident_key=incident,
    )


def test_a_tool_failing_and_its_agent_moving_with_it_are_one_incident_led_by_the_tool() -> None:
    flags = [
        flag(1, "tool=refund_payment", start=0, hours=8, top="agent=billing", score=9),
        flag(2, "agent=billing", start=1, hours=6, top="tool=refund_payment", score=12),
    ]

    [incident] = group_incidents(flags)

    assert incident.flag_keys == (1, 2)
    assert (incident.window_start, incident.window_end) == (T0, T0 + 8 * H)
    assert incident.top_dimension == "tool=refund_payment"
    assert (incident.subject_type, incident.subject) == ("tool", "refund_payment")
    assert incident.score == 12
    assert "with it: error rate of agent billing" in incident.explanation
    assert "from Tue 17 Nov 09:00 to 17:00 UTC (8 h)" in incident.explanation


def test_hours_below_the_threshold_in_the_middle_do_not_split_an_incident() -> None:
    flags = [
        flag(1, "model=gpt-4o", "tokens_per_call", start=0, hours=5),
        flag(2, "model=gpt-4o", "tokens_per_call", start=8, hours=6),
        flag(3, "project=", "cost_per_session", start=2, hours=12, top="model=gpt-4o"),
    ]

    [incident] = group_incidents(flags)

    assert incident.flag_keys == (1, 2, 3)
    assert incident.top_dimension == "model=gpt-4o"
    # The lead's own later stretch is part of the window, not something that moved with it.
    assert incident.explanation.endswith("; with it: cost per session of the project")


def test_an_incident_sentence_names_its_top_dimension_when_the_lead_flag_does_not() -> None:
    flags = [
        flag(1, "agent=billing", top="model=claude", score=5),
        flag(2, "agent=shipping", top="model=claude", score=5),
        flag(3, "agent=billing", score=9),
    ]

    [incident] = group_incidents(flags)

    assert incident.top_dimension == "model=claude"
    assert incident.subject == "billing"
    assert "(2 h); most of its flags name model claude; with it: " in incident.explanation


def test_an_incident_ending_at_midnight_says_the_next_day() -> None:
    [incident] = group_incidents([flag(1, "tool=kb_search", "latency_p95", start=9, hours=6)])

    assert "from Tue 17 Nov 18:00 to Wed 18 Nov 00:00 UTC (6 h)" in incident.explanation


def test_a_project_cost_flag_naming_no_model_joins_the_token_flags_beside_it() -> None:
    flags = [
        flag(1, "model=gpt-4o", "tokens_per_call", hours=10),
        flag(2, "project=", "cost_per_session", start=3, hours=4),
    ]

    assert [g.flag_keys for g in group_incidents(flags)] == [(1, 2)]


def test_unrelated_subjects_at_the_same_time_are_separate_incidents() -> None:
    flags = [
        flag(1, "tool=kb_search", "latency_p95", hours=6),
        flag(2, "tool=refund_payment", hours=6),
    ]

    assert [g.flag_keys for g in group_incidents(flags)] == [(1,), (2,)]


def test_the_same_subject_a_day_later_is_another_incident() -> None:
    flags = [flag(1, "tool=kb_search", "latency_p95"), flag(2, "tool=kb_search", start=24)]

    assert [g.flag_keys for g in group_incidents(flags)] == [(1,), (2,)]


def test_an_edge_flag_groups_with_a_flag_of_either_agent() -> None:
    flags = [
        flag(1, "edge=billing \u2192 shipping", "message_failure_rate"),
        flag(2, "agent=shipping", "dead_letter_growth", start=1),
    ]

    assert [g.flag_keys for g in group_incidents(flags)] == [(1, 2)]


def test_a_group_continues_the_incident_most_of_its_flags_were_in() -> None:
    flags = [
        flag(1, "tool=kb_search", "latency_p95", incident=7),
        flag(2, "tool=kb_search", "latency_p95", start=3, incident=7),
        flag(3, "agent=tech_support", "latency_p95", start=1, top="tool=kb_search", incident=9),
        flag(4, "tool=kb_search", "latency_p95", start=5),  # new this refresh
    ]

    [incident] = group_incidents(flags)

    assert incident.incident_key == 7
    assert incident.window_end == T0 + 7 * H


def test_an_incident_split_in_two_continues_in_its_larger_part_only() -> None:
    flags = [
        flag(1, "tool=a", incident=5),
        flag(2, "tool=a", start=1, incident=5),
        flag(3, "tool=b", start=1, incident=5),
    ]

    groups = {g.flag_keys: g.incident_key for g in group_incidents(flags)}

    assert groups == {(1, 2): 5, (3,): None}


def test_examples_come_from_the_highest_scoring_flags_first_without_repeats() -> None:
    flags = [
        flag(1, "tool=a", score=5, examples=(10, 11)),
        flag(2, "agent=x", top="tool=a", score=9, examples=(11, 12)),
    ]

    [incident] = group_incidents(flags)

    assert incident.example_session_ids == (11, 12, 10)


def test_ties_go_to_the_most_specific_subject() -> None:
    flags = [
        flag(1, "agent=billing", top="model=claude"),
        flag(2, "model=claude", top="agent=billing"),
    ]

    assert top_entity(flags) == "model=claude"


def test_an_incident_closes_once_quiet_for_three_hours() -> None:
    assert not is_closed(T0, now=T0 + 2 * H)
    assert is_closed(T0, now=T0 + 3 * H)


def test_no_flags_make_no_incidents() -> None:
    assert group_incidents([]) == []
