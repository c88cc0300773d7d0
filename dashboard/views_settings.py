"""Settings pages for a project's admins (the project, members, API keys, price overrides,
mapping rules, the requeue webhook) and the audit log. Each page needs the role of its action
(ingest/access.py) to be seen as well as to be changed; each change is written through
ingest/projects.py and recorded by ingest/audit.py in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from analytics import deletion, queries
from api.filters_audit import AuditFilter
from dashboard.forms_settings import (
    ErasureForm,
    KeyForm,
    MemberAddForm,
    MessageRuleForm,
    PriceForm,
    ProjectNameForm,
    RedactionForm,
    RequeueWebhookForm,
    RetentionForm,
    RoleForm,
    SessionAttributesForm,
)
from dashboard.pages import PAGE_SIZE, Nav, current_nav, no_project
from ingest import access, audit, projects
from ingest.models import (
    ApiKey,
    AuditEntry,
    Membership,
    MessageMappingRule,
    ModelPrice,
    Project,
)

A = AuditEntry.Action
_Row = TypeVar("_Row", ApiKey, ModelPrice, MessageMappingRule)


def _nav_for(request: HttpRequest, action: access.Action) -> Nav | None:
    """The current project, when the user has the page's role in it (403 otherwise)."""
    nav = current_nav(request)
    if nav is not None:
        access.require(request.user, nav.project.pk, action)
    return nav


def _page(
    request: HttpRequest, template: str, nav: Nav | None, tab: str, **context: Any
) -> HttpResponse:
    invalid = any(getattr(f, "errors", None) for f in context.values() if hasattr(f, "is_bound"))
    status = 400 if request.method == "POST" and invalid else 200
    return render(request, template, {"nav": nav, "tab": tab, **context}, status=status)


def _row_or_404(request: HttpRequest, rows: QuerySet[_Row], pk: int, action: access.Action) -> _Row:
    """Row `pk` of one of the user's projects (404 for another project's), when the user has
    the role `action` needs in its project (403 otherwise)."""
    visible = queries.projects_for_user(request.user)
    row = get_object_or_404(rows.filter(project_id__in=visible), pk=pk)
    access.require(request.user, row.project_id, action)
    return row


def _recorded(
    request: HttpRequest,
    action: AuditEntry.Action,
    project_id: int,
    target: str,
    write: Callable[[], audit.Changes],
) -> None:
    """Make a change (`write` returns what it changed) and its audit entry, in one transaction."""
    with transaction.atomic():
        audit.record(request, action, project_id=project_id, target=target, changes=write())


def _back(url_name: str, project_id: int) -> HttpResponse:
    """To the settings page of the project just changed (which may not be the current one)."""
    slug = Project.objects.filter(pk=project_id).values_list("slug", flat=True).first()
    return redirect(f"{reverse(url_name)}?project={slug}")


# --- The project -------------------------------------------------------------------------------


@login_required
def project_settings(request: HttpRequest) -> HttpResponse:
    nav = _nav_for(request, access.Action.EDIT_PROJECT_SETTINGS)
    if nav is None:
        return redirect("dashboard:project-create")
    project = nav.project
    form = ProjectNameForm(request.POST or None, initial={"name": project.name})
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            changes = projects.update_project(project, name=form.cleaned_data["name"])
            if changes:
                audit.record(
                    request,
                    A.PROJECT_UPDATE,
                    project_id=project.pk,
                    target="project",
                    changes=changes,
                )
        messages.success(request, f"The project is now called “{project.name}”.")
        return redirect("dashboard:settings")
    return _page(request, "dashboard/settings_project.html", nav, "project", form=form)


@login_required
def project_create(request: HttpRequest) -> HttpResponse:
    """Any signed-in person may start a project; they become its owner."""
    form = ProjectNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                project = projects.create_project(form.cleaned_data["name"], owner=request.user)
                audit.record(
                    request,
                    A.PROJECT_CREATE,
                    project_id=project.pk,
                    target=f"project {project.slug}",
                    changes={"name": [None, project.name]},
                )
        except projects.SettingsError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"Project “{project.name}” created; you are its owner.")
            return redirect(f"{reverse('dashboard:settings-keys')}?project={project.slug}")
    nav = current_nav(request)
    return _page(request, "dashboard/settings_new_project.html", nav, "new", form=form)


# --- Members -----------------------------------------------------------------------------------


@login_required
def members(request: HttpRequest) -> HttpResponse:
    posted_role = request.POST.get("role") if request.method == "POST" else None
    nav = _nav_for(request, access.membership_action(posted_role))
    if nav is None:
        return no_project(request)
    form = MemberAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        role, user = form.cleaned_data["role"], form.cleaned_data["user"]
        try:
            with transaction.atomic():
                projects.add_member(nav.project, user, role)
                audit.record(
                    request,
                    A.MEMBER_ADD,
                    project_id=nav.project.pk,
                    target=f"member {user.get_username()}",
                    changes={"role": [None, role]},
                )
        except projects.SettingsError as exc:
            form.add_error("user", str(exc))
        else:
            messages.success(request, f"{user.get_username()} is now a {role} of the project.")
            return redirect("dashboard:settings-members")
    rows = Membership.objects.filter(project=nav.project).select_related("user")
    return _page(
        request,
        "dashboard/settings_members.html",
        nav,
        "members",
        form=form,
        memberships=rows.order_by("user__username"),
        roles=Membership.Role.choices,
    )


@login_required
@require_POST
def member_change(request: HttpRequest, pk: int) -> HttpResponse:
    """`role=<role>` changes a member's role; `remove=1` takes them out of the project."""
    membership = _membership_or_404(request, pk)
    removing = "remove" in request.POST
    form = RoleForm(request.POST if not removing else {"role": membership.role})
    if not form.is_valid():
        return HttpResponseBadRequest("Unknown role")
    new_role = None if removing else form.cleaned_data["role"]
    project_id, name = membership.project_id, membership.user.get_username()
    access.require(request.user, project_id, access.membership_action(membership.role, new_role))
    try:
        with transaction.atomic():
            if removing:
                changes = projects.remove_member(membership)
            else:
                changes = projects.set_role(membership, form.cleaned_data["role"])
            if changes:
                action = A.MEMBER_REMOVE if removing else A.MEMBER_ROLE
                audit.record(
                    request,
                    action,
                    project_id=project_id,
                    target=f"member {name}",
                    changes=changes,
                )
    except projects.SettingsError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{name} removed." if removing else f"{name} is now {new_role}.")
    return _back("dashboard:settings-members", project_id)


def _membership_or_404(request: HttpRequest, pk: int) -> Membership:
    visible = queries.projects_for_user(request.user)
    rows = Membership.objects.filter(project_id__in=visible).select_related("user")
    return get_object_or_404(rows, pk=pk)


# --- API keys ----------------------------------------------------------------------------------


@login_required
def keys(request: HttpRequest) -> HttpResponse:
    """The raw key of a new key is in this one answer only (not a redirect), never stored."""
    nav = _nav_for(request, access.Action.MANAGE_KEYS)
    if nav is None:
        return no_project(request)
    form = KeyForm(request.POST or None)
    created: tuple[ApiKey, str] | None = None
    if request.method == "POST" and form.is_valid():
        data, by = form.cleaned_data, request.user.get_username()
        with transaction.atomic():
            key, raw, changes = projects.create_key(
                nav.project, data["label"], data["scopes"], created_by=by
            )
            audit.record(
                request,
                A.KEY_CREATE,
                project_id=nav.project.pk,
                target=audit.key_label(key),
                changes=changes,
            )
        created, form = (key, raw), KeyForm()
    rows = ApiKey.objects.filter(project=nav.project).order_by("revoked_at", "-created_at")
    response = _page(
        request,
        "dashboard/settings_keys.html",
        nav,
        "keys",
        form=form,
        keys=rows,
        created=created,
        scopes=ApiKey.Scope.choices,
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    key = _row_or_404(request, ApiKey.objects.all(), pk, access.Action.MANAGE_KEYS)
    with transaction.atomic():
        changes = projects.revoke_key(key)
        if changes:
            audit.record(
                request,
                A.KEY_REVOKE,
                project_id=key.project_id,
                target=audit.key_label(key),
                changes=changes,
            )
    messages.success(request, f"Key {key.prefix}… ({key.name}) is revoked.")
    return _back("dashboard:settings-keys", key.project_id)


# --- Model price overrides ---------------------------------------------------------------------


@login_required
def prices(request: HttpRequest) -> HttpResponse:
    nav = _nav_for(request, access.Action.EDIT_PROJECT_SETTINGS)
    if nav is None:
        return no_project(request)
    rows = ModelPrice.objects.filter(project=nav.project).order_by("model")
    editing = rows.filter(pk=request.GET.get("edit", "")).first() if "edit" in request.GET else None
    form = PriceForm(request.POST or None, instance=editing)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        model = data.pop("model").strip()
        _recorded(
            request,
            A.PRICE_SAVE,
            nav.project.pk,
            f"price of {model}",
            lambda: projects.save_price(nav.project, model, **data),
        )
        messages.success(request, f"The price of {model} is saved.")
        return redirect("dashboard:settings-prices")
    return _page(
        request,
        "dashboard/settings_prices.html",
        nav,
        "prices",
        form=form,
        prices=rows,
        editing=editing,
    )


@login_required
@require_POST
def price_delete(request: HttpRequest, pk: int) -> HttpResponse:
    price = _row_or_404(request, ModelPrice.objects.all(), pk, access.Action.EDIT_PROJECT_SETTINGS)
    _recorded(
        request,
        A.PRICE_DELETE,
        price.project_id,
        f"price of {price.model}",
        lambda: projects.delete_price(price),
    )
    messages.success(request, f"The override for {price.model} is deleted.")
    return _back("dashboard:settings-prices", price.project_id)


# --- Session and message mapping ---------------------------------------------------------------


@login_required
def mapping(request: HttpRequest) -> HttpResponse:
    """Two forms: the session-id attributes (`form=session`) and a message rule (the rest)."""
    nav = _nav_for(request, access.Action.EDIT_PROJECT_SETTINGS)
    if nav is None:
        return no_project(request)
    project, posted = nav.project, request.POST if request.method == "POST" else None
    rules = MessageMappingRule.objects.filter(project=project).order_by("name")
    editing = (
        rules.filter(pk=request.GET.get("edit", "")).first() if "edit" in request.GET else None
    )
    before = projects.fields_of(editing, projects.RULE_FIELDS)
    is_session = posted is not None and posted.get("form") == "session"
    session_form = SessionAttributesForm(posted if is_session else None, instance=project)
    rule_form = MessageRuleForm(None if is_session else posted, instance=editing, project=project)
    if is_session and session_form.is_valid():
        value = session_form.cleaned_data["session_attributes"]
        project.refresh_from_db(fields=["session_attributes"])
        _save_project_field(request, project, session_attributes=value)
        return redirect("dashboard:settings-mapping")
    if posted is not None and not is_session and rule_form.is_valid():
        rule = rule_form.save(commit=False)
        rule.project = project
        _recorded(
            request,
            A.MESSAGE_RULE_SAVE,
            project.pk,
            f"message rule {rule.name}",
            lambda: projects.save_message_rule(rule, before),
        )
        messages.success(request, f"Message rule “{rule.name}” saved.")
        return redirect("dashboard:settings-mapping")
    return _page(
        request,
        "dashboard/settings_mapping.html",
        nav,
        "mapping",
        session_form=session_form,
        rule_form=rule_form,
        rules=rules,
        editing=editing,
    )


def _save_project_field(request: HttpRequest, project: Any, **value: str) -> None:
    with transaction.atomic():
        changes = projects.update_project(project, **value)
        if changes:
            audit.record(
                request,
                A.PROJECT_UPDATE,
                project_id=project.pk,
                target="project",
                changes=changes,
            )
    messages.success(request, "Saved.")


@login_required
@require_POST
def message_rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rules = MessageMappingRule.objects.all()
    rule = _row_or_404(request, rules, pk, access.Action.EDIT_PROJECT_SETTINGS)
    _recorded(
        request,
        A.MESSAGE_RULE_DELETE,
        rule.project_id,
        f"message rule {rule.name}",
        lambda: projects.delete_message_rule(rule),
    )
    messages.success(request, f"Message rule “{rule.name}” deleted.")
    return _back("dashboard:settings-mapping", rule.project_id)


# --- Channels ----------------------------------------------------------------------------------


@login_required
def channels(request: HttpRequest) -> HttpResponse:
    """Where notifications go: the requeue webhook here, each alert rule's channel (edited on
    the alerts page, where its secret is never shown again)."""
    nav = _nav_for(request, access.Action.EDIT_PROJECT_SETTINGS)
    if nav is None:
        return no_project(request)
    project = nav.project
    if request.method == "POST" and request.POST.get("form") == "rotate-secret":
        _recorded(
            request,
            A.PROJECT_UPDATE,
            project.pk,
            "requeue webhook secret",
            lambda: projects.rotate_requeue_webhook_secret(project),
        )
        messages.success(request, "New signing secret made: give it to the webhook's receiver.")
        return redirect(f"{reverse('dashboard:settings-channels')}?project={project.slug}")
    form = RequeueWebhookForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        url = form.cleaned_data["requeue_webhook_url"]
        project.refresh_from_db(fields=["requeue_webhook_url"])
        _save_project_field(request, project, requeue_webhook_url=url)
        return redirect("dashboard:settings-channels")
    rules = queries.alert_rules_for_projects([project.pk])
    return _page(
        request, "dashboard/settings_channels.html", nav, "channels", form=form, rules=rules
    )


# --- Data lifecycle ------------------------------------------------------------------------------


@login_required
def lifecycle(request: HttpRequest) -> HttpResponse:
    """Retention and PII redaction (admins), and erasure requests; docs/lifecycle.md."""
    nav = _nav_for(request, access.Action.EDIT_DATA_LIFECYCLE)
    if nav is None:
        return no_project(request)
    project, posted = nav.project, request.POST.get("form")
    retention = RetentionForm(
        request.POST if posted == "retention" else None,
        initial=_fields(project, "raw_retention_days", "derived_retention_days"),
    )
    redaction = RedactionForm(
        request.POST if posted == "redaction" else None, initial=_redaction_initial(project)
    )
    erasure = ErasureForm(request.POST if posted == "erasure" else None)
    if posted == "erasure" and erasure.is_valid():
        access.require(request.user, project.pk, access.Action.REQUEST_ERASURE)
        done = deletion.start_erasure(
            request, project, erasure.cleaned_data["kind"], erasure.cleaned_data["value"]
        )
        messages.success(request, _erasure_message(done))
        return redirect(f"{reverse('dashboard:settings-lifecycle')}?project={project.slug}")
    for form in (retention, redaction):
        if form.is_bound and form.is_valid():
            with transaction.atomic():
                changes = projects.update_lifecycle(project, **form.cleaned_data)
                if changes:
                    audit.record(
                        request,
                        A.LIFECYCLE_UPDATE,
                        project_id=project.pk,
                        target="data lifecycle",
                        changes=changes,
                    )
            messages.success(request, "Saved.")
            return redirect(f"{reverse('dashboard:settings-lifecycle')}?project={project.slug}")
    return _page(
        request,
        "dashboard/settings_lifecycle.html",
        nav,
        "lifecycle",
        retention_form=retention,
        redaction_form=redaction,
        erasure_form=erasure,
        retention=deletion.retention_of(project),
        erasures=list(deletion.erasures_for_project(project.pk)),
    )


def _fields(project: Project, *names: str) -> dict[str, Any]:
    return {name: getattr(project, name) for name in names}


def _redaction_initial(project: Project) -> dict[str, Any]:
    patterns = "\n".join(f"{p['name']}: {p['pattern']}" for p in project.redaction_patterns)
    return {
        "is_redaction_enabled": project.is_redaction_enabled,
        "redaction_detectors": project.redaction_detectors,
        "redaction_patterns": patterns,
    }


def _erasure_message(erasure: Any) -> str:
    if erasure.status == erasure.Status.DONE:
        return f"Erased: {erasure.session_count} session(s) deleted."
    return f"Erasure #{erasure.pk} of {erasure.session_count} sessions runs in the background."


# --- Audit log ---------------------------------------------------------------------------------


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    nav = _nav_for(request, access.Action.READ_AUDIT_LOG)
    if nav is None:
        return no_project(request)
    params = request.GET.copy()
    params["project"] = nav.project.slug
    found = AuditFilter(params, queryset=audit.entries_for_projects([nav.project.pk]))
    page = Paginator(found.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    params.pop("page", None)
    params["format"] = "csv"
    return render(
        request,
        "dashboard/audit.html",
        {
            "nav": nav,
            "filter": found,
            "page": page,
            "entries": [(e, audit.change_summary(e.changes)) for e in page.object_list],
            "actions": AuditEntry.Action.choices,
            "csv_url": f"{reverse('api:audit-list')}?{params.urlencode()}",
        },
    )
