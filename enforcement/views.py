"""The enforcement pages: a policy's action rules, the actions, statements, appeals and whole timeline
of an item (a fragment the item page loads with htmx), the admins' Transparency Database export and
transparency report. The appeals queue and pages are in enforcement.appeal_pages."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import Role, role_required, roles_of
from console.dashboard import hbars
from console.models import Item
from console.spreadsheets import csv_cell
from enforcement import actions, exports, report, rules, shapes, timeline
from enforcement.forms import ActionForm, ExportForm, ReportForm, RuleForm
from enforcement.models import Action, ActionType, Appeal, Complainant, EnforcementRule
from policies_app.models import Policy

RULE_WRITERS = (Role.POLICY_WRITER, Role.ADMIN)
REVIEWERS = (Role.MODERATOR, Role.ADMIN)


@require_http_methods(["GET", "POST"])
@role_required(*RULE_WRITERS, Role.MODERATOR)
def policy_rules(request: HttpRequest, slug: str) -> HttpResponse:
    """Which action each category of a policy calls for; policy writers and admins change them."""
    policy = get_object_or_404(Policy, slug=slug)
    can_edit = bool(roles_of(request.user) & set(RULE_WRITERS))
    form = RuleForm()
    if request.method == "POST":
        if not can_edit:
            return HttpResponse("Only policy writers and admins set enforcement rules", status=403)
        form = RuleForm(request.POST)
        if form.is_valid():
            try:
                rules.set_rule(user=request.user, policy=policy, **form.cleaned_data)
            except rules.RuleError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{form.cleaned_data['code']} now calls for "
                                          f"{ActionType(form.cleaned_data['action']).label.lower()}")
                return redirect("enforcement:policy", slug=policy.slug)
    mapped = {r.code: r for r in EnforcementRule.objects.filter(policy=policy)}
    codes = rules.policy_codes(policy)
    rows = [{"code": code, "rule": mapped.get(code)} for code in [*codes, *sorted(set(mapped) - set(codes))]]
    return render(request, "enforcement/policy_rules.html",
                  {"policy": policy, "rows": rows, "form": form, "can_edit": can_edit, "actions": ActionType.choices})


def _item_context(item: Item, user: Any, errors: dict[int, str] | None = None) -> dict[str, Any]:
    entries = []
    appeals = Appeal.objects.filter(item=item).order_by("received_at", "id")
    for action, statement in shapes.for_items([item.pk]):
        shown = statement if statement is not None and statement.withdrawn_at is None else None
        entries.append({"action": action, "statement": shown,
                        "shape": shapes.statement_shape(shown) if shown else None,
                        "error": (errors or {}).get(action.pk, ""),
                        "appeals": [a for a in appeals if a.action_id == action.pk]})
    return {"item": item, "entries": entries, "can_edit": bool(roles_of(user) & set(REVIEWERS)),
            "actions": ActionType.choices, "timeline": timeline.item_timeline(item),
            "may_file": Role.ADMIN in roles_of(user) and bool(entries), "complainants": Complainant.choices}


@require_GET
@role_required(*REVIEWERS)
def item_enforcement(request: HttpRequest, item_id: int) -> HttpResponse:
    """The actions on an item and their statements of reasons: a fragment the item page loads."""
    item = get_object_or_404(Item, pk=item_id)
    return render(request, "enforcement/_item.html", _item_context(item, request.user))


@require_POST
@role_required(*REVIEWERS)
def action_edit(request: HttpRequest, action_id: int) -> HttpResponse:
    """A moderator changes an action or its statement; answers with the fragment again."""
    row = get_object_or_404(Action.objects.select_related("item"), pk=action_id)
    form = ActionForm(request.POST)
    error = ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            actions.edit_action(user=request.user, action_id=row.pk, action=data["action"],
                                duration_days=data["duration_days"],
                                facts=data["facts"] if "facts" in request.POST else None,
                                decision_ground=data["decision_ground"] or None,
                                legal_ground=data["legal_ground"] if "legal_ground" in request.POST else None)
        except actions.ActionError as exc:
            error = str(exc)
    else:
        error = "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items())
    if not getattr(request, "htmx", False):
        if error:
            messages.error(request, error)
        return redirect("console:item", item_id=row.item_id)
    context = _item_context(row.item, request.user, {row.pk: error} if error else None)
    return render(request, "enforcement/_item.html", context, status=400 if error else 200)


@require_GET
@role_required(Role.ADMIN)
def export(request: HttpRequest) -> HttpResponse:
    """Admins download a period's statements as Transparency Database submissions (JSON batches)."""
    form = ExportForm(request.GET or None)
    error = ""
    if form.is_valid():
        try:
            batches = exports.submission_batches(form.cleaned_data["since"], form.cleaned_data["until"])
        except exports.ExportError as exc:
            error = str(exc)
        else:
            since, until = form.cleaned_data["since"], form.cleaned_data["until"]
            response = HttpResponse(json.dumps(batches, indent=1, ensure_ascii=False),
                                    content_type="application/json")
            name = f"statements-{since.isoformat()}{'-' + until.isoformat() if until else ''}.json"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
    return render(request, "enforcement/export.html", {"form": form, "error": error})


REPORT_FORMATS = ("csv", "json")


def _report_charts(figures: report.Report) -> list[dict[str, Any]]:
    out = []
    for key, title in report.DIMENSIONS:
        rows = figures.breakdowns[key]
        out.append({"key": key, "title": title, "chart": hbars([(r.label, r.count) for r in rows]),
                    "rows": [{"key": r.key, "label": r.label, "count": r.count,
                              "median": report.duration_text(r.median_s)} for r in rows]})
    return out


def _rate_text(rate: report.Rate) -> dict[str, str]:
    interval = rate.interval
    return {"share": "–" if rate.share is None else f"{rate.share:.1%}",
            "interval": f"{interval[0]:.1%} to {interval[1]:.1%}" if interval else "–"}


@require_GET
@role_required(Role.ADMIN)
def transparency_report(request: HttpRequest, fmt: str = "") -> HttpResponse:
    """Admins' transparency report for a period: the page with its charts, or its figures as CSV or JSON."""
    if fmt and fmt not in REPORT_FORMATS:
        return HttpResponse("Report formats are csv and json", status=400, content_type="text/plain")
    today = timezone.localdate()
    presets = report.presets(today)
    form = ReportForm(request.GET or {"since": presets[0][1], "until": presets[0][2]})
    if not form.is_valid():
        if fmt:
            errors = "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items())
            return HttpResponse(errors, status=400, content_type="text/plain")
        return render(request, "enforcement/report.html", {"form": form, "presets": presets}, status=400)
    since, until = form.cleaned_data["since"], form.cleaned_data["until"]
    figures = report.build(since, until)
    name = f"transparency-report-{since.isoformat()}-{until.isoformat()}"
    if fmt == "json":
        response = HttpResponse(json.dumps(figures.as_dict(), indent=1, ensure_ascii=False),
                                content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{name}.json"'
        return response
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in report.csv_rows(figures):
            writer.writerow([csv_cell(cell) for cell in row])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response
    return render(request, "enforcement/report.html", {
        "form": form, "presets": presets, "report": figures, "charts": _report_charts(figures),
        "median": report.duration_text(figures.median_s),
        "appeal_median": report.duration_text(figures.appeals["median_received_to_decided_s"]),
        "overrides": _rate_text(figures.overrides), "reversals": _rate_text(figures.reversals),
        "combined": _rate_text(figures.combined), "query": request.GET.urlencode(),
        "time_zone": timezone.get_current_timezone_name(), "definitions": report.DEFINITIONS,
    })
