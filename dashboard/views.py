"""Session pages: the list, a session's detail (metadata, waterfall, transcript stream), its
stream, transcript lines and span panels.

Every page requires login and shows only projects the user is a member of; another project's
objects are a 404. The chosen project is remembered in the Django session (`?project=<slug>`).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from analytics import deletion, queries
from analytics.overview import RANGES
from analytics.scores import score_summary
from api.filters import SessionFilter
from dashboard import charts
from dashboard.pages import (
    PAGE_SIZE,
    Nav,
    current_nav,
    htmx_partial,
    no_project,
    object_nav,
    session_or_404,
    vary_on_htmx,
)
from dashboard.rounds import Round, rounds_with_messages
from dashboard.views_scores import score_form_context
from dashboard.waterfall import waterfall_rows
from ingest import access
from ingest.formats.records import DETAILED_KIND_KEY
from ingest.models import Project, Session, TranscriptLine

# Spans per page of a session's waterfall and tree.
WATERFALL_PAGE = 250
CHILD_LIMIT = 50
# The session page shows the end of the stream: a transcript can hold many thousands of lines
# of up to a million characters each. Earlier lines and whole lines are a link away.
STREAM_TAIL_LINES = 300
STREAM_LINE_CHARS = 4000
TOGGLE_ROLES = ("agent", "llm", "tool", "log")
# Columns of the sessions table: (label, SessionFilter ordering field or "", CSS class).
SESSION_COLUMNS = [
    ("Name", "", "col-name"),
    ("Started", "started_at", ""),
    ("Duration", "duration_ms", "num"),
    ("End state", "", ""),
    ("Events", "event_count", "num"),
    ("Errors", "error_count", "num"),
    ("Tokens", "prompt_tokens", "num"),
    ("Cost", "cost", "num"),
    ("Agents", "", ""),
    ("Models", "", ""),
    ("Tags", "", ""),
    ("Scores", "", "col-scores"),
]
# A trace id in a message is cut to this; the agentops SDK's are 32 hex digits.
TRACE_ID_SHOWN_CHARS = 64


# --- Sessions list -----------------------------------------------------------------------------


def _sort_columns(ordering: str) -> list[dict[str, Any]]:
    columns = []
    for label, field, css in SESSION_COLUMNS:
        active = ordering.lstrip("-") == field if field else False
        descending = active and ordering.startswith("-")
        if not field:
            next_ordering = ""
        elif active:
            next_ordering = field if descending else f"-{field}"
        else:
            next_ordering = f"-{field}"
        columns.append(
            {
                "label": label,
                "field": field,
                "css": css,
                "active": active,
                "descending": descending,
                "next": next_ordering,
            }
        )
    return columns


def _filter_params(request: HttpRequest, project: Project) -> QueryDict:
    """SessionFilter's parameters: the query string with `range=7d` turned into started_after.

    The export link carries these same parameters, so the CSV holds exactly the rows shown.
    """
    params = request.GET.copy()
    for key in ("page", "format", "range", "trace_id"):
        params.pop(key, None)
    range_key = request.GET.get("range", "")
    if range_key in RANGES:
        since = timezone.now() - RANGES[range_key][0]
        params["started_after"] = since.isoformat(timespec="seconds")
        params.pop("started_before", None)
    params["project"] = project.slug
    return params


def _export_url(params: QueryDict) -> str:
    export = params.copy()
    export.pop("page", None)
    export["format"] = "csv"
    # The read API's session list runs the same SessionFilter; `format=csv` is only a renderer.
    return f"{reverse('api:session-list')}?{export.urlencode()}"


def _session_list_context(request: HttpRequest, nav: Nav) -> dict[str, Any]:
    params = _filter_params(request, nav.project)
    filterset = SessionFilter(
        params, queryset=queries.scored_sessions_for_projects([nav.project.pk]), request=request
    )
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    sessions = list(page.object_list)
    # The scores column: each name's mean (share of yes, latest category), as the CSV has it.
    scores = {
        s.pk: score_summary((c.name, c.data_type, c.value, c.label) for c in s.scores.all())
        for s in sessions
    }
    parent_ids = [s.parent_external_id for s in sessions if s.parent_external_id]
    ordering = request.GET.get("ordering", "")
    return {
        "nav": nav,
        "filterset": filterset,
        "page": page,
        "sessions": sessions,
        "parents": queries.session_pks_by_external_id(nav.project.pk, parent_ids),
        "session_scores": scores,
        "columns": _sort_columns(ordering),
        "ordering": ordering,
        "export_url": _export_url(params),
        # Badges: detector flags and unresolved anomalies that name the session as an example.
        "flags": queries.flags_by_session([s.pk for s in sessions]),
        "anomaly_counts": queries.anomaly_counts_by_session(
            nav.project.pk, [s.pk for s in sessions]
        ),
        "ranges": list(RANGES),
        "end_states": Session.EndState.values,
        "is_filtered": any(k not in ("page", "ordering", "project") for k in params),
    }


def _session_for_trace(request: HttpRequest) -> Session | None:
    """`?trace_id=` (the link the agentops SDK prints): the session holding that trace, if any of
    the user's projects has one; otherwise a message on the list page says so."""
    trace_id = request.GET.get("trace_id", "").strip().lower()
    if not trace_id:
        return None
    session = queries.session_for_trace(queries.projects_for_user(request.user), trace_id)
    if session is None and not htmx_partial(request):
        messages.warning(request, f"No session for trace {trace_id[:TRACE_ID_SHOWN_CHARS]}.")
    return session


@login_required
@require_GET
def session_list(request: HttpRequest) -> HttpResponse:
    traced = _session_for_trace(request)
    if traced is not None:
        return redirect("dashboard:session-detail", traced.pk)
    nav = current_nav(request)
    if nav is None:
        return no_project(request)
    context = _session_list_context(request, nav)
    template = "dashboard/sessions.html"
    if htmx_partial(request):
        template += "#rows"
    return vary_on_htmx(render(request, template, context))


# --- Session detail: metadata, waterfall, chat stream ------------------------------------------


def _hidden_roles(request: HttpRequest) -> list[str]:
    hide = request.GET.get("hide", "")
    return [role for role in TOGGLE_ROLES if role in hide.split(",")]


def _shown_roles(hidden: list[str]) -> list[str]:
    return [role for role in TranscriptLine.Role.values if role not in hidden]


def _trace_param(request: HttpRequest) -> str:
    return request.GET.get("trace", "").strip().lower()


def _role_toggles(request: HttpRequest, hidden: list[str]) -> list[dict[str, Any]]:
    """Links that flip one role; they keep the waterfall's round filter (`trace`)."""
    toggles = []
    trace_id = _trace_param(request)
    for role in TOGGLE_ROLES:
        shown = role not in hidden
        next_hidden = [r for r in TOGGLE_ROLES if (r in hidden) != (r == role)]
        params = QueryDict(mutable=True)
        if trace_id:
            params["trace"] = trace_id
        if next_hidden:
            params["hide"] = ",".join(next_hidden)
        toggles.append({"role": role, "shown": shown, "query": params.urlencode(safe=",")})
    return toggles


def _stream_context(session: Session, request: HttpRequest, lines: list[Any]) -> dict[str, Any]:
    hidden = _hidden_roles(request)
    before = _int_param(request, "before")
    after = max((line.pk for line in lines), default=_int_param(request, "after") or 0)
    poll = QueryDict(mutable=True)
    poll["after"] = str(after)
    if hidden:
        poll["hide"] = ",".join(hidden)
    params = poll.urlencode(safe=",")
    return {
        "session": session,
        "lines": lines,
        "hidden": ",".join(hidden),
        "toggles": _role_toggles(request, hidden),
        # Earlier lines are a page of their own: new lines are not appended below them.
        "is_running": session.end_state == Session.EndState.RUNNING and before is None,
        "poll_url": f"{reverse('dashboard:session-stream', args=[session.pk])}?{params}",
        "line_chars": STREAM_LINE_CHARS,
        **_stream_pages(session, request, lines, before),
    }


def _stream_pages(
    session: Session, request: HttpRequest, lines: list[Any], before: int | None
) -> dict[str, Any]:
    """Links to the lines before the first one shown, and back to the newest."""
    earlier = request.GET.copy()
    earlier.pop("after", None)
    earlier["before"] = str(lines[0].pk) if lines else ""
    newest = request.GET.copy()
    newest.pop("before", None)
    has_earlier = len(lines) >= STREAM_TAIL_LINES
    return {
        "earlier_url": f"?{earlier.urlencode(safe=',')}#stream" if has_earlier else "",
        "newest_url": f"?{newest.urlencode(safe=',')}#stream" if before is not None else "",
        "line_count": (
            queries.stream_line_count(session, roles=_shown_roles(_hidden_roles(request)))
            if has_earlier or before is not None
            else len(lines)
        ),
    }


def _int_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdecimal() else None


def _waterfall_context(session: Session, *, trace_id: str, first: int) -> dict[str, Any]:
    """One page of the span tree and chart (WATERFALL_PAGE spans from the `first`-th by start
    time, so a 10,000-span session stays light to load and scroll); with `trace_id`, only that
    trace's spans, timed from its start. A span whose parent is on another page is a root."""
    first = first // WATERFALL_PAGE * WATERFALL_PAGE
    spans = queries.waterfall_spans(
        session, limit=WATERFALL_PAGE + 1, offset=first, trace_id=trace_id
    )
    has_next = len(spans) > WATERFALL_PAGE
    spans = spans[:WATERFALL_PAGE]
    starts = [spans[0]["started_at"]] if spans and (first == 0 or trace_id) else []
    if session.started_at and not trace_id:
        starts.append(session.started_at)
    rows = waterfall_rows(spans, origin=min(starts) if starts else None)
    return {
        "rows": rows,
        "waterfall": charts.figure_data(charts.waterfall_chart(rows)) if rows else None,
        "is_paged": bool(first or has_next),
        "span_first": first + 1,
        "span_last": first + len(spans),
        "span_previous": max(first - WATERFALL_PAGE, 0) if first else None,
        "span_next": first + WATERFALL_PAGE if has_next else None,
    }


def _parent_pk(session: Session) -> int | None:
    if not session.parent_external_id:
        return None
    parents = queries.session_pks_by_external_id(session.project_id, [session.parent_external_id])
    return parents.get(session.parent_external_id)


def _rounds_context(session: Session, trace_id: str, lines: list[Any]) -> dict[str, Any]:
    """The Rounds panel: the session's traces in order, with each round's user message and reply
    taken from the stream lines already loaded (user and assistant lines are never hidden)."""
    rounds = rounds_with_messages(
        queries.session_rounds(session),
        ((line.trace_id, line.role, line.text_preview) for line in lines),
    )
    selected: Round | None = next((r for r in rounds if r.trace_id == trace_id), None)
    return {"rounds": rounds, "trace_filter": trace_id, "selected_round": selected}


@login_required
@require_GET
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    session = session_or_404(request, pk)
    lines = queries.stream_lines(
        session,
        roles=_shown_roles(_hidden_roles(request)),
        max_chars=STREAM_LINE_CHARS,
        limit=STREAM_TAIL_LINES,
        before=_int_param(request, "before"),
    )
    trace_id = _trace_param(request)
    # Read once: the score form and the delete button both depend on it.
    role = access.roles_of(request.user, [session.project_id]).get(session.project_id)
    context = {
        "nav": object_nav(request, session.project),
        "session": session,
        "agents": list(session.agents.order_by("created_at", "id")),
        "parent_pk": _parent_pk(session),
        "children": queries.child_sessions(session, limit=CHILD_LIMIT),
        "flags": queries.flags_by_session([session.pk]).get(session.pk, []),
        "session_anomalies": queries.anomalies_naming_session(session),
        **_scores_context(queries.scores_for_session(session), role, request),
        "stream": _stream_context(session, request, lines),
        **_rounds_context(session, trace_id, lines),
        **_waterfall_context(session, trace_id=trace_id, first=_int_param(request, "spans") or 0),
        **_lifecycle_context(session, role),
    }
    return render(request, "dashboard/session_detail.html", context)


def _scores_context(scores: list[Any], role: str | None, request: HttpRequest) -> dict[str, Any]:
    username = request.user.get_username()
    return {"scores": scores, "score_form": score_form_context(role, scores, username)}


def _lifecycle_context(session: Session, role: str | None) -> dict[str, Any]:
    """Whether the user may delete the session, and whether retention removed its raw data."""
    removed_before = session.project.raw_removed_before
    started = session.started_at
    return {
        "may_delete": access.may(role, access.Action.DELETE_SESSION),
        "raw_retention_days": deletion.retention_of(session.project).raw_days,
        "is_raw_removed": bool(removed_before and started and started < removed_before),
    }


@login_required
@require_POST
def session_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete the session and everything under it (admins; audited)."""
    session = session_or_404(request, pk)
    access.require(request.user, session.project_id, access.Action.DELETE_SESSION)
    deletion.delete_session(request, session)
    messages.success(request, f"Session “{session}” and everything under it were deleted.")
    return redirect(f"{reverse('dashboard:session-list')}?project={session.project.slug}")


@login_required
@require_GET
def session_stream(request: HttpRequest, pk: int) -> HttpResponse:
    """The stream's new lines (after=<id>) plus a fresh poller; the poller stops once ended."""
    session = session_or_404(request, pk)
    roles = _shown_roles(_hidden_roles(request))
    lines = queries.stream_lines(
        session,
        roles=roles,
        max_chars=STREAM_LINE_CHARS,
        limit=STREAM_TAIL_LINES,
        after=_int_param(request, "after"),
    )
    context = {"stream": _stream_context(session, request, lines), "session": session}
    template = "dashboard/session_detail.html#stream-update"
    return vary_on_htmx(render(request, template, context))


@login_required
@require_GET
def session_line(request: HttpRequest, pk: int, line_pk: int) -> HttpResponse:
    """One transcript line whole, as plain text (the stream shows its first characters)."""
    session = session_or_404(request, pk)
    line = queries.transcript_line(session, line_pk)
    if line is None:
        raise Http404("No such line")
    response = HttpResponse(line.text, content_type="text/plain; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- Span detail -------------------------------------------------------------------------------


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _payload_sections(payload: Any) -> list[tuple[str, str]]:
    if payload is None:
        return []
    return [
        (title, _pretty(getattr(payload, field)))
        for title, field in (
            ("Params", "params"),
            ("Returns", "returns"),
            ("Prompt", "prompt"),
            ("Completion", "completion"),
        )
        if getattr(payload, field) not in (None, "", [], {})
    ]


def _attribute_context(span: Any, payload: Any) -> dict[str, Any]:
    """The span's raw attributes: those no mapping understood (key, value text), all of them as
    JSON, and the detailed kind the OTLP mapper keeps among them when it says more than kind."""
    attributes = (payload.attributes if payload else None) or {}
    keys = (payload.unmapped_keys if payload else None) or []
    detailed = attributes.get(DETAILED_KIND_KEY)
    return {
        "unmapped": [(str(key), _pretty(attributes.get(key))) for key in keys],
        "attributes_text": _pretty(attributes) if attributes else "",
        "attribute_count": len(attributes),
        "detailed_kind": detailed if isinstance(detailed, str) and detailed != span.kind else "",
    }


@login_required
@require_GET
def span_detail(request: HttpRequest, pk: int, span_pk: int) -> HttpResponse:
    session = session_or_404(request, pk)
    span = queries.span_with_payload([session.project_id], span_pk)
    if span is None or span.session_id != session.pk:
        raise Http404("No such span")
    payload = getattr(span, "payload", None)
    context = {
        "session": session,
        "span": span,
        "sections": _payload_sections(payload),
        "stack_trace": payload.stack_trace if payload else "",
        **_scores_context(
            queries.scores_for_span(span),
            access.roles_of(request.user, [session.project_id]).get(session.project_id),
            request,
        ),
        **_attribute_context(span, payload),
    }
    if htmx_partial(request):
        return vary_on_htmx(render(request, "dashboard/span_detail.html#panel", context))
    context["nav"] = object_nav(request, session.project)
    return vary_on_htmx(render(request, "dashboard/span_detail.html", context))
