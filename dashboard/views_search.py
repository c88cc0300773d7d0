"""The search page: what agents said, across the current project or every project of the user
(analytics/search.py does the searching; this only reads the form and pages the hits)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from analytics.overview import RANGES
from analytics.search import search
from analytics.search_index import KINDS
from analytics.search_query import SearchError, parse_query
from dashboard.pages import Nav, project_page

PAGE_HITS = 25
MAX_PAGE = 400  # 10,000 hits deep, as the API's CSV


@require_GET
@login_required
@project_page
def search_page(request: HttpRequest, nav: Nav) -> HttpResponse:
    text = request.GET.get("q", "").strip()
    scope = "all" if request.GET.get("scope") == "all" else "project"
    kinds = [kind for kind in request.GET.getlist("kind") if kind in KINDS] or list(KINDS)
    range_key = request.GET.get("range", "")
    page = _page_number(request.GET.get("page", "1"))
    context = {
        "nav": nav,
        "q": text,
        "scope": scope,
        "kinds": kinds,
        "all_kinds": KINDS,
        "range": range_key if range_key in RANGES else "",
        "ranges": list(RANGES),
        "hits": [],
        "page": page,
        "has_more": False,
        "error": "",
    }
    if not text:
        return render(request, "dashboard/search.html", context)
    try:
        query = parse_query(text)
    except SearchError as exc:
        context["error"] = str(exc)
        return render(request, "dashboard/search.html", context, status=400)
    projects = nav.projects if scope == "all" else [nav.project]
    after = timezone.now() - RANGES[range_key][0] if range_key in RANGES else None
    hits = search(
        [project.pk for project in projects],
        query,
        kinds=kinds,
        after=after,
        limit=PAGE_HITS + 1,
        offset=(page - 1) * PAGE_HITS,
    )
    context.update(hits=hits[:PAGE_HITS], has_more=len(hits) > PAGE_HITS)
    return render(request, "dashboard/search.html", context)


def _page_number(value: str) -> int:
    """A page past the last or not a number is the first page (a link, not a form, sends it)."""
    if value.isascii() and value.isdecimal() and 1 <= int(value) <= MAX_PAGE:
        return int(value)
    return 1
