"""The review app's pages: home, health check, audit log and export, team roles, the queue, the item
page and its decisions, claims, bulk approval, the dashboard and the wellness setting."""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Generator
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh, reswap, retarget
from django_htmx.middleware import HtmxDetails

from accounts.roles import ROLE_LABELS, Role, role_required, roles_of, set_roles
from audit import chain
from audit.models import AuditEvent
from console import answer_quality, claims, comments, decisions, itempage, permissions, queues
from console import dashboard as dashboard_stats
from console.errors import ClaimConflict, DecisionConflict, ReviewError
from console.forms import ORDER_CHOICES, QUEUE_CHOICES, CommentForm, OverrideForm, ReasonForm
from console.models import Classification, DisturbingCategory, Item, Stage
from console.spreadsheets import csv_cell
from console.streaming import streamed
from console.wellness import set_disturbing_categories
from policies_app.models import PolicyVersion


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    roles = roles_of(request.user)
    if Role.MODERATOR in roles:
        return redirect("console:items")
    if Role.POLICY_WRITER in roles:
        return redirect("policies:list")
    if Role.ADMIN in roles:
        return redirect("console:audit")
    return render(request, "console/no_role.html")


# The review console's pages (queue, item, decisions, dashboard) are at the end of this module.


def _audit_events(request: HttpRequest):
    events = AuditEvent.objects.all()
    if action := request.GET.get("action", "").strip():
        events = events.filter(action__startswith=action)
    if actor := request.GET.get("actor", "").strip():
        events = events.filter(actor_name=actor)
    if object_type := request.GET.get("object_type", "").strip():
        events = events.filter(object_type=object_type)
    return events


@require_GET
@role_required(Role.ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    page = Paginator(_audit_events(request), 100).get_page(request.GET.get("page"))
    return render(request, "console/audit_log.html", {"page": page, "filters": request.GET})


EXPORT_FIELDS = (
    "id", "created_at", "actor_name", "action", "object_type", "object_id", "object_repr", "before", "after",
    "seq", "prev_hash", "hash", "payload_digest", "erased_at",
)


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@role_required(Role.ADMIN)
def audit_export(request: HttpRequest, fmt: str) -> StreamingHttpResponse | HttpResponse:
    """Stream the (filtered) audit log as CSV or JSON Lines, oldest first, without loading it whole."""
    if fmt not in ("csv", "jsonl"):
        return HttpResponse("Export formats are csv and jsonl", status=400, content_type="text/plain")
    events = _audit_events(request).order_by("created_at", "id").values_list(*EXPORT_FIELDS)

    def rows() -> Generator[str]:
        if fmt == "csv":
            writer = csv.writer(_Echo())
            yield writer.writerow(EXPORT_FIELDS)
            for row in events.iterator(chunk_size=2000):
                values = [
                    v.isoformat() if k == "created_at" else v for k, v in zip(EXPORT_FIELDS, row, strict=True)
                ]
                cells = [json.dumps(v) if isinstance(v, dict | list) else v for v in values]
                yield writer.writerow([csv_cell(cell) for cell in cells])
        else:
            for row in events.iterator(chunk_size=2000):
                record = dict(zip(EXPORT_FIELDS, row, strict=True))
                record["created_at"] = record["created_at"].isoformat()
                yield json.dumps(record) + "\n"

    content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
    response = StreamingHttpResponse(streamed(request, rows()), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="audit-log.{fmt}"'
    return response


@require_GET
@role_required(Role.ADMIN)
def audit_checkpoint(request: HttpRequest) -> JsonResponse:
    """A signed statement of the audit chain's head, verified first (no checkpoint blesses a broken
    chain); `manage.py verify_audit --checkpoint FILE` later holds the chain to it."""
    result = chain.verify()
    if not result.ok:
        return JsonResponse({"error": str(result)}, status=409)
    response = JsonResponse(chain.checkpoint(result), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="audit-checkpoint-{result.head_seq}.json"'
    return response


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def team(request: HttpRequest) -> HttpResponse:
    users = get_user_model().objects.filter(is_active=True).prefetch_related("groups").order_by("username")
    if request.method == "POST":
        user = get_object_or_404(users, pk=request.POST.get("user"))
        wanted = {Role(r) for r in request.POST.getlist("roles") if r in Role._value2member_map_}
        try:
            set_roles(actor=request.user, user=user, roles=wanted)
        except ValueError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Roles of {user.get_username()} saved")
        if request.htmx:
            return HttpResponseClientRefresh()
        return redirect("console:team")
    rows = [(user, roles_of(user)) for user in users]
    return render(request, "console/team.html", {"rows": rows, "roles": list(Role), "role_labels": ROLE_LABELS})


# --- The review console: queue, item, decisions, dashboard ------------------------------------------

REVIEWERS = (Role.MODERATOR, Role.ADMIN)
SESSION_FILTERS = "review_filters"  # the queue selection last shown: "next" and auto-advance follow it
SESSION_RECENT = "review_recent"  # items opened, newest last: the "previous" key walks back through them


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _get_item_for_user(request: HtmxHttpRequest, item_id: int) -> Item:
    # Every reviewer may read every item; the role decorator has already checked the role.
    return get_object_or_404(Item, pk=item_id)


def _get_classification_for_user(request: HtmxHttpRequest, classification_id: int) -> Classification:
    return get_object_or_404(
        Classification.objects.select_related("item", "policy_version__policy"), pk=classification_id
    )


def _session_filters(request: HttpRequest) -> queues.Filters:
    filters, _ = queues.parse_filters(request.session.get(SESSION_FILTERS) or {})
    return filters


@require_GET
@role_required(*REVIEWERS)
def item_list(request: HtmxHttpRequest) -> HttpResponse:
    """The review queue: tabs with counts, filters, keyset pages, live arrivals, bulk approve."""
    filters, form = queues.parse_filters(request.GET)
    if request.session.get(SESSION_FILTERS) != filters.params():  # saving a session costs a write
        request.session[SESSION_FILTERS] = filters.params()
    counts, in_flight = queues.counts_for_page()
    page, valid_cursor = queues.page(filters, after=request.GET.get("after", ""), before=request.GET.get("before", ""),
                                     size=queues.PAGE_SIZE, viewer=request.user)
    if not valid_cursor:
        messages.warning(request, "That page link is no longer valid: showing the first page")
    context = {
        "page": page,
        "filters": filters,
        "form": form,
        "tabs": queues.tabs(counts, filters),
        "in_flight": in_flight,
        "policies": queues.policy_choices(),
        "orders": ORDER_CHOICES,
        "stages": Stage.choices,
        "viewer": request.user,
    }
    if request.htmx and not request.htmx.boosted:
        return render(request, "console/item_list.html#queue", context)
    return render(request, "console/item_list.html", context)


def _remember(request: HttpRequest, item_id: int) -> int | None:
    """Note the item as the latest opened; the one opened before it (for "previous")."""
    recent = [pk for pk in request.session.get(SESSION_RECENT, []) if pk != item_id]
    previous = recent[-1] if recent else None
    request.session[SESSION_RECENT] = [*recent[-19:], item_id]
    return previous


def _item_page(request: HtmxHttpRequest, item: Item, current_id: int | None, *, status: int = 200,
               **extra: Any) -> HttpResponse:
    context = itempage.item_context(item, request.user, current_id)
    context.update(previous_item=_remember(request, item.pk), filters=_session_filters(request), **extra)
    if "override_form" not in context and context.get("current") is not None:
        context["override_form"] = OverrideForm(labels=context["label_choices"], rules=context["policy_rules"])
    return render(request, "console/item_detail.html", context, status=status)


@require_GET
@role_required(*REVIEWERS)
def item_detail(request: HtmxHttpRequest, item_id: int) -> HttpResponse:
    """One item beside the policy its verdict used. Opening it claims it, when it awaits a decision the
    viewer may take and no one else holds it."""
    item = _get_item_for_user(request, item_id)
    current = request.GET.get("c", "")
    # Read-only when it fails: someone else holds it, or nothing here is the viewer's to decide (the page says).
    with contextlib.suppress(ReviewError):
        claims.claim_item(user=request.user, item_id=item.pk)
    return _item_page(request, item, int(current) if current.isdigit() else None)


def _seen(request: HttpRequest) -> int | None:
    value = request.POST.get("seen", "")
    return int(value) if value.isdigit() else None


def _refused(request: HtmxHttpRequest, classification: Classification, error: str | list[str], *,
             status: int, **extra: Any) -> HttpResponse:
    """A decision that was not saved: the reason, on the page the moderator is looking at."""
    errors = [error] if isinstance(error, str) else error
    if request.htmx:
        return render(request, "console/_feedback.html", {"errors": errors}, status=status)
    return _item_page(request, classification.item, classification.pk, status=status, feedback_errors=errors,
                      **extra)


def _status_for(exc: ReviewError) -> int:
    return 409 if isinstance(exc, DecisionConflict | ClaimConflict) else 400


def _go(request: HtmxHttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _advance(request: HtmxHttpRequest, classification: Classification, done: str, *,
             stay: bool = True) -> HttpResponse:
    """After a decision: the item's next open verdict (unless leaving it), else the queue's next free
    item, else the queue."""
    item_id = classification.item_id
    others = Classification.objects.awaiting_review().filter(item_id=item_id).order_by("created_at", "id")
    for other in others if stay else []:
        if permissions.can_decide(request.user, other):
            messages.success(request, f"{done}. This item has another verdict to review.")
            return _go(request, f"{reverse('console:item', args=[item_id])}?c={other.pk}")
    next_id = claims.claim_next(user=request.user, filters=_session_filters(request),
                                  leaving=None if stay else item_id)
    if next_id is None:
        messages.success(request, f"{done}. Nothing else in this queue is free: well done.")
        return _go(request, reverse("console:items") + "?" + _session_filters(request).querystring())
    messages.success(request, f"{done}. Next item:")
    return _go(request, reverse("console:item", args=[next_id]))


def _decided(classification: Classification, verb: str) -> str:
    return f"{verb} the {classification.policy_version} verdict on item #{classification.item_id}"


@require_POST
@role_required(*REVIEWERS)
def approve(request: HtmxHttpRequest, classification_id: int) -> HttpResponse:
    classification = _get_classification_for_user(request, classification_id)
    try:
        decisions.approve(user=request.user, classification_id=classification.pk, seen_review=_seen(request))
    except ReviewError as exc:
        return _refused(request, classification, str(exc), status=_status_for(exc))
    return _advance(request, classification, _decided(classification, "Approved"))


@require_POST
@role_required(*REVIEWERS)
def override(request: HtmxHttpRequest, classification_id: int) -> HttpResponse:
    classification = _get_classification_for_user(request, classification_id)
    version = classification.policy_version
    form = OverrideForm(request.POST, labels=version.label_choices(), rules=version.rule_ids)
    if not form.is_valid():
        errors = [f"{form.fields[name].label if name in form.fields else ''}: {message}".lstrip(": ")
                  for name, messages_ in form.errors.items() for message in messages_]
        return _refused(request, classification, errors, status=400, override_form=form, override_open=True)
    try:
        decisions.override(user=request.user, classification_id=classification.pk, seen_review=_seen(request),
                          **form.cleaned_data)
    except ReviewError as exc:
        return _refused(request, classification, str(exc), status=_status_for(exc), override_form=form,
                        override_open=True)
    shown = form.cleaned_data["label"] or form.cleaned_data["category"]
    return _advance(request, classification, _decided(classification, f"Overrode (now {shown})"))


@require_POST
@role_required(*REVIEWERS)
def escalate(request: HtmxHttpRequest, classification_id: int) -> HttpResponse:
    classification = _get_classification_for_user(request, classification_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return _refused(request, classification, "Say why a senior should look (the reason is required)",
                        status=400, escalate_open=True)
    try:
        decisions.escalate(user=request.user, classification_id=classification.pk, seen_review=_seen(request),
                          reason=form.cleaned_data["reason"])
    except ReviewError as exc:
        return _refused(request, classification, str(exc), status=_status_for(exc), escalate_open=True)
    return _advance(request, classification, _decided(classification, "Escalated"))


@require_POST
@role_required(*REVIEWERS)
def skip(request: HtmxHttpRequest, classification_id: int) -> HttpResponse:
    classification = _get_classification_for_user(request, classification_id)
    try:
        decisions.skip(user=request.user, classification_id=classification.pk)
    except ReviewError as exc:
        return _refused(request, classification, str(exc), status=400)
    return _advance(request, classification, f"Skipped item #{classification.item_id}", stay=False)


@require_POST
@role_required(*REVIEWERS)
def comment(request: HtmxHttpRequest, item_id: int) -> HttpResponse:
    item = _get_item_for_user(request, item_id)
    form = CommentForm(request.POST)
    current = request.POST.get("c", "")
    current_id = int(current) if current.isdigit() else None
    if form.is_valid():
        try:
            comments.add_comment(user=request.user, item_id=item.pk, text=form.cleaned_data["text"],
                                 classification_id=current_id)
        except ReviewError as exc:
            form.add_error("text", str(exc))
    if not form.is_valid():
        errors = [message for messages_ in form.errors.values() for message in messages_]
        if request.htmx:
            # The form targets the history; a refusal belongs in the feedback area.
            return reswap(retarget(render(request, "console/_feedback.html", {"errors": errors}, status=400),
                                   "#feedback"), "innerHTML")
        return _item_page(request, item, current_id, status=400, feedback_errors=errors)
    if request.htmx:
        context = itempage.item_context(item, request.user, current_id)
        return render(request, "console/_history.html", context)
    messages.success(request, "Comment added")
    return redirect(reverse("console:item", args=[item.pk]) + (f"?c={current_id}" if current_id else ""))


@require_POST
@role_required(*REVIEWERS)
def claim(request: HttpRequest, item_id: int) -> JsonResponse:
    """Take or renew the claim (the open item page calls this every minute)."""
    item = _get_item_for_user(request, item_id)
    try:
        held = claims.claim_item(user=request.user, item_id=item.pk)
    except ReviewError as exc:
        return JsonResponse({"error": str(exc)}, status=_status_for(exc))
    return JsonResponse({"until": held.expires_at.isoformat()})


@require_POST
@role_required(*REVIEWERS)
def release(request: HttpRequest, item_id: int) -> HttpResponse:
    """Give the item back (the page sends this when the moderator leaves it undecided)."""
    item = _get_item_for_user(request, item_id)
    claims.release_claim(user=request.user, item_id=item.pk)
    return HttpResponse(status=204)


@require_POST
@role_required(*REVIEWERS)
def next_item(request: HtmxHttpRequest) -> HttpResponse:
    """Claim the next free item of the current queue selection and open it."""
    leaving = request.POST.get("leaving", "")
    filters = _session_filters(request)
    next_id = claims.claim_next(user=request.user, filters=filters,
                                  leaving=int(leaving) if leaving.isdigit() else None)
    if next_id is None:
        messages.info(request, "Nothing in this queue is free right now: every item is decided or claimed")
        return _go(request, reverse("console:items") + "?" + filters.querystring())
    return _go(request, reverse("console:item", args=[next_id]))


@require_POST
@role_required(*REVIEWERS)
def bulk_approve(request: HtmxHttpRequest) -> HttpResponse:
    """Approve the verdicts selected on the queue page: first a confirmation listing them, then the
    approval itself (what could not be approved is listed with the reason)."""
    ids = [int(pk) for pk in request.POST.getlist("ids") if pk.isdigit()]
    if not ids:
        messages.error(request, "Select the verdicts to approve first (x selects the focused row)")
        return _go(request, reverse("console:items") + "?" + _session_filters(request).querystring())
    if request.POST.get("confirm") != "yes":
        rows = list(queues.with_row_fields(Classification.objects.filter(pk__in=ids[: decisions.BULK_LIMIT + 1]))
                    .order_by("created_at", "id"))
        context = {"rows": rows, "ids": [row.pk for row in rows], "too_many": len(ids) > decisions.BULK_LIMIT,
                   "limit": decisions.BULK_LIMIT, "filters": _session_filters(request)}
        template = "console/bulk_approve.html#confirm" if request.htmx else "console/bulk_approve.html"
        return render(request, template, context)
    try:
        result = decisions.bulk_approve(user=request.user, classification_ids=ids)
    except ReviewError as exc:
        messages.error(request, str(exc))
    else:
        if result.approved:
            messages.success(request, f"Approved {len(result.approved)} verdict{pluralize(len(result.approved))}")
        if result.refused:
            listed = "; ".join(f"#{pk}: {why}" for pk, why in result.refused[:10])
            more = f" (and {len(result.refused) - 10} more)" if len(result.refused) > 10 else ""
            messages.warning(request, f"Not approved: {listed}{more}")
    return _go(request, reverse("console:items") + "?" + _session_filters(request).querystring())


@require_GET
@role_required(Role.MODERATOR, Role.ADMIN, Role.POLICY_WRITER)
def dashboard(request: HttpRequest) -> HttpResponse:
    """Queue depth, throughput, and how far moderators agree with each policy version's model."""
    counts = queues.counts()
    oldest = queues.oldest_waiting()
    columns, peak = dashboard_stats.decisions_per_hour()
    context = {
        "counts": counts,
        "depth": dashboard_stats.hbars([(label, counts[value]) for value, label in QUEUE_CHOICES[1:]],
                                       css="depth"),
        "in_flight": queues.in_flight(),
        "oldest": oldest,
        "oldest_queue": dict(QUEUE_CHOICES).get(oldest.queue, "") if oldest else "",
        "columns": columns,
        "peak": peak,
        "decided_24h": sum(column.total for column in columns),
        "versions": dashboard_stats.version_stats(),
        "answer_quality": answer_quality.version_quality(),
        "bar_width": dashboard_stats.BAR_WIDTH,
    }
    return render(request, "console/dashboard.html", context)


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def wellness(request: HttpRequest) -> HttpResponse:
    """Which categories are disturbing enough to blur their content until the moderator asks."""
    if request.method == "POST":
        codes = request.POST.get("codes", "").replace(",", "\n").splitlines()
        try:
            saved = set_disturbing_categories(actor=request.user, codes=codes)
        except ReviewError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Blurred categories saved: {', '.join(saved) or 'none'}")
        return redirect("console:wellness")
    known = sorted({code for labels in PolicyVersion.objects.values_list("labels", flat=True) for code in labels or []})
    current = list(DisturbingCategory.objects.values_list("code", flat=True))
    return render(request, "console/wellness.html", {"current": current, "known": known})
