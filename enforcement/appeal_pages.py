"""The appeals pages: the queue (open appeals by due date, live), one appeal with the decision it
complains about and the decide form, and the admins' filing of an appeal from the item page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.roles import Role, role_required
from console.itempage import link_rules
from enforcement import appeals, shapes
from enforcement.models import Appeal, AppealStatus, Complainant
from safeguard.labels import is_safe_label

REVIEWERS = (Role.MODERATOR, Role.ADMIN)
FILTERS = {"open": [AppealStatus.OPEN], "upheld": [AppealStatus.UPHELD], "reversed": [AppealStatus.REVERSED],
           "decided": [AppealStatus.UPHELD, AppealStatus.REVERSED]}
QUEUE_LIMIT = 500  # rows one page shows; the open queue is ordered by due date, so the most urgent come first


def queue_rows(status: str) -> QuerySet[Appeal]:
    """Appeals of a filter (FILTERS): open ones by due date, decided ones newest first."""
    rows = Appeal.objects.filter(status__in=FILTERS[status]).select_related(
        "item", "action__policy_version__policy", "decided_by")
    return rows.order_by("due_at", "id") if status == "open" else rows.order_by("-decided_at", "-id")


def row_context(appeal: Appeal, now: Any = None) -> dict[str, Any]:
    """What `_appeal_row.html` shows (the queue page and the pushed rows alike)."""
    return {"appeal": appeal, "overdue": appeal.status == AppealStatus.OPEN and appeal.due_at < (now or timezone.now())}


def _get_appeal_for_user(appeal_id: int) -> Appeal:
    # Every reviewer may read every appeal; the role decorator has checked the role.
    return get_object_or_404(
        Appeal.objects.select_related("item", "action__classification__policy_version__policy", "action__review",
                                      "action__review__reviewer", "original_reviewer", "decided_by",
                                      "reversal", "filed_by"),
        pk=appeal_id)


@require_GET
@role_required(*REVIEWERS)
def appeal_queue(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "open")
    if status not in FILTERS:
        status = "open"
    now = timezone.now()
    rows = [row_context(a, now) for a in queue_rows(status)[:QUEUE_LIMIT]]
    return render(request, "enforcement/appeal_queue.html",
                  {"rows": rows, "status": status, "filters": list(FILTERS), "limit": QUEUE_LIMIT})


def _reversal_label(appeal: Appeal) -> str:
    """The label a reversal most likely means: the first of the policy's labels with the other meaning
    (a safe one for a violation, a violating one for a safe decision)."""
    version = appeal.action.policy_version
    return next((code for code, _ in version.label_choices() if is_safe_label(code) == appeal.action.violation), "")


def _detail(request: HttpRequest, appeal: Appeal, *, status: int = 200, error: str = "",
            form: dict[str, str] | None = None) -> HttpResponse:
    action = appeal.action
    classification = action.classification
    version = classification.policy_version
    statement = getattr(action, "statement", None)
    shown = statement if statement is not None and statement.withdrawn_at is None else None
    known = set(version.rule_ids)
    context = {
        "appeal": appeal, "item": appeal.item, "action": action, "classification": classification,
        "version": version, "review": action.review, "statement": shown,
        "shape": shapes.statement_shape(shown) if shown else None,
        "reasoning_html": link_rules(classification.reasoning, known),
        "rationale_html": link_rules(classification.rationale, known),
        "refusal": appeals.refusal_for(request.user, appeal), "error": error,
        "overdue": row_context(appeal)["overdue"],
        "label_choices": version.label_choices(),
        "form": form or {"outcome": "", "reason": "", "label": _reversal_label(appeal)},
    }
    return render(request, "enforcement/appeal_detail.html", context, status=status)


@require_GET
@role_required(*REVIEWERS)
def appeal_detail(request: HttpRequest, appeal_id: int) -> HttpResponse:
    return _detail(request, _get_appeal_for_user(appeal_id))


@require_POST
@role_required(*REVIEWERS)
def appeal_decide(request: HttpRequest, appeal_id: int) -> HttpResponse:
    appeal = _get_appeal_for_user(appeal_id)
    form = {name: request.POST.get(name, "") for name in ("outcome", "reason", "label")}
    try:
        appeals.decide_appeal(user=request.user, appeal_id=appeal.pk, outcome=form["outcome"], reason=form["reason"],
                              label=form["label"] if form["outcome"] == AppealStatus.REVERSED else "")
    except appeals.AppealError as exc:
        error = f"{exc.field}: {exc}" if exc.field else str(exc)
        return _detail(request, _get_appeal_for_user(appeal_id), error=error, form=form,
                       status=409 if isinstance(exc, appeals.AppealConflict) else 400)
    messages.success(request, f"Appeal {appeal.pk} {form['outcome']}")
    return redirect("appeals:detail", appeal_id=appeal.pk)


@require_POST
@role_required(Role.ADMIN)
def appeal_file(request: HttpRequest, item_id: int) -> HttpResponse:
    """An admin files a complaint received another way; back to the item page when it is refused."""
    try:
        appeal = appeals.file_by_admin(user=request.user, item_id=item_id, reason=request.POST.get("reason", ""),
                                       complainant=request.POST.get("complainant", Complainant.AFFECTED),
                                       policy=request.POST.get("policy", ""))
    except appeals.AppealError as exc:
        messages.error(request, f"The appeal was not filed: {exc.field + ': ' if exc.field else ''}{exc}")
        return redirect("console:item", item_id=item_id)
    messages.success(request, f"Appeal {appeal.pk} filed; due {appeal.due_at:%Y-%m-%d %H:%M}")
    return redirect("appeals:detail", appeal_id=appeal.pk)
