"""The dashboard pages through Django's test client: access, filters, partials, escaping, queries."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import ingest.store
from analytics.models import AlertRule
from analytics.refresh import refresh_project
from ingest.models import IngestRejection, Score, Session, Span, TranscriptLine
from tests.builders import T0, make_project, make_session, make_user

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SESSIONS = reverse("dashboard:session-list")
PROBLEMS = reverse("dashboard:ingest-problems")
STATUS_AND_MESSAGES = (
    ("user", "Who won?"),
    ("agent", "planner started"),
    ("llm", "calling gpt-4o"),
    ("tool", "search(who won)"),
    ("assistant", "Team A won."),
)
has_replay = pytest.mark.skipif(
    not hasattr(ingest.store, "replay_rejection"), reason="ingest.store.replay_rejection not yet"
)


@pytest.fixture
def user() -> Any:
    return make_user()


@pytest.fixture
def project(user: Any) -> Any:
    return make_project(name="Acme", user=user)[0]


@pytest.fixture
def logged_in(client: Client, user: Any, project: Any) -> Client:
    client.force_login(user)
    return client


def detail_url(session: Session) -> str:
    return reverse("dashboard:session-detail", args=[session.pk])


def stream_url(session: Session) -> str:
    return reverse("dashboard:session-stream", args=[session.pk])


def span_url(span: Span) -> str:
    return reverse("dashboard:span-detail", args=[span.session_id, span.pk])


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.content[:2000]
    return [session.name or session.external_id for session in response.context["sessions"]]


def make_rejection(project: Any, raw: str, message: str = "bad record") -> IngestRejection:
    """A stored rejection; the fingerprint is what ingest uses to keep a retried one once."""
    return IngestRejection.objects.create(
        project=project,
        message=message,
        raw=raw,
        record_type="session.start",
        fingerprint=hashlib.sha256(raw.encode()).hexdigest(),
    )


# --- Access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "overview",
        "session-list",
        "session-detail",
        "session-stream",
        "span-detail",
        "ingest-problems",
    ],
)
def test_every_page_sends_an_anonymous_visitor_to_the_login_page(
    client: Client, project: Any, name: str
) -> None:
    session = make_session(project)
    span = session.spans.first()
    args = {"session-detail": [session.pk], "session-stream": [session.pk]}.get(name, [])
    url = span_url(span) if name == "span-detail" else reverse(f"dashboard:{name}", args=args)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_the_login_page_renders_a_form_that_logs_in(client: Client, user: Any) -> None:
    page = client.get("/accounts/login/")
    response = client.post("/accounts/login/", {"username": "alice", "password": "password"})

    assert b'id="id_username"' in page.content and b'id="id_password"' in page.content
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_logout_button_posts_a_form(logged_in: Client) -> None:
    response = logged_in.get("/")

    assert b'action="/accounts/logout/"' in response.content
    assert logged_in.post("/accounts/logout/").status_code == 302
    assert logged_in.get("/").status_code == 302


def test_a_user_without_a_project_is_told_how_to_get_one(client: Client) -> None:
    client.force_login(make_user(username="lonely"))

    response = client.get(SESSIONS)

    assert response.status_code == 200
    assert b"No project yet" in response.content


def test_the_project_switcher_changes_the_project_and_remembers_it(
    logged_in: Client, user: Any, project: Any
) -> None:
    other, _ = make_project(name="Beta", user=user)
    make_project(name="Not mine")
    make_session(project, name="acme session")
    make_session(other, name="beta session")

    assert names(logged_in.get(SESSIONS)) == ["acme session"]
    assert names(logged_in.get(SESSIONS, {"project": "beta"})) == ["beta session"]
    assert names(logged_in.get(SESSIONS)) == ["beta session"]
    assert logged_in.get(SESSIONS, {"project": "not-mine"}).status_code == 404


def test_a_member_of_one_project_gets_404_for_another_projects_objects(logged_in: Client) -> None:
    theirs, _ = make_project(name="Theirs")
    session = make_session(theirs)
    rejection = make_rejection(theirs, raw="{}")

    assert logged_in.get(detail_url(session)).status_code == 404
    assert logged_in.get(stream_url(session)).status_code == 404
    assert logged_in.get(span_url(session.spans.first())).status_code == 404
    replay = reverse("dashboard:rejection-replay", args=[rejection.pk])
    assert logged_in.post(replay, {"raw": "{}"}).status_code == 404


def test_a_span_is_only_found_under_its_own_session(logged_in: Client, project: Any) -> None:
    one, two = make_session(project), make_session(project)
    url = reverse("dashboard:span-detail", args=[one.pk, two.spans.first().pk])

    assert logged_in.get(url).status_code == 404


# --- Overview -------------------------------------------------------------------------------------


def test_the_overview_shows_kpis_and_charts_for_an_explicit_window(
    logged_in: Client, project: Any
) -> None:
    make_session(project, spans=4, llm_spans=2, failed=1, end_state="fail")
    make_session(project, started_at=T0 + timedelta(hours=2), spans=2, llm_spans=1)
    make_session(project, started_at=T0 - timedelta(days=3))  # outside the window

    response = logged_in.get("/", {"from": "2026-11-21T00:00", "to": "2026-11-22T00:00"})

    assert response.status_code == 200
    kpis = response.context["kpis"]
    assert (kpis.session_count, kpis.failed_session_count, kpis.event_count) == (2, 1, 6)
    assert (kpis.llm_call_count, kpis.error_count) == (3, 1)
    # Percentiles of several rollup rows merge their histograms: within ~5 % (glossary, Rollup).
    assert kpis.llm_p50_ms == pytest.approx(500.0, rel=0.05)
    assert response.context["window"].range_key == "custom"
    for chart in ("chart-activity", "chart-latency", "chart-cost"):
        assert f'id="{chart}"'.encode() in response.content
    assert b"plotly/plotly.min.js" in response.content


def test_the_overview_sums_rolled_up_hours_from_rollups_and_later_ones_from_spans(
    logged_in: Client, project: Any
) -> None:
    """A session three hours ago, rolled up; then its spans vanish from the span table (the
    page must not read them) and a session arrives after the refresh (the page reads that one's
    spans): both count."""
    now = timezone.now()
    early = make_session(project, started_at=now - timedelta(hours=3), spans=4, llm_spans=2)
    refresh_project(project.pk, since=now - timedelta(days=1), now=now)
    Span.objects.filter(session=early).delete()
    make_session(project, started_at=now - timedelta(minutes=10), spans=3, llm_spans=1)

    kpis = logged_in.get("/", {"range": "24h"}).context["kpis"]

    assert (kpis.session_count, kpis.event_count, kpis.llm_call_count) == (2, 7, 3)


def test_the_overview_of_an_empty_range_shows_empty_states(logged_in: Client) -> None:
    response = logged_in.get("/", {"range": "7d"})

    assert response.status_code == 200
    assert response.context["window"].range_key == "7d"
    assert b"No sessions or events in this range." in response.content
    assert b'id="chart-activity"' not in response.content


# --- Sessions list --------------------------------------------------------------------------------


def test_the_sessions_list_shows_each_sessions_columns(logged_in: Client, project: Any) -> None:
    make_session(
        project,
        name="arena round",
        spans=4,
        llm_spans=2,
        failed=1,
        tags=["demo"],
        agents=("planner", "critic"),
        model="gpt-4o",
    )

    response = logged_in.get(SESSIONS)

    html = response.content.decode()
    for text in ("arena round", "5.0 s", "success", "200 / 40", "$0.0020", "critic", "gpt-4o"):
        assert text in html
    assert '<a class="chip tag link" href="?tag=demo">demo</a>' in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"end_state": "fail"}, ["failed"]),
        ({"has_errors": "true"}, ["failed"]),
        ({"has_errors": "false"}, ["tagged", "plain"]),
        ({"tag": "beta"}, ["tagged"]),
        ({"agent": "critic"}, ["failed"]),
        ({"model": "claude"}, ["tagged"]),
        ({"q": "plai"}, ["plain"]),
        ({"group_key": "g1"}, ["failed", "plain"]),
        ({"started_after": "2026-11-21T10:30"}, ["tagged"]),
        ({"started_before": "2026-11-21T09:30"}, ["plain"]),
    ],
)
def test_filters_change_the_rows(
    logged_in: Client, project: Any, params: dict[str, str], expected: list[str]
) -> None:
    make_session(project, name="plain", started_at=T0 - timedelta(hours=1), group_key="g1")
    make_session(
        project, name="tagged", started_at=T0 + timedelta(hours=1), tags=["beta"], model="claude"
    )
    make_session(
        project, name="failed", failed=1, end_state="fail", agents=("critic",), group_key="g1"
    )

    assert names(logged_in.get(SESSIONS, params)) == expected


def test_the_empty_fields_a_submitted_filter_form_sends_are_ignored_here_and_in_the_csv(
    logged_in: Client, project: Any
) -> None:
    make_session(project, name="only")
    form = dict.fromkeys(
        [
            "q",
            "range",
            "started_after",
            "started_before",
            "end_state",
            "has_errors",
            "tag",
            "agent",
            "model",
            "group_key",
            "ordering",
        ],
        "",
    )

    response = logged_in.get(SESSIONS, form)
    export = logged_in.get(response.context["export_url"])

    assert names(response) == ["only"]
    assert not response.context["filterset"].errors
    assert export.status_code == 200
    assert len(b"".join(export.streaming_content).splitlines()) == 2  # type: ignore[attr-defined]


def test_a_bad_filter_value_is_shown_as_an_error_instead_of_failing(
    logged_in: Client, project: Any
) -> None:
    make_session(project, name="only")

    response = logged_in.get(SESSIONS, {"has_errors": "maybe"})

    assert response.status_code == 200
    assert "has_errors" in response.context["filterset"].errors
    assert b'class="form-errors inline"' in response.content


def test_a_range_choice_becomes_a_started_after_filter_in_the_export_link(
    logged_in: Client, project: Any
) -> None:
    response = logged_in.get(SESSIONS, {"range": "24h", "tag": "x"})

    export = response.context["export_url"]
    assert export.startswith("/api/v1/sessions/?")
    assert "started_after=" in export and "range=" not in export
    assert "tag=x" in export and "format=csv" in export and "project=acme" in export


def test_the_export_link_gives_exactly_the_rows_on_the_page(
    logged_in: Client, project: Any
) -> None:
    make_session(project, external_id="keep-1", name="keep", tags=["beta"])
    make_session(project, external_id="keep-2", name="keep too", tags=["beta"], failed=1)
    make_session(project, external_id="drop", name="drop")
    other, _ = make_project(name="Other", user=project.members.first())
    make_session(other, external_id="other-project", tags=["beta"])

    page = logged_in.get(SESSIONS, {"tag": "beta", "ordering": "-error_count", "page": "1"})
    export = logged_in.get(page.context["export_url"])

    assert export.status_code == 200, export.content[:500]
    body = b"".join(export.streaming_content).decode()  # type: ignore[attr-defined]
    rows = list(csv.DictReader(io.StringIO(body)))
    page_ids = [s.external_id for s in page.context["sessions"]]
    assert page_ids == ["keep-2", "keep-1"]
    assert [row["id"] for row in rows] == page_ids


def test_sorting_by_a_column_header_orders_rows_and_flips_on_the_next_click(
    logged_in: Client, project: Any
) -> None:
    make_session(project, name="few", spans=1)
    make_session(project, name="many", spans=5, started_at=T0 - timedelta(hours=1))

    first = logged_in.get(SESSIONS)
    events_column = next(c for c in first.context["columns"] if c["field"] == "event_count")
    descending = logged_in.get(SESSIONS, {"ordering": events_column["next"]})
    flipped = next(c for c in descending.context["columns"] if c["field"] == "event_count")

    assert names(first) == ["few", "many"]  # newest first by default
    assert names(descending) == ["many", "few"]
    assert flipped["active"] and flipped["descending"] and flipped["next"] == "event_count"
    assert names(logged_in.get(SESSIONS, {"ordering": "event_count"})) == ["few", "many"]
    assert b'aria-sort="descending"' in descending.content


def test_the_list_pages_by_fifty(logged_in: Client, project: Any) -> None:
    for i in range(51):
        make_session(project, name=f"s{i:02d}", started_at=T0 + timedelta(minutes=i), spans=0)

    first, second = logged_in.get(SESSIONS), logged_in.get(SESSIONS, {"page": "2"})

    assert len(names(first)) == 50 and names(first)[0] == "s50"
    assert names(second) == ["s00"]
    assert b"Page 2 of 2" in second.content


def test_an_htmx_request_gets_only_the_rows_and_the_response_varies_on_it(
    logged_in: Client, project: Any
) -> None:
    make_session(project, name="row")

    full = logged_in.get(SESSIONS)
    partial = logged_in.get(SESSIONS, {"q": "row"}, headers={"HX-Request": "true"})
    restore = logged_in.get(
        SESSIONS, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )

    assert b"<html" in full.content and b'id="filters"' in full.content
    assert partial.content.lstrip().startswith(b'<div id="rows"')
    assert b"<html" not in partial.content and b"row" in partial.content
    assert "HX-Request" in partial["Vary"] and "HX-Request" in full["Vary"]
    assert b"<html" in restore.content


def test_group_and_parent_links_lead_to_the_group_and_the_parent(
    logged_in: Client, project: Any
) -> None:
    parent = make_session(project, external_id="parent-1", name="parent", group_key="batch 7")
    make_session(project, name="child", parent="parent-1", group_key="batch 7")
    make_session(project, name="orphan", parent="never-arrived")

    html = logged_in.get(SESSIONS).content.decode()

    assert 'href="?group_key=batch+7"' in html
    assert f'href="{detail_url(parent)}"' in html
    assert "parent (missing)" in html
    assert names(logged_in.get(SESSIONS, {"group_key": "batch 7"})) == ["child", "parent"]
    assert names(logged_in.get(SESSIONS, {"parent": "parent-1"})) == ["child"]


@pytest.mark.parametrize("count", [2, 20])
def test_the_sessions_list_runs_the_same_queries_for_few_and_many_rows(
    logged_in: Client, project: Any, django_assert_num_queries: Any, count: int
) -> None:
    make_session(project, external_id="parent", spans=0)
    for _ in range(count):
        make_session(project, spans=2, parent="parent", tags=["t"], agents=("a", "b"))
    logged_in.get(SESSIONS)  # remembers the project in the Django session

    # session, user, projects, count, page, their scores (the column), parents, detector
    # flags, anomalies (badges)
    with django_assert_num_queries(9):
        response = logged_in.get(SESSIONS, {"tag": "t"})

    assert len(response.context["sessions"]) == count


# --- Session detail -------------------------------------------------------------------------------


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
    last = TranscriptLine.objects.filter(session=session).order_by("-pk").first()

    html = logged_in.get(detail_url(session), {"hide": "llm"}).content.decode()

    assert 'hx-trigger="every 3s"' in html and 'hx-swap="beforeend"' in html
    assert f'hx-get="{stream_url(session)}?after={last.pk}&amp;hide=llm"' in html


def test_the_stream_partial_returns_only_newer_lines_and_a_fresh_poller(
    logged_in: Client, project: Any
) -> None:
    session = make_session(project, end_state="running", transcript=STATUS_AND_MESSAGES)
    last = TranscriptLine.objects.filter(session=session).order_by("-pk").first()
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

    response = logged_in.get(stream_url(session), {"after": last.pk, "hide": "llm"})

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
    span = session.spans.first()
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


# --- Ingest problems ------------------------------------------------------------------------------


def test_ingest_problems_lists_open_ones_by_default_with_their_raw_record(
    logged_in: Client, project: Any
) -> None:
    open_one = make_rejection(project, raw=json.dumps({"type": "event", "name": SCRIPT}))
    solved = make_rejection(project, raw='{"type": "x"}', message="solved one")
    IngestRejection.objects.filter(pk=solved.pk).update(is_resolved=True)

    default = logged_in.get(PROBLEMS)
    resolved = logged_in.get(PROBLEMS, {"state": "resolved"})
    everything = logged_in.get(PROBLEMS, {"state": "all"})

    assert [r.pk for r in default.context["rejections"]] == [open_one.pk]
    assert [r.pk for r in resolved.context["rejections"]] == [solved.pk]
    assert len(everything.context["rejections"]) == 2
    html = default.content.decode()
    assert SCRIPT not in html
    assert "&quot;name&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in html
    assert f'action="/ingest-problems/{open_one.pk}/replay/"' in html


def test_replay_only_accepts_post(logged_in: Client, project: Any) -> None:
    rejection = make_rejection(project, raw="{}")

    response = logged_in.get(reverse("dashboard:rejection-replay", args=[rejection.pk]))

    assert response.status_code == 405


@has_replay
def test_an_edited_record_replays_and_resolves_the_problem(logged_in: Client, project: Any) -> None:
    bad = {"type": "session.start", "id": "r1", "session_id": "fixed", "started_at": "yesterday"}
    rejection = make_rejection(project, raw=json.dumps(bad))
    fixed = json.dumps(bad | {"started_at": "2026-11-21T10:00:00Z"})
    url = reverse("dashboard:rejection-replay", args=[rejection.pk])

    response = logged_in.post(url, {"raw": fixed, "state": "unresolved"}, follow=True)

    rejection.refresh_from_db()
    assert rejection.is_resolved and rejection.raw == fixed
    assert Session.objects.filter(project=project, external_id="fixed").exists()
    assert response.redirect_chain[-1][0] == f"{PROBLEMS}?state=unresolved"
    assert f"Problem #{rejection.pk} replayed" in response.content.decode()


@has_replay
def test_a_record_that_still_fails_stays_open_with_the_new_reason(
    logged_in: Client, project: Any
) -> None:
    rejection = make_rejection(project, raw='{"type": "session.start"}')
    url = reverse("dashboard:rejection-replay", args=[rejection.pk])

    response = logged_in.post(url, {"raw": "{not json"}, follow=True)

    rejection.refresh_from_db()
    assert not rejection.is_resolved
    assert "still fails: Not valid JSON" in response.content.decode()


@has_replay
def test_replay_selected_replays_each_chosen_problem_as_stored(
    logged_in: Client, project: Any
) -> None:
    good = make_rejection(
        project,
        raw=json.dumps(
            {
                "type": "session.start",
                "id": "r9",
                "session_id": "s9",
                "started_at": "2026-11-21T10:00:00Z",
            }
        ),
    )
    bad = make_rejection(project, raw='{"type": "nonsense"}')
    untouched = make_rejection(project, raw='{"type": "also nonsense"}')

    response = logged_in.post(
        reverse("dashboard:rejection-replay-selected"),
        {"ids": [good.pk, bad.pk], "state": "all"},
        follow=True,
    )

    states = dict(IngestRejection.objects.values_list("pk", "is_resolved"))
    assert states == {good.pk: True, bad.pk: False, untouched.pk: False}
    html = response.content.decode()
    assert "1 problem(s) replayed." in html and "1 still fail" in html
    assert response.redirect_chain[-1][0] == f"{PROBLEMS}?state=all"


# --- Scores ---------------------------------------------------------------------------------------


def test_the_sessions_page_filters_by_score_and_names_a_bad_condition(
    logged_in: Client, project: Any
) -> None:
    low = make_session(project, name="low judged")
    make_session(project, name="high judged")
    Score.objects.create(
        project=project,
        session=low,
        client_id="s",
        name="judge",
        data_type="numeric",
        value=0.1,
        created_at=low.started_at,
    )

    shown = logged_in.get(SESSIONS, {"score": "judge:lt:0.5"}).content.decode()
    assert "low judged" in shown and "high judged" not in shown
    refused = logged_in.get(SESSIONS, {"score": "judge:about:1"}).content.decode()
    assert "score: op must be one of" in refused


def test_the_session_page_shows_scores_escaped(logged_in: Client, project: Any) -> None:
    session = make_session(project)
    Score.objects.create(
        project=project,
        session=session,
        client_id="s",
        name="<b>judge</b>",
        data_type="categorical",
        label="<script>x</script>",
        comment="<img src=x>",
        created_at=session.started_at,
    )

    html = logged_in.get(f"/sessions/{session.pk}/").content.decode()
    assert "&lt;b&gt;judge&lt;/b&gt;" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x</script>" not in html
    assert "&lt;img src=x&gt;" in html


def test_the_trends_page_charts_scores_by_name(logged_in: Client, project: Any) -> None:
    session = make_session(project, started_at=timezone.now() - timedelta(hours=2))
    Score.objects.create(
        project=project,
        session=session,
        client_id="s",
        name="judge",
        data_type="numeric",
        value=0.7,
        created_at=timezone.now() - timedelta(hours=1),
    )

    html = logged_in.get("/trends/", {"range": "24h"}).content.decode()

    assert 'id="chart-trend-scores"' in html
    assert "/api/v1/scores/?project=" in html


def test_a_score_alert_rule_needs_the_score_name(logged_in: Client, project: Any) -> None:
    form = {
        "name": "Judge dropped",
        "kind": "metric",
        "metric": "score_mean",
        "window_minutes": 60,
        "comparator": "<",
        "threshold": 0.5,
        "channel": "slack",
        "target": "https://hooks.example.com/x",
        "renotify_minutes": 60,
        "is_enabled": "on",
    }
    refused = logged_in.post("/alerts/", form).content.decode()
    assert "A score metric needs the name of the scores to judge." in refused
    logged_in.post("/alerts/", {**form, "score_name": "judge"})
    assert AlertRule.objects.get(name="Judge dropped").score_name == "judge"


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
