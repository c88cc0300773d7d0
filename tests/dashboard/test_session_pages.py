"""A session's page through Django's test client: metadata, the waterfall and its pages, the
stream, role toggles, the span panel, escaping and queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from ingest.models import Session, Span, TranscriptLine
from tests.builders import T0, make_session
from tests.dashboard.conftest import ESCAPED, SCRIPT, SESSIONS, detail_url, span_url, stream_url

pytestmark = pytest.mark.django_db

STATUS_AND_MESSAGES = (
    ("user", "Who won?"),
    ("agent", "planner started"),
    ("llm", "calling gpt-4o"),
    ("tool", "search(who won)"),
    ("assistant", "Team A won."),
)


def test_the_session_detail_shows_metadata_agents_spans_and_the_stream(
    logged_in: Client, project: Any
) -> None:
    make_session(project, external_id="mum", name="mum")
    session = make_session(
        project,
        name="arena round",
        user_query="Who won the match?",
        parent="mum",
        group_key="batch-7",
        tags=["demo"],
        metadata={"env": "staging"},
        agents=("planner", "critic"),
        transcript=STATUS_AND_MESSAGES,
        end_state="fail",
    )
    Session.objects.filter(pk=session.pk).update(end_state_reason="Ran out of budget")

    response = logged_in.get(detail_url(session))

    html = response.content.decode()
    for text in ("arena round", "Who won the match?", "Ran out of budget", "batch-7", "critic"):
        assert text in html
    assert "&quot;env&quot;: &quot;staging&quot;" in html
    assert 'href="/sessions/?group_key=batch-7"' in html
    assert [row.name for row in response.context["rows"]] == ["openai.chat", "step-1", "step-2"]
    assert 'id="chart-waterfall"' in html and 'data-span-url="' in html
    assert [line.text for line in response.context["stream"]["lines"]] == [
        text for _, text in STATUS_AND_MESSAGES
    ]
    assert 'class="status-line role-llm"' in html and 'class="chat-msg role-user"' in html
    assert "hx-trigger" not in html  # the session has ended: no polling


def test_role_toggles_hide_status_lines_on_the_server_and_links_reproduce_the_view(
    logged_in: Client, project: Any
) -> None:
    session = make_session(project, transcript=STATUS_AND_MESSAGES)

    response = logged_in.get(detail_url(session), {"hide": "llm,tool"})

    roles = [line.role for line in response.context["stream"]["lines"]]
    assert roles == ["user", "agent", "assistant"]
    toggles = {t["role"]: t for t in response.context["stream"]["toggles"]}
    assert (toggles["agent"]["shown"], toggles["llm"]["shown"]) == (True, False)
    assert toggles["llm"]["query"] == "hide=tool"
    assert toggles["agent"]["query"] == "hide=agent,llm,tool"
    assert 'href="?hide=tool#stream"' in response.content.decode()
    assert "calling gpt-4o" not in response.content.decode()


def test_a_running_sessions_stream_polls_for_lines_after_the_last_one_with_its_filter(
    logged_in: Client, project: Any
) -> None:
    session = make_session(project, end_state="running", transcript=STATUS_AND_MESSAGES)
    last = TranscriptLine.objects.filter(session=session).latest("pk")

    html = logged_in.get(detail_url(session), {"hide": "llm"}).content.decode()

    assert 'hx-trigger="every 3s"' in html and 'hx-swap="beforeend"' in html
    assert f'hx-get="{stream_url(session)}?after={last.pk}&amp;hide=llm"' in html


def test_the_stream_partial_returns_only_newer_lines_and_a_fresh_poller(
    logged_in: Client, project: Any
) -> None:
    session = make_session(project, end_state="running", transcript=STATUS_AND_MESSAGES)
    last = TranscriptLine.objects.filter(session=session).latest("pk")
    newer = [
        TranscriptLine.objects.create(
            project=project,
            session=session,
            client_id=f"new-{role}",
            role=role,
            text=f"new {role} line",
            at=T0 + timedelta(minutes=5),
        )
        for role in ("llm", "assistant")
    ]

    response = logged_in.get(stream_url(session), {"after": str(last.pk), "hide": "llm"})

    html = response.content.decode()
    assert html.count("<li ") == 1 and "new assistant line" in html
    assert "Team A won." not in html and "new llm line" not in html
    assert "<html" not in html
    assert 'id="stream-poller" hx-get=' in html and 'hx-swap-oob="true"' in html
    assert f"after={newer[1].pk}&amp;hide=llm" in html


def test_the_stream_partial_stops_polling_once_the_session_has_ended(
    logged_in: Client, project: Any
) -> None:
    session = make_session(project, end_state="success")

    html = logged_in.get(stream_url(session), {"after": "0"}).content.decode()

    assert '<div id="stream-poller" hx-swap-oob="true"></div>' in html
    assert "every 3s" not in html


def test_agent_text_is_escaped_on_every_page_that_shows_it(logged_in: Client, project: Any) -> None:
    session = make_session(
        project,
        name=SCRIPT,
        transcript=(("assistant", SCRIPT), ("tool", SCRIPT)),
        tags=[SCRIPT],
        agents=(SCRIPT,),
        metadata={"note": SCRIPT},
    )
    span = session.spans.earliest("pk")
    Span.objects.filter(pk=span.pk).update(name=SCRIPT, error_message=SCRIPT)
    span.payload.params = {"q": SCRIPT}
    span.payload.stack_trace = SCRIPT
    span.payload.save()

    pages = [
        logged_in.get(SESSIONS),
        logged_in.get(detail_url(session)),
        logged_in.get(span_url(span), headers={"HX-Request": "true"}),
        logged_in.get(stream_url(session), {"after": "0"}),
    ]

    for response in pages:
        html = response.content.decode()
        assert response.status_code == 200
        assert SCRIPT not in html
        assert ESCAPED in html
    assert pages[1].context["waterfall"]["layout"]["annotations"][0]["text"] == ESCAPED


@pytest.mark.parametrize("spans", [2, 30])
def test_the_session_detail_runs_the_same_queries_for_few_and_many_spans(
    logged_in: Client, project: Any, django_assert_num_queries: Any, spans: int
) -> None:
    make_session(project, external_id="parent", spans=0)
    session = make_session(
        project,
        spans=spans,
        parent="parent",
        agents=("a", "b", "c"),
        transcript=STATUS_AND_MESSAGES * (spans // 2),
    )
    make_session(project, parent=session.external_id, spans=0)
    logged_in.get(detail_url(session))

    # auth session, user, session, projects, stream, agents, parent, children, detector flags,
    # anomalies naming the session, scores, the user's role (may they score or delete), trace
    # links, spans
    with django_assert_num_queries(14):
        response = logged_in.get(detail_url(session))

    assert len(response.context["rows"]) == spans


# --- Span detail ----------------------------------------------------------------------------------


def test_the_span_panel_shows_the_payload_pretty_printed(logged_in: Client, project: Any) -> None:
    session = make_session(project, spans=2, llm_spans=1, failed=1)
    llm, failed = session.spans.order_by("started_at")

    panel = logged_in.get(span_url(llm), headers={"HX-Request": "true"}).content.decode()
    error = logged_in.get(span_url(failed), headers={"HX-Request": "true"}).content.decode()
    page = logged_in.get(span_url(llm))

    assert panel.lstrip().startswith('<article class="span-panel"')
    assert "gpt-4o" in panel and "100 in / 20 out" in panel and "$0.0010" in panel
    assert "[\n  {\n    &quot;role&quot;: &quot;user&quot;," in panel  # the prompt, indented
    assert "Completion" in panel and "hello" in panel
    assert "ValueError" in error and "it broke" in error and "Traceback: it broke" in error
    assert b"<html" in page.content and b"Sessions</a>" in page.content


def test_a_long_session_shows_its_spans_a_page_at_a_time(logged_in: Client, project: Any) -> None:
    """600 spans: pages of 250 by start time, linked both ways; the last page holds the rest."""
    session = make_session(project, spans=600, llm_spans=0, transcript=())

    first = logged_in.get(detail_url(session))
    last = logged_in.get(detail_url(session), {"spans": "500"})

    assert len(first.context["rows"]) == 250
    assert "spans 1\u2013250 by start time" in first.content.decode()
    assert 'href="?spans=250#trace" rel="next"' in first.content.decode()
    assert len(last.context["rows"]) == 100
    assert 'href="?spans=250#trace" rel="prev"' in last.content.decode()
    assert 'rel="next"' not in last.content.decode()
    assert not {row.pk for row in last.context["rows"]} & {row.pk for row in first.context["rows"]}
    assert last.context["rows"][0].start_ms > first.context["rows"][-1].start_ms
