"""Pages for multi-agent systems: messages, dead letters, the sequence diagram, the agent graph
and agent page, workflows and their Gantt timeline. Same shape as dashboard/views.py: resolve
the project, read (analytics.queries), compute (pure), chart, render."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from analytics import queries
from analytics.agent_names import rollup_window
from analytics.messaging import agent_activity, agent_graph, causality, failure_patterns
from analytics.overview import RANGES, TimeWindow, time_window
from analytics.refresh import expected_workflow_durations
from analytics.tasks import enqueue_requeue_webhook
from analytics.workflows import workflow_name_stats
from api.filters import DeadLetterFilter, MessageFilter
from dashboard import charts
from dashboard.gantt import gantt
from dashboard.pages import (
    PAGE_SIZE,
    Nav,
    htmx_partial,
    object_nav,
    parse_time,
    project_page,
    session_or_404,
    vary_on_htmx,
)
from dashboard.sequence import density, lifelines, sequence_arrows, sequence_window
from ingest import access, audit, store
from ingest.models import AuditEntry, Message, Workflow

SEQUENCE_WINDOW = 200
MAX_SEQUENCE_WINDOW = 1000
AGENT_MESSAGE_LIMIT = 50
AGENT_INSTANCE_LIMIT = 200
WORKFLOW_STATS_RUNS = 500
DEAD_LETTER_STATES = ("open", "requeued", "resolved", "recovered", "all")


def _window(request: HttpRequest) -> TimeWindow:
    return time_window(
        request.GET.get("range"),
        now=timezone.now(),
        start=parse_time(request.GET.get("from")),
        end=parse_time(request.GET.get("to")),
    )


def _list_params(request: HttpRequest, nav: Nav, *, drop: tuple[str, ...] = ()) -> QueryDict:
    """The filter's parameters: the query string, `range=7d` as `after`, scoped to the project."""
    params = request.GET.copy()
    for key in ("page", "format", "range", *drop):
        params.pop(key, None)
    if request.GET.get("range", "") in RANGES:
        since = timezone.now() - RANGES[request.GET["range"]][0]
        params["after"] = since.isoformat(timespec="seconds")
        params.pop("before", None)
    params["project"] = nav.project.slug
    return params


def _export_url(name: str, params: QueryDict) -> str:
    export = params.copy()
    export["format"] = "csv"
    return f"{reverse(name)}?{export.urlencode()}"


def _page(request: HttpRequest, rows: Any) -> Any:
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


# --- Messages ----------------------------------------------------------------------------------


@login_required
@require_GET
@project_page
def message_list(request: HttpRequest, nav: Nav) -> HttpResponse:
    params = _list_params(request, nav)
    rows = queries.messages_for_projects([nav.project.pk])
    filterset = MessageFilter(params, queryset=rows, request=request)
    page = _page(request, filterset.qs if filterset.is_valid() else rows.none())
    context = {
        "nav": nav,
        "filterset": filterset,
        "page": page,
        "rows": list(page.object_list),
        "ranges": list(RANGES),
        "statuses": Message.Stage.values,
        "export_url": _export_url("api:message-list", params),
    }
    template = (
        "dashboard/messages.html#rows" if htmx_partial(request) else "dashboard/messages.html"
    )
    return vary_on_htmx(render(request, template, context))


def _message_context(message: Message) -> dict[str, Any]:
    """The lifecycle timeline (offsets from the first record) and the causality chain."""
    events = queries.message_events(message)
    origin = events[0].at if events else message.started_at
    ancestors, descendants = causality(message.message_id, queries.causality_links(message))
    linked = queries.messages_by_message_id(message.session_id, [*ancestors, *descendants])
    body = getattr(message, "body", None)
    metadata = (body.metadata if body else None) or {}
    return {
        "message": message,
        "body": body,
        # A hand-off the framework only implied (ingest keeps the rule that found it).
        "inferred_rule": (
            str(metadata.get("observatory.rule") or "inferred")
            if metadata.get("observatory.inferred")
            else ""
        ),
        "events": [(event, (event.at - origin).total_seconds() * 1000) for event in events],
        "ancestors": [(mid, linked.get(mid)) for mid in reversed(ancestors)],
        "descendants": [(mid, linked.get(mid)) for mid in descendants],
    }


@login_required
@require_GET
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = queries.message_with_content(queries.projects_for_user(request.user), pk)
    if message is None:
        raise Http404("No such message")
    context = _message_context(message)
    if htmx_partial(request):
        return vary_on_htmx(render(request, "dashboard/message_detail.html#panel", context))
    context["nav"] = object_nav(request, message.project)
    return vary_on_htmx(render(request, "dashboard/message_detail.html", context))


# --- Dead letters ------------------------------------------------------------------------------


@login_required
@require_GET
@project_page
def dead_letters(request: HttpRequest, nav: Nav) -> HttpResponse:
    state = request.GET.get("state", "open")
    state = state if state in DEAD_LETTER_STATES else "open"
    params = _list_params(request, nav, drop=("state", "edge"))
    if state != "all":
        params["state"] = state
    rows = queries.dead_letters_for_projects([nav.project.pk])
    filterset = DeadLetterFilter(params, queryset=rows, request=request)
    shown = filterset.qs if filterset.is_valid() else rows.none()
    patterns = queries.dead_letter_pattern_rows(shown)
    page = _page(request, shown)
    context = {
        "nav": nav,
        "filterset": filterset,
        "page": page,
        "rows": list(page.object_list),
        "state": state,
        "states": DEAD_LETTER_STATES,
        "ranges": list(RANGES),
        "by_error": failure_patterns(patterns["error_type"], key="error_type")[:10],
        "by_edge": failure_patterns(patterns["edge"], key="edge")[:10],
        "export_url": _export_url("api:dead-letter-list", params),
    }
    return render(request, "dashboard/dead_letters.html", context)


@login_required
@require_POST
def dead_letter_action(request: HttpRequest) -> HttpResponse:
    """Requeue or resolve the selected dead letters (one, or many from the table's checkboxes)."""
    one = request.POST.get("one", "")
    ids = (
        [int(one)]
        if one.isdecimal()
        else [int(v) for v in request.POST.getlist("ids") if v.isdecimal()]
    )
    chosen = queries.dead_letters_for_projects(queries.projects_for_user(request.user))
    chosen = chosen.filter(pk__in=ids)
    resolving = request.POST.get("action") == "resolve" and not one
    access.require(
        request.user,
        set(chosen.values_list("project_id", flat=True)),
        access.Action.RESOLVE_DEAD_LETTERS if resolving else access.Action.REQUEUE_DEAD_LETTERS,
    )
    if not ids:
        flash.warning(request, "No messages were selected.")
    elif resolving:
        note = request.POST.get("note", "")
        with transaction.atomic():
            rows = list(chosen.exclude(dead_letter_state="").values_list("pk", "project_id"))
            count = store.resolve_messages(chosen, note=note)
            audit.record_per_project(
                request,
                AuditEntry.Action.DEAD_LETTER_RESOLVE,
                rows,
                noun="dead letters",
                changes={"note": [None, note[:500]]} if note else None,
            )
        flash.success(request, f"{count} message(s) resolved.")
    else:
        with transaction.atomic():
            rows = list(chosen.exclude(dead_letter_state="").values_list("pk", "project_id"))
            pks = store.requeue_messages(chosen)
            audit.record_per_project(
                request, AuditEntry.Action.DEAD_LETTER_REQUEUE, rows, noun="dead letters"
            )
        transaction.on_commit(partial(enqueue_requeue_webhook, pks))
        flash.success(
            request, f"{len(pks)} message(s) requeued: the agent system's next poll gets them."
        )
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("dashboard:dead-letters")
    return redirect(back)


# --- Sequence diagram --------------------------------------------------------------------------


def _int(request: HttpRequest, name: str, default: int) -> int:
    value = request.GET.get(name, "")
    return int(value) if value.isdecimal() else default


def _sequence_context(request: HttpRequest, session: Any) -> dict[str, Any]:
    times = queries.session_message_times(session)
    size = min(_int(request, "size", SEQUENCE_WINDOW), MAX_SEQUENCE_WINDOW)
    window = sequence_window(len(times), offset=_int(request, "start", 0), size=size)
    rows = queries.sequence_messages(session, offset=window.offset, limit=window.size)
    agents = lifelines(rows)
    arrows = sequence_arrows(rows, agents, origin=times[0] if times else None)
    shown = (times[window.offset], times[window.last - 1]) if rows else None
    return {
        "window": window,
        "agents": agents,
        "arrow_count": len(arrows),
        "failed_count": sum(a.group in ("failed", "dead") for a in arrows),
        "sequence": charts.figure_data(charts.sequence_chart(arrows, agents)) if rows else None,
        "overview": (
            charts.figure_data(charts.density_chart(density(times), window=shown))
            if len(times) > window.size
            else None
        ),
    }


@login_required
@require_GET
def session_messages(request: HttpRequest, pk: int) -> HttpResponse:
    session = session_or_404(request, pk)
    context = {
        "nav": object_nav(request, session.project),
        "session": session,
        **_sequence_context(request, session),
    }
    return render(request, "dashboard/session_messages.html", context)


# --- Agents ------------------------------------------------------------------------------------


@login_required
@require_GET
@project_page
def agent_list(request: HttpRequest, nav: Nav) -> HttpResponse:
    window = _window(request)
    edges = queries.edge_frame(nav.project.pk, since=window.since, until=window.until)
    graph = agent_graph(edges)
    table = queries.agent_name_table(nav.project.pk, since=window.since, until=window.until)
    name = request.GET.get("name", "").strip()
    if name:
        table = table[table["name"].str.contains(name, case=False, regex=False)]
    page = _page(request, _records(table))
    context = {
        "nav": nav,
        "window": window,
        "ranges": list(RANGES),
        "graph": charts.figure_data(charts.agent_graph_chart(graph)) if graph.edges else None,
        "edges": graph.edges,
        "page": page,
        "agents": list(page.object_list),
        "edge_export_url": _edge_export_url(nav, window),
        "csv_url": _agents_csv_url(nav, window, "api:agent-list"),
        "instances_csv_url": _agents_csv_url(nav, window, "api:agent-instance-list"),
    }
    return render(request, "dashboard/agents.html", context)


@login_required
@require_GET
@project_page
def agent_name_detail(request: HttpRequest, nav: Nav, name: str) -> HttpResponse:
    """One agent name across the sessions of the range: its figures, instances and messages."""
    window = _window(request)
    span = {"since": window.since, "until": window.until}
    rows = _records(queries.agent_name_table(nav.project.pk, name=name, **span))
    if not rows:
        raise Http404("No agent by that name in this range")
    _, _, days = rollup_window(window.since, window.until)
    ids = queries.agent_name_ids(nav.project.pk, name, **span)
    context = {
        "nav": nav,
        "window": window,
        "ranges": list(RANGES),
        "agent": rows[0],
        "chart": charts.figure_data(charts.daily_calls_chart(days, rows[0]["daily_calls"])),
        "instances": queries.agent_name_instances(
            nav.project.pk, name, limit=AGENT_INSTANCE_LIMIT, **span
        ),
        "messages": queries.agent_name_messages(
            nav.project.pk, ids, limit=AGENT_MESSAGE_LIMIT, **span
        ),
    }
    return render(request, "dashboard/agent_name.html", context)


def _records(frame: Any) -> list[dict[str, Any]]:
    return list(frame.astype(object).where(frame.notna(), None).to_dict("records"))


def _agents_csv_url(nav: Nav, window: TimeWindow, url_name: str) -> str:
    params = QueryDict(mutable=True)
    params.update({"project": nav.project.slug, "format": "csv"})
    if url_name == "api:agent-list":
        params.update({"since": window.since.isoformat(), "until": window.until.isoformat()})
    return f"{reverse(url_name)}?{params.urlencode()}"


def _edge_export_url(nav: Nav, window: TimeWindow) -> str:
    params = QueryDict(mutable=True)
    params.update(
        {
            "project": nav.project.slug,
            "since": window.since.isoformat(),
            "until": window.until.isoformat(),
            "format": "csv",
        }
    )
    return f"{reverse('api:agent-edge-list')}?{params.urlencode()}"


@login_required
@require_GET
def agent_detail(request: HttpRequest, pk: int) -> HttpResponse:
    agent = queries.agent_for_projects(queries.projects_for_user(request.user), pk)
    if agent is None:
        raise Http404("No such agent")
    context = {
        "nav": object_nav(request, agent.project),
        "agent": agent,
        "counts": queries.agent_message_counts(agent),
        "activity": agent_activity(queries.agent_span_frame(agent)),
        "messages": queries.agent_messages(agent, limit=AGENT_MESSAGE_LIMIT),
    }
    return render(request, "dashboard/agent_detail.html", context)


# --- Workflows ---------------------------------------------------------------------------------


@login_required
@require_GET
@project_page
def workflow_list(request: HttpRequest, nav: Nav) -> HttpResponse:
    window = _window(request)
    runs, steps = queries.workflow_run_frames(
        nav.project.pk, since=window.since, until=window.until, limit=WORKFLOW_STATS_RUNS
    )
    name = request.GET.get("name", "")
    recent = queries.workflows_for_projects([nav.project.pk]).filter(
        started_at__gte=window.since, started_at__lt=window.until
    )
    if name:
        recent = recent.filter(name=name)
    page = _page(request, recent)
    context = {
        "nav": nav,
        "window": window,
        "ranges": list(RANGES),
        "stats": workflow_name_stats(runs, steps).to_dict("records"),
        "page": page,
        "runs": list(page.object_list),
        "name": name,
    }
    return render(request, "dashboard/workflows.html", context)


@login_required
@require_GET
def workflow_detail(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = queries.workflow_for_projects(queries.projects_for_user(request.user), pk)
    if workflow is None:
        raise Http404("No such workflow")
    lanes = "step" if request.GET.get("lanes") == "step" else "agent"
    steps = queries.workflow_steps(workflow)
    chart = gantt(steps, by=lanes, origin=workflow.started_at)
    critical = set(chart.critical_ids)
    context = {
        "nav": object_nav(request, workflow.project),
        "workflow": workflow,
        "lanes": lanes,
        "gantt": charts.figure_data(charts.gantt_chart(chart)) if chart.bars else None,
        "chart": chart,
        "steps": _step_rows(steps, critical),
        "is_running": workflow.status == Workflow.Status.RUNNING,
        "expected": expected_workflow_durations([workflow], now=timezone.now()).get(workflow.pk),
    }
    return render(request, "dashboard/workflow_detail.html", context)


def _step_rows(steps: list[dict[str, Any]], critical: set[str]) -> list[dict[str, Any]]:
    """The steps table: critical-path flag, and dependencies by name (ids when unknown)."""
    names = {step["step_id"]: step["name"] or step["step_id"] for step in steps}
    return [
        {
            **step,
            "is_critical": step["step_id"] in critical,
            "depends_on_names": [names.get(d, d) for d in step["depends_on"] or []],
        }
        for step in steps
    ]
