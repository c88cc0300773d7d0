"""Full-text search over what agents said (analytics/search.py): the query syntax and snippets
as pure functions, then the index kept by the summary task over data sent through the ingest
API, and the search API a user or key calls."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from analytics.models import SearchEntry
from analytics.search import search
from analytics.search_index import index_sessions
from analytics.search_query import SearchError, marked_fragment, parse_query, snippet_html
from analytics.tasks import summarize_sessions_task
from ingest.models import Project, Session
from tests.builders import make_project, make_user
from tests.responses import streamed

S, E = "\ue000", "\ue001"


# --- Pure: what a typed query means, and what a snippet shows --------------------------------


@pytest.mark.parametrize(
    ("typed", "fts5"),
    [
        ("promised refund", '"promised" "refund"'),
        ('"full refund" -cancelled', '"full refund" NOT "cancelled"'),
        ("refund or replacement", '"refund" OR "replacement"'),
        ("or refund or", '"refund"'),
        ('refund "quote" inside" -"two words"', '"refund" "quote" "inside" NOT "two words"'),
        ("col:umn (nested) AND*", '"col umn" "nested" "AND"'),
    ],
)
def test_a_typed_query_becomes_quoted_fts5_terms(typed: str, fts5: str) -> None:
    assert parse_query(typed).fts5 == fts5


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "type the words"),
        ("   ", "type the words"),
        ("-refund", "at least one word"),
        ("!!! ???", "at least one word"),
        ("x" * 301, "at most 300 characters"),
        ("refund\x00", "NUL"),
    ],
)
def test_a_query_that_cannot_find_anything_is_refused_naming_q(typed: str, says: str) -> None:
    with pytest.raises(SearchError) as refused:
        parse_query(typed)
    assert str(refused.value).startswith("q: ") and says in str(refused.value)


def test_a_snippet_escapes_agent_text_and_marks_only_the_matches() -> None:
    marked = f'<img src=x onerror="alert(1)"> we {S}promise{E} a {S}refund{E}\n\n of {E}5 <b>'

    assert snippet_html(marked) == (
        "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; we <mark>promise</mark> a "
        "<mark>refund</mark> of 5 &lt;b&gt;"
    )


def test_a_highlighted_json_value_gives_the_strings_that_matched() -> None:
    value = [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": " ".join(["word"] * 30) + f" {S}refund{E} please"},
    ]

    fragment = marked_fragment(value)

    assert fragment.startswith("… word") and fragment.endswith(f"{S}refund{E} please")
    assert len(fragment.split()) == 1 + 12 + 1 + 1, "an ellipsis, 12 words, the match, 'please'"
    assert marked_fragment({"a": "nothing here"}) == ""


# --- The index and the search, through the ingest API ----------------------------------------


def _ingest(key: str, records: list[dict[str, Any]]) -> None:
    response = Client().post(
        "/api/v1/ingest",
        data=json.dumps({"records": records}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.content


def _llm_call(session: str, n: int, prompt: Any, completion: Any, **fields: Any) -> dict[str, Any]:
    return {
        "span_id": f"{session}-e{n}",
        "type": "event",
        "id": f"{session}-e{n}",
        "session_id": session,
        "kind": "llm",
        "name": "openai.chat",
        "model": "gpt-4o",
        "started_at": f"2026-11-21T10:00:{n:02d}Z",
        "ended_at": f"2026-11-21T10:00:{n:02d}.5Z",
        "prompt": prompt,
        "completion": completion,
        **fields,
    }


def _summarize(project: Project) -> None:
    summarize_sessions_task(
        list(Session.objects.filter(project=project).values_list("pk", flat=True))
    )


@pytest.fixture
def support(db: None) -> tuple[Project, str]:
    project, key = make_project(name="Support")
    _ingest(
        key,
        [
            _llm_call(
                "ticket-1",
                1,
                [
                    {"role": "system", "content": "Never promise anything you cannot deliver."},
                    {"role": "user", "content": "My blender arrived broken."},
                ],
                {"role": "assistant", "content": "I promised you a full refund by Friday."},
            ),
            _llm_call("ticket-2", 2, "What is my order status?", "It ships tomorrow."),
            {
                "type": "event",
                "id": "ticket-2-tool",
                "session_id": "ticket-2",
                "kind": "tool",
                "name": "lookup_order",
                "started_at": "2026-11-21T10:00:03Z",
                "params": {"order": "A-77", "note": "customer wants a refund"},
                "returns": {
                    "status": "shipped",
                    "carrier": "<script>alert(1)</script> DHL Express",
                },
            },
            {
                "type": "message",
                "id": "ticket-3-m1",
                "session_id": "ticket-3",
                "role": "user",
                "content": "Can I get my money back?",
                "at": "2026-11-21T10:01:00Z",
            },
            {
                "type": "agent_message",
                "id": "ticket-3-handoff",
                "session_id": "ticket-3",
                "message_id": "handoff-1",
                "stage": "sent",
                "at": "2026-11-21T10:01:05Z",
                "sender": "triage",
                "receivers": ["billing"],
                "content": {"task": "process the refunds of order A-78"},
            },
        ],
    )
    _summarize(project)
    return project, key


def _found(project: Project, typed: str, **options: Any) -> list[tuple[str, str, str]]:
    return [
        (hit.kind, hit.session_external_id, hit.field)
        for hit in search([project.pk], parse_query(typed), **options)
    ]


def test_what_agents_said_is_found_wherever_it_was_said(support: tuple[Project, str]) -> None:
    project, _ = support

    assert _found(project, "refund") == [
        ("message", "ticket-3", "content"),
        ("span", "ticket-2", "params"),
        ("span", "ticket-1", "completion"),
    ]
    assert _found(project, "money back") == [("line", "ticket-3", "text")]
    assert _found(project, "shipped") == [
        ("span", "ticket-2", "returns"),
        ("span", "ticket-2", "completion"),
    ], "'It ships tomorrow' says it too"


def test_words_are_matched_by_their_stem_and_the_syntax_is_web_search(
    support: tuple[Project, str],
) -> None:
    project, _ = support

    assert _found(project, "promise refund") == [("span", "ticket-1", "completion")]
    assert _found(project, '"full refund"') == [("span", "ticket-1", "completion")]
    assert _found(project, '"refund full"') == []
    assert _found(project, "refund -friday") == [
        ("message", "ticket-3", "content"),
        ("span", "ticket-2", "params"),
    ]
    assert _found(project, "blender or tomorrow") == [
        ("span", "ticket-2", "completion"),
        ("span", "ticket-1", "prompt"),
    ]
    assert _found(project, "refund", kinds=["line", "message"]) == [
        ("message", "ticket-3", "content")
    ]


def test_a_snippet_marks_the_words_found_and_escapes_the_rest(
    support: tuple[Project, str],
) -> None:
    project, _ = support

    [completion] = search([project.pk], parse_query("full refund"))
    [tool] = search([project.pk], parse_query("dhl"))

    assert "<mark>full</mark> <mark>refund</mark>" in completion.snippet
    assert "<script>" not in tool.snippet and "&quot;" not in tool.snippet
    assert "<mark>DHL</mark>" in tool.snippet
    assert tool.url == f"/sessions/{tool.session_id}/spans/{tool.target_id}/"


def test_text_that_arrives_later_is_indexed_and_unchanged_text_is_not_redone(
    support: tuple[Project, str],
) -> None:
    project, key = support
    assert _found(project, "warehouse") == []

    _ingest(
        key,
        [
            _llm_call(
                "ticket-2",
                2,
                "What is my order status?",
                "Still in the warehouse, sorry.",
                id="ticket-2-e2-again",
                span_id="ticket-2-e2",
            ),
            {
                "type": "status",
                "id": "ticket-1-st",
                "session_id": "ticket-1",
                "role": "tool",
                "text": "Running tool RefundTool",
                "at": "2026-11-21T10:00:09Z",
            },
        ],
    )
    before = SearchEntry.objects.count()
    written = index_sessions(Session.objects.filter(project=project).values_list("pk", flat=True))

    assert _found(project, "warehouse") == [("span", "ticket-2", "completion")]
    assert _found(project, "tomorrow") == []
    assert written == 2, "the changed completion and the new status line, nothing else"
    assert index_sessions(Session.objects.values_list("pk", flat=True)) == 0
    assert SearchEntry.objects.count() == before + 1


def test_search_is_scoped_to_the_projects_given(support: tuple[Project, str]) -> None:
    project, _ = support
    other, other_key = make_project(name="Other shop")
    _ingest(other_key, [_llm_call("x-1", 1, "refund me", "No refund for you.")])
    _summarize(other)

    assert [h.project_slug for h in search([other.pk], parse_query("refund"))] == ["other-shop"]
    assert len(search([project.pk, other.pk], parse_query("refund"))) == 4
    assert search([], parse_query("refund")) == []


def test_a_deleted_session_leaves_nothing_to_find(support: tuple[Project, str]) -> None:
    project, _ = support

    Session.objects.filter(external_id="ticket-1").delete()

    assert _found(project, "promise") == []
    assert not SearchEntry.objects.filter(session__external_id="ticket-1").exists()


def test_a_huge_prompt_is_indexed_from_its_first_part(support: tuple[Project, str]) -> None:
    project, key = support
    words = " ".join(f"w{n}x" for n in range(120_000))  # 840 kB: 1.4 MB as a tsvector
    _ingest(key, [_llm_call("big-1", 9, f"needle {words}", "ok")])

    _summarize(project)

    assert _found(project, "needle") == [("span", "big-1", "prompt")]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's FTS5 table")
def test_a_deleted_session_takes_its_fts5_rows_with_it_on_sqlite(
    support: tuple[Project, str],
) -> None:
    """The trigger of migration 0006 was lost when 0009 copied the table; 0012 makes it again."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM analytics_searchfts")
        [before] = cursor.fetchone()

        Session.objects.filter(external_id="ticket-1").delete()

        cursor.execute(
            "SELECT count(*) FROM analytics_searchfts "
            "WHERE rowid NOT IN (SELECT id FROM analytics_searchentry)"
        )
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT count(*) FROM analytics_searchfts")
        assert cursor.fetchone()[0] == before - 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plan")
@pytest.mark.usefixtures("support")
def test_postgresql_answers_a_search_from_the_gin_index() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM analytics_searchentry WHERE document @@ "
            "websearch_to_tsquery('english', 'refund')"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "search_entry_document" in plan


# --- The API ----------------------------------------------------------------------------------


def test_the_search_api_answers_a_key_with_its_own_project_s_hits(
    support: tuple[Project, str],
) -> None:
    project, _ = support
    _, read_key = _read_key(project)

    listed = Client().get(
        "/api/v1/search/", {"q": "refund"}, headers={"Authorization": f"Bearer {read_key}"}
    )
    body = listed.json()

    assert listed.status_code == 200, listed.content
    assert [r["kind"] for r in body["results"]] == ["message", "span", "span"]
    first = body["results"][0]
    assert first["session_id"] == "ticket-3" and first["field"] == "content"
    assert "<mark>refunds</mark>" in first["snippet"]
    assert first["url"].startswith("http://testserver/messages/")
    assert body["has_more"] is False


def test_the_search_api_pages_exports_csv_and_refuses_bad_queries(
    support: tuple[Project, str],
) -> None:
    project, _ = support
    _, read_key = _read_key(project)
    client = Client(headers={"Authorization": f"Bearer {read_key}"})

    page = client.get("/api/v1/search/", {"q": "refund", "limit": "2", "offset": "1"}).json()
    exported = client.get("/api/v1/search/", {"q": "refund", "format": "csv"})
    refused = client.get("/api/v1/search/", {"q": "-refund"})
    bad_kind = client.get("/api/v1/search/", {"q": "refund", "kind": "prompt"})

    assert [r["session_id"] for r in page["results"]] == ["ticket-2", "ticket-1"]
    rows = list(csv.DictReader(io.StringIO(streamed(exported).decode())))
    assert [r["session_id"] for r in rows] == ["ticket-3", "ticket-2", "ticket-1"]
    assert refused.status_code == 400 and refused.json()["field"] == "q"
    assert bad_kind.status_code == 400 and bad_kind.json()["field"] == "kind"


@pytest.mark.usefixtures("support")
def test_a_person_searches_only_the_projects_they_belong_to() -> None:
    outsider = make_user(username="outsider")
    client = Client()
    client.force_login(outsider)

    assert client.get("/api/v1/search/", {"q": "refund"}).json()["results"] == []


def _read_key(project: Project) -> tuple[Any, str]:
    from ingest.models import ApiKey

    return ApiKey.generate(project, "reader", scopes=["read"])


# --- The page ---------------------------------------------------------------------------------


def _member_client(project: Project, username: str = "viewer") -> Client:
    from ingest.models import Membership

    user = make_user(username=username)
    Membership.objects.create(user=user, project=project, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(user)
    return client


def test_the_search_page_shows_escaped_highlighted_snippets_linking_to_what_matched(
    support: tuple[Project, str],
) -> None:
    project, _ = support
    client = _member_client(project)

    page = client.get("/search/", {"q": "DHL express"}).content.decode()
    span = Session.objects.get(project=project, external_id="ticket-2").spans.get(
        name="lookup_order"
    )

    assert f'href="/sessions/{span.session_id}/spans/{span.pk}/"' in page
    # The tag itself is not shown (PostgreSQL's parser drops tags from headlines; SQLite's
    # snippet escapes it); it is never markup.
    assert "<mark>DHL</mark> <mark>Express</mark>" in page
    assert "<script>alert(1)</script>" not in page


def test_the_search_page_narrows_by_kind_and_scope_and_says_what_is_wrong(
    support: tuple[Project, str],
) -> None:
    project, _ = support
    other, other_key = make_project(name="Other")
    _ingest(other_key, [_llm_call("elsewhere", 1, "refund me", "No refund for you")])
    _summarize(other)
    client = _member_client(project)
    from ingest.models import Membership

    Membership.objects.create(
        user=Membership.objects.get(project=project).user,
        project=other,
        role=Membership.Role.VIEWER,
    )

    def found(**params: str) -> str:
        return client.get(
            "/search/", {"q": "refund", "project": "support", **params}
        ).content.decode()

    messages_only = found(kind="message")
    this_project = found()
    everywhere = found(scope="all")
    refused = client.get("/search/", {"q": "-refund"})

    assert messages_only.count('class="search-hit"') == 1
    assert this_project.count('class="search-hit"') == 3 and "elsewhere" not in this_project
    assert everywhere.count('class="search-hit"') == 4 and "elsewhere" in everywhere
    assert refused.status_code == 400
    assert "at least one word" in refused.content.decode()


def test_the_sessions_page_has_a_box_that_searches_what_agents_said(
    support: tuple[Project, str],
) -> None:
    project, _ = support

    page = _member_client(project).get("/sessions/").content.decode()

    assert 'id="said-search"' in page and 'action="/search/"' in page


def test_rebuild_search_index_indexes_sessions_stored_before_search_and_skips_unchanged(
    support: tuple[Project, str],
) -> None:
    from django.core.management import call_command

    project, _ = support
    SearchEntry.objects.all().delete()
    first, again = io.StringIO(), io.StringIO()

    call_command("rebuild_search_index", stdout=first)
    call_command("rebuild_search_index", "--project", project.slug, stdout=again)

    assert _found(project, "money back") == [("line", "ticket-3", "text")]
    assert (
        first.getvalue().strip().endswith(f"{SearchEntry.objects.count()} search entries written")
    )
    assert again.getvalue().strip() == "3 sessions looked at, 0 search entries written"


# --- Repeated text: each string of a session indexed once, at the first entry that said it ---


def _conversation(session: str, calls: int, *, system: str = "", first: int = 1) -> list[Any]:
    """LLM calls as agents send them: the system prompt and the whole conversation so far."""
    system = system or "You are Atlas. Never promise a refund without a human."
    records: list[Any] = []
    history: list[dict[str, str]] = []
    for n in range(1, calls + 1):
        question, answer = f"question{n} about parcel{n}", f"answer{n} with tracking{n}"
        prompt = [{"role": "system", "content": system}, *history]
        prompt.append({"role": "user", "content": question})
        reply = {"role": "assistant", "content": answer}
        if n >= first:
            records.append(_llm_call(session, n, prompt, reply))
        history += [{"role": "user", "content": question}, reply]
    return records


def _hit_spans(project: Project, typed: str) -> list[str]:
    from ingest.models import Span

    hits = search([project.pk], parse_query(typed))
    names = dict(
        Span.objects.filter(pk__in=[h.target_id for h in hits]).values_list("pk", "span_id")
    )
    return [names[hit.target_id] for hit in hits]


def test_repeated_conversation_text_links_to_the_span_that_said_it_first(db: None) -> None:
    project, key = make_project(name="Chat")
    _ingest(key, _conversation("chat-1", 3))
    _summarize(project)

    assert _hit_spans(project, "atlas refund") == ["chat-1-e1"], "the system prompt, once"
    assert _hit_spans(project, "question2") == ["chat-1-e2"], "not call 3, which repeats it"
    assert _hit_spans(project, "tracking2") == ["chat-1-e2"], "its answer, then call 3's prompt"
    assert _hit_spans(project, "question3 or tracking3") == ["chat-1-e3"]
    [hit] = search([project.pk], parse_query("question2"))
    assert "<mark>question2</mark>" in hit.snippet and hit.field == "prompt"
    assert hit.url.endswith(f"/spans/{hit.target_id}/")

    _ingest(key, _conversation("chat-1", 4, first=4))
    written = index_sessions(Session.objects.filter(project=project).values_list("pk", flat=True))

    assert written == 1, "only the new call"
    assert _hit_spans(project, "atlas") == ["chat-1-e1"]
    assert _hit_spans(project, "question4") == ["chat-1-e4"]


def test_text_replaced_at_the_span_that_said_it_first_is_still_found_where_it_is_said(
    db: None,
) -> None:
    project, key = make_project(name="Chat")
    _ingest(key, _conversation("chat-2", 3))
    _summarize(project)
    [call] = _conversation("chat-2", 1, system="You are Bob, a weather bot.")
    _ingest(key, [{**call, "id": "chat-2-e1-again"}])

    index_sessions(Session.objects.filter(project=project).values_list("pk", flat=True))

    assert _hit_spans(project, "weather bot") == ["chat-2-e1"]
    assert _hit_spans(project, "atlas refund") == ["chat-2-e2"], "the first that still says it"
    assert _hit_spans(project, "question1") == ["chat-2-e1"]
    assert index_sessions(Session.objects.values_list("pk", flat=True)) == 0


def test_a_span_moved_to_another_session_is_found_there_and_its_old_session_still_finds_the_rest(
    db: None,
) -> None:
    """A trace link moves rows already stored (and indexed) under a trace's own session to the
    session it names (docs/architecture.md, step 3); the span is moved here as the store moves
    rows, and only the session it moved to is indexed, as after the batch that moved it. The
    moved span said the system prompt first: its old session's next call, which repeats it,
    must now index it."""
    from ingest.models import Span

    project, key = make_project(name="Queue")
    _ingest(key, _conversation("consumer", 2))
    _ingest(key, [_llm_call("producer", 9, "Where is parcel nine?", "It left the depot.")])
    _summarize(project)
    producer = Session.objects.get(project=project, external_id="producer")
    Span.objects.filter(span_id="consumer-e1").update(session=producer)

    written = index_sessions([producer.pk])

    assert written == 2, "the moved span, and the consumer's call indexed again from the start"
    [hit] = search([project.pk], parse_query("question1 -question2"))
    assert hit.session_external_id == "producer"
    assert SearchEntry.objects.filter(project=project).count() == 3, "one entry per span"
    assert [h.session_external_id for h in search([project.pk], parse_query("atlas"))] == [
        "consumer",
        "producer",
    ], "each session finds the system prompt at its first call that says it"
    assert index_sessions(Session.objects.values_list("pk", flat=True)) == 0
