"""What every dashboard page shares: the current project and the header (Nav), the page shown
to someone with no project, access to one object (another project's is a 404), htmx fragments,
the time parameters of the query string and links to the read API.

`project_page` is the usual entry: it resolves the current project and hands the view its Nav,
or answers the no-project page, so a view starts with what it is about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.dateparse import parse_date, parse_datetime

from analytics import queries
from ingest.models import Project, Session

PROJECT_SESSION_KEY = "dashboard_project"
PAGE_SIZE = 50


@dataclass(frozen=True)
class Nav:
    """What the header needs: the user's projects, the current one, where switching leads."""

    projects: list[Project]
    project: Project
    switch_path: str


def user_projects(request: HttpRequest) -> list[Project]:
    return list(queries.project_list(queries.projects_for_user(request.user)))


def remember(request: HttpRequest, project: Project) -> None:
    if request.session.get(PROJECT_SESSION_KEY) != project.slug:
        request.session[PROJECT_SESSION_KEY] = project.slug


def current_nav(request: HttpRequest) -> Nav | None:
    """`?project=<slug>` (404 unless a member), else the remembered project, else the first."""
    projects = user_projects(request)
    by_slug = {project.slug: project for project in projects}
    if "project" in request.GET:
        project = by_slug.get(request.GET["project"])
        if project is None:
            raise Http404("No such project")
    else:
        remembered = by_slug.get(request.session.get(PROJECT_SESSION_KEY, ""))
        project = remembered or (projects[0] if projects else None)
    if project is None:
        return None
    remember(request, project)
    return Nav(projects, project, request.path)


def object_nav(request: HttpRequest, project: Project) -> Nav:
    """Header for a page about one object: the object's project becomes the current one."""
    remember(request, project)
    return Nav(user_projects(request), project, reverse("dashboard:session-list"))


def session_or_404(request: HttpRequest, pk: int) -> Session:
    visible = queries.sessions_for_projects(queries.projects_for_user(request.user))
    return get_object_or_404(visible, pk=pk)


def no_project(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/no_project.html", {"nav": None}, status=200)


def htmx_partial(request: HttpRequest) -> bool:
    # A history restore (back button after a cache miss) needs the whole page, not a fragment.
    return bool(request.headers.get("HX-Request")) and not request.headers.get(
        "HX-History-Restore-Request"
    )


def vary_on_htmx(response: HttpResponse) -> HttpResponse:
    patch_vary_headers(response, ["HX-Request"])
    return response


def project_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The view gets the current project's Nav after the request; a person with no project gets
    the no-project page instead. (Login and method decorators go outside it.)"""

    @wraps(view)
    def with_nav(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        nav = current_nav(request)
        if nav is None:
            return no_project(request)
        return view(request, nav, *args, **kwargs)

    return with_nav


def parse_time(value: str | None) -> datetime | None:
    """An ISO date or datetime from the query string (naive means UTC); None if absent or bad."""
    try:
        parsed = parse_datetime(value or "")
        day = None if parsed else parse_date(value or "")
    except ValueError:
        return None
    if day is not None:
        return datetime.combine(day, time.min, tzinfo=UTC)
    if parsed is not None and timezone.is_naive(parsed):
        return timezone.make_aware(parsed, UTC)
    return parsed


def api_url(name: str, **params: Any) -> str:
    """The read API's URL `name` with the parameters that have a value (links to CSV exports)."""
    return f"{reverse(name)}?{urlencode({k: v for k, v in params.items() if v not in ('', None)})}"
