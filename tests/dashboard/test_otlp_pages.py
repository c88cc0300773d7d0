"""What OpenTelemetry and agentops data adds to the pages: raw attributes, detailed kinds,
estimated costs, log lines, rounds of multi-trace sessions and the SDK's `?trace_id=` link."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ingest.models import Session, Span, SpanPayload, TraceLink
from tests.builders import make_project, make_session, make_user
from tests.dashboard.conftest import detail_url

pytestmark = pytest.mark.django_db

IMG = "<img src=x onerror=alert(1)>"
IMG_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
SESSIONS = reverse("dashboard:session-list")
T1, T2, T3 = "1" * 32, "2" * 32, "3" * 32
STREAM_WITH_LOG = (
    ("user", "Build it"),
    ("log", "$ pip install ok"),
    ("llm", "calling gpt-4o"),
    ("assistant", "Built."),
)


def panel(client: Client, span: Span) -> str:
    url = reverse("dashboard:span-detail", args=[span.session_id, span.pk])
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.content[:2000]
    return response.content.decode()


def set_attributes(span: Span, attributes: dict[str, Any], unmapped: Sequence[str] = ()) -> None:
    SpanPayload.objects.filter(span=span).update(
        attributes=attributes, unmapped_keys=list(unmapped)
    )


# --- Span detail: attributes, detailed kind, estimated cost, trace id --------------------------


def test_unmapped_attributes_are_listed_escaped_and_collapsed_with_a_count(
    logged_in: Client, project: Any
) -> None:
    span = make_session(project, spans=1).spans.get()
    attributes = {
        "gen_ai.system": "openai",
        "vendor.note": IMG,
        "vendor.limits": {"rpm": [1, 2]},
    }
    set_attributes(span, attributes, ["vendor.note", "vendor.limits"])

    html = panel(logged_in, span)

    assert IMG not in html
    assert (
        '<details class="payload unmapped"><summary>Unmapped attributes '
        '<span class="count">2</span></summary>'
    ) in html
    assert f'<dt class="mono">vendor.note</dt><dd><pre class="json">{IMG_ESCAPED}</pre>' in html
    assert "{\n  &quot;rpm&quot;: [\n    1,\n    2\n  ]\n}" in html
    assert (
        '<details class="payload all-attributes"><summary>All attributes '
        '<span class="count">3</span>'
    ) in html
    assert "&quot;gen_ai.system&quot;: &quot;openai&quot;" in html


def test_a_span_without_unmapped_attributes_has_no_such_section(
    logged_in: Client, project: Any
) -> None:
    span = make_session(project, spans=1).spans.get()

    html = panel(logged_in, span)

    assert "Unmapped attributes" not in html
    assert "All attributes" in html  # the builder's {"span.index": 0}


def test_the_detailed_kind_shows_in_the_panel_the_tree_and_the_chart_hover(
    logged_in: Client, project: Any
) -> None:
    session = make_session(project, spans=2, llm_spans=1)
    llm, tool = session.spans.order_by("started_at")
    set_attributes(tool, {"observatory.kind": "guardrail"})
    set_attributes(llm, {"observatory.kind": "llm"})  # says nothing more than the kind

    page = logged_in.get(detail_url(session))

    html = page.content.decode()
    assert html.count('class="detailed-kind"') == 1
    assert '<span class="detailed-kind" title="detailed kind">guardrail</span>' in html
    rows = {row.span_id: row for row in page.context["rows"]}
    assert (rows["span-0"].detailed_kind, rows["span-1"].detailed_kind) == ("", "guardrail")
    hover = [c for trace in page.context["waterfall"]["data"] for c in trace["customdata"]]
    assert [c[2] for c in hover if c[0] == tool.pk] == ["tool (guardrail) · ok"]
    assert 'class="badge detailed-kind"' in panel(logged_in, tool)
    assert "detailed-kind" not in panel(logged_in, llm)


def test_an_estimated_cost_says_so_with_a_tooltip_and_a_sent_cost_does_not(
    logged_in: Client, project: Any
) -> None:
    session = make_session(project, spans=2, llm_spans=2)
    estimated, sent = session.spans.order_by("started_at")
    Span.objects.filter(pk=estimated.pk).update(is_cost_estimated=True)

    assert (
        '$0.0010 <span class="estimated" title="computed from the model price table">'
        "estimated</span>"
    ) in panel(logged_in, estimated)
    assert "estimated" not in panel(logged_in, sent)


def test_the_panel_shows_the_trace_id_when_there_is_one(logged_in: Client, project: Any) -> None:
    session = make_session(project, spans=2)
    traced, plain = session.spans.order_by("started_at")
    Span.objects.filter(pk=traced.pk).update(trace_id=T1)

    assert f'<dt>Trace id</dt><dd class="mono">{T1}</dd>' in panel(logged_in, traced)
    assert "Trace id" not in panel(logged_in, plain)


# --- Chat stream: log lines ---------------------------------------------------------------------


def test_log_lines_are_monospace_status_lines_shown_by_default(
    logged_in: Client, project: Any
) -> None:
    session = make_session(project, transcript=STREAM_WITH_LOG)

    response = logged_in.get(detail_url(session))

    html = response.content.decode()
    assert '<li class="status-line role-log"' in html
    assert "$ pip install ok" in html
    toggles = {t["role"]: t for t in response.context["stream"]["toggles"]}
    assert list(toggles) == ["agent", "llm", "tool", "log"]
    assert toggles["log"]["shown"] and toggles["log"]["query"] == "hide=log"
    assert 'data-role-toggle="log"' in html


def test_the_log_toggle_hides_log_lines_on_the_server_and_in_the_poll(
    logged_in: Client, project: Any
) -> None:
    session = make_session(project, end_state="running", transcript=STREAM_WITH_LOG)

    response = logged_in.get(detail_url(session), {"hide": "log"})
    stream = logged_in.get(
        reverse("dashboard:session-stream", args=[session.pk]), {"after": "0", "hide": "log"}
    )

    roles = [line.role for line in response.context["stream"]["lines"]]
    assert roles == ["user", "llm", "assistant"]
    toggles = {t["role"]: t for t in response.context["stream"]["toggles"]}
    assert not toggles["log"]["shown"] and toggles["log"]["query"] == ""
    assert "pip install" not in response.content.decode()
    assert "hide=log" in response.context["stream"]["poll_url"]
    assert "pip install" not in stream.content.decode()
    assert "calling gpt-4o" in stream.content.decode()


# --- Rounds -------------------------------------------------------------------------------------


def three_rounds(project: Any, **extra: Any) -> Session:
    """Rounds by round_index, then first span start: T2 (index 0, +2 s), T3 (index 0, +4 s) and
    T1 (no index) last, although T1's spans come first. T3 has no messages; its last span fails."""
    session = make_session(
        project,
        spans=6,
        failed=1,
        trace_ids=(T1, T2, T3),
        transcript=(
            ("user", "First question", T1),
            ("assistant", "First answer", T1),
            ("user", "Second question", T2),
            ("agent", "thinking", T2),
            ("assistant", "Draft answer", T2),
            ("assistant", f"Second answer {IMG}", T2),
            ("user", "no round", ""),
        ),
        **extra,
    )
    TraceLink.objects.filter(trace_id=T1).update(round_index=None)
    TraceLink.objects.filter(trace_id__in=[T2, T3]).update(round_index=0)
    return session


def test_the_rounds_panel_lists_rounds_in_order_with_their_messages(
    logged_in: Client, project: Any
) -> None:
    session = three_rounds(project)

    response = logged_in.get(detail_url(session))

    rounds = response.context["rounds"]
    assert [(r.number, r.trace_id) for r in rounds] == [(1, T2), (2, T3), (3, T1)]
    assert [(r.span_count, r.error_count) for r in rounds] == [(2, 0), (2, 1), (2, 0)]
    assert [r.duration_ms for r in rounds] == [1500.0, 1500.0, 1500.0]
    assert [(r.user_text, r.reply_text) for r in rounds] == [
        ("Second question", f"Second answer {IMG}"),
        ("", ""),
        ("First question", "First answer"),
    ]
    html = response.content.decode()
    assert 'id="rounds"' in html
    assert f'href="?trace={T2}#trace"' in html and ">22222222</span>" in html
    assert IMG not in html and f"Second answer {IMG_ESCAPED}" in html
    assert html.index("Second question") < html.index("First question")


def test_a_round_link_filters_the_waterfall_to_its_trace_and_the_toggles_keep_it(
    logged_in: Client, project: Any
) -> None:
    session = three_rounds(project)

    response = logged_in.get(detail_url(session), {"trace": T2.upper(), "hide": "llm"})

    assert [row.span_id for row in response.context["rows"]] == ["span-2", "span-3"]
    assert response.context["rows"][0].start_ms == 0  # timed from the round's start
    assert response.context["selected_round"].number == 1
    toggles = {t["role"]: t for t in response.context["stream"]["toggles"]}
    assert toggles["llm"]["query"] == f"trace={T2}"
    html = response.content.decode()
    assert 'class="round selected"' in html
    assert 'href="?hide=llm#trace"' in html  # "Show all rounds" keeps the stream filter
    assert len(response.context["stream"]["lines"]) == 7  # the stream is not filtered


def test_a_trace_without_spans_in_this_session_shows_an_empty_waterfall(
    logged_in: Client, project: Any
) -> None:
    session = three_rounds(project)

    response = logged_in.get(detail_url(session), {"trace": "f" * 32})

    assert response.context["rows"] == []
    assert "No spans recorded for this trace." in response.content.decode()


def test_a_single_trace_session_has_no_rounds_panel(logged_in: Client, project: Any) -> None:
    session = make_session(project, spans=2)
    Span.objects.filter(session=session).update(trace_id=T1)

    response = logged_in.get(detail_url(session))

    assert response.context["rounds"] == []
    assert 'id="rounds"' not in response.content.decode()


@pytest.mark.parametrize("count", [2, 8])
def test_the_rounds_panel_runs_the_same_queries_for_few_and_many_rounds(
    logged_in: Client, project: Any, django_assert_num_queries: Any, count: int
) -> None:
    traces = [f"{i:032x}" for i in range(1, count + 1)]
    session = make_session(
        project,
        spans=2 * count,
        trace_ids=traces,
        transcript=[(role, f"{role} {t}", t) for t in traces for role in ("user", "assistant")],
    )
    logged_in.get(detail_url(session))

    # auth session, user, session, projects, stream, agents, children, detector flags,
    # anomalies naming the session, scores, the user's role (may they score or delete), trace
    # links, round span counts, spans (no parent to look up)
    with django_assert_num_queries(14):
        response = logged_in.get(detail_url(session), {"trace": traces[-1]})

    assert [r.reply_text for r in response.context["rounds"]] == [f"assistant {t}" for t in traces]
    assert len(response.context["rows"]) == 2


# --- /sessions/?trace_id= (the link the agentops SDK prints) ----------------------------------


def test_a_trace_id_that_is_a_sessions_id_redirects_to_that_session(
    logged_in: Client, project: Any
) -> None:
    session = make_session(project, external_id=T1)

    response = logged_in.get(SESSIONS, {"trace_id": T1.upper()})

    assert response.status_code == 302
    assert response["Location"] == detail_url(session)


def test_a_trace_id_of_a_later_round_redirects_to_the_session_it_belongs_to(
    logged_in: Client, user: Any
) -> None:
    other_project, _ = make_project(name="Beta", user=user)
    session = make_session(other_project, external_id="conversation-7", trace_ids=(T1, T2))

    response = logged_in.get(SESSIONS, {"trace_id": T2})

    assert response.status_code == 302
    assert response["Location"] == detail_url(session)


def test_an_unknown_trace_id_shows_the_list_with_a_message(logged_in: Client, project: Any) -> None:
    make_session(project, name="unrelated")

    response = logged_in.get(SESSIONS, {"trace_id": T3})

    assert response.status_code == 200
    html = response.content.decode()
    assert f"No session for trace {T3}." in html
    assert [s.name for s in response.context["sessions"]] == ["unrelated"]
    assert not response.context["is_filtered"]
    assert "trace_id" not in response.context["export_url"]


def test_a_trace_id_in_another_users_project_is_not_found(logged_in: Client) -> None:
    theirs, _ = make_project(name="Theirs")
    make_session(theirs, external_id=T1)
    make_session(theirs, external_id="theirs-multi", trace_ids=(T2,))

    for trace_id in (T1, T2):
        response = logged_in.get(SESSIONS, {"trace_id": trace_id})

        assert response.status_code == 200
        assert f"No session for trace {trace_id}." in response.content.decode()


def test_a_trace_id_link_needs_a_login_and_comes_back_after_it(
    client: Client, project: Any
) -> None:
    make_session(project, external_id=T1)

    response = client.get(SESSIONS, {"trace_id": T1})

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/sessions/%3Ftrace_id%3D{T1}"


def test_a_hostile_trace_id_is_shown_as_text(logged_in: Client) -> None:
    response = logged_in.get(SESSIONS, {"trace_id": IMG})

    html = response.content.decode()
    assert IMG not in html
    assert f"No session for trace {IMG_ESCAPED}." in html


def test_a_trace_id_for_a_user_without_projects_shows_how_to_get_one(client: Client) -> None:
    client.force_login(make_user(username="lonely"))

    response = client.get(SESSIONS, {"trace_id": T1})

    assert response.status_code == 200
    assert b"No project yet" in response.content
