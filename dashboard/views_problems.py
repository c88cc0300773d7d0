"""The ingest problems page: rejected records, replayed as stored or after a hand edit."""

from __future__ import annotations

from functools import partial

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from analytics import queries
from analytics.tasks import enqueue_session_summaries, enqueue_test_analysis
from dashboard.pages import PAGE_SIZE, Nav, project_page
from ingest import access, audit, store
from ingest.models import AuditEntry, IngestRejection

REJECTION_STATES = {"unresolved": False, "resolved": True, "all": None}


@login_required
@require_GET
@project_page
def ingest_problems(request: HttpRequest, nav: Nav) -> HttpResponse:
    state = request.GET.get("state", "unresolved")
    if state not in REJECTION_STATES:
        state = "unresolved"
    rejections = queries.rejections_with_raw_head(nav.project.pk, resolved=REJECTION_STATES[state])
    page = Paginator(rejections, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "nav": nav,
        "page": page,
        "rejections": list(page.object_list),
        "state": state,
        "states": list(REJECTION_STATES),
        "editable_chars": queries.REJECTION_EDITABLE_CHARS,
    }
    return render(request, "dashboard/ingest_problems.html", context)


def _replay(request: HttpRequest, rejection: IngestRejection, raw_text: str) -> store.ReplayOutcome:
    edited = raw_text != rejection.raw
    with transaction.atomic():
        outcome = store.replay_rejection(
            rejection, raw_text, max_string_chars=settings.OBSERVATORY_MAX_STRING_CHARS
        )
        audit.record(
            request,
            AuditEntry.Action.PROBLEM_REPLAY,
            project_id=rejection.project_id,
            target=f"ingest problem #{rejection.pk}",
            changes={
                "raw": [None, "edited by hand" if edited else "as received"],
                "result": [None, "stored" if outcome.ok else "still fails"],
            },
        )
    if outcome.ok:
        transaction.on_commit(partial(enqueue_session_summaries, outcome.session_pks))
    if outcome.has_test_results:
        transaction.on_commit(partial(enqueue_test_analysis, [rejection.project_id]))
    return outcome


def _back_to_problems(request: HttpRequest) -> HttpResponse:
    state = request.POST.get("state", "")
    url = reverse("dashboard:ingest-problems")
    return redirect(f"{url}?state={state}" if state in REJECTION_STATES else url)


@login_required
@require_POST
def rejection_replay(request: HttpRequest, pk: int) -> HttpResponse:
    visible = queries.projects_for_user(request.user)
    rejection = queries.rejection_for_projects(visible, pk)
    if rejection is None:
        raise Http404("No such ingest problem")
    raw_text = request.POST.get("raw")
    edited = raw_text is not None and raw_text != rejection.raw
    action = access.Action.REPLAY_EDITED_PROBLEM if edited else access.Action.REPLAY_PROBLEM
    access.require(request.user, rejection.project_id, action)
    outcome = _replay(
        request, rejection, raw_text if edited and raw_text is not None else rejection.raw
    )
    if outcome.ok:
        messages.success(request, f"Problem #{rejection.pk} replayed: {outcome.message}")
    else:
        messages.error(request, f"Problem #{rejection.pk} still fails: {outcome.message}")
    return _back_to_problems(request)


@login_required
@require_POST
def rejection_replay_selected(request: HttpRequest) -> HttpResponse:
    """Replay each selected problem as stored; one message sums up what happened."""
    visible = queries.projects_for_user(request.user)
    ids = [int(value) for value in request.POST.getlist("ids") if value.isdecimal()]
    chosen = list(queries.rejections_by_pk(visible, ids))
    access.require(request.user, {r.project_id for r in chosen}, access.Action.REPLAY_PROBLEM)
    outcomes = []
    for rejection in chosen:
        outcomes.append((rejection.pk, _replay(request, rejection, rejection.raw)))
    failed = [f"#{pk}: {outcome.message}" for pk, outcome in outcomes if not outcome.ok]
    replayed = len(outcomes) - len(failed)
    if not outcomes:
        messages.warning(request, "No problems were selected.")
    if replayed:
        messages.success(request, f"{replayed} problem(s) replayed.")
    if failed:
        messages.error(request, f"{len(failed)} still fail: " + "; ".join(failed))
    return _back_to_problems(request)
