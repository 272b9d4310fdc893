"""The evaluation workbench's pages, for policy writers and admins (moderators are refused): a policy's
sets and runs, a set's examples (search, relabel, delete, a golden set from reviews) and whether it is
required to publish, starting a run with its cost, a run's live progress, metrics, results and exports,
and the comparison of two runs.

Every write goes through evaluations.sets or evaluations.runs, which audit; these views only collect
input and show results. The labelled-set import pages are the import side's (`evaluations:import`), the
shadow mode pages evaluations.shadow_pages'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from accounts.roles import Role, role_required
from console.itempage import link_rules, policy_html
from console.models import Classification, ReviewStatus
from console.streaming import streamed
from evaluations import compare, exports, runpage, runs, sets, shadow_pages
from evaluations.models import EvaluationRun, LabeledSet, RunKind, RunStatus
from policies_app import diff
from policies_app.models import Policy, PolicyVersion

WRITERS = (Role.POLICY_WRITER, Role.ADMIN)
EXAMPLES_PER_PAGE = 50
RESULTS_PER_PAGE = 50
FLIPS_PER_PAGE = 25
GOLDEN_SET_NAME = "Golden set from reviews"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


# --- lookups --------------------------------------------------------------------------------------
# Every writer may see and change every policy's sets and runs; the role decorator has checked the role.


def _get_policy_for_user(request: HtmxHttpRequest, slug: str) -> Policy:
    return get_object_or_404(Policy, slug=slug)


def _get_set_for_user(request: HtmxHttpRequest, set_id: int) -> LabeledSet:
    return get_object_or_404(LabeledSet.objects.select_related("policy"), pk=set_id)


def _get_run_for_user(request: HtmxHttpRequest, run_id: int) -> EvaluationRun:
    # Shadow runs (a draft over live traffic) have no labelled set: evaluations.shadow_pages shows them.
    runs_shown = EvaluationRun.objects.filter(kind=RunKind.LABELED).select_related(
        "labeled_set__policy", "policy_version__policy", "created_by")
    return get_object_or_404(runs_shown, pk=run_id)


def _done(request: HtmxHttpRequest, url: str) -> HttpResponse:
    """After a POST: a full redirect, or for htmx a client-side one (a plain 302 would be swapped in)."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _partial(request: HtmxHttpRequest) -> bool:
    # A search or filter pushes its URL; going back to it is a history restore, which needs the whole page.
    return bool(request.htmx) and not request.htmx.history_restore_request


# --- a policy's workbench -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRow:
    run: EvaluationRun
    percent: float | None
    accuracy: str
    precision: str
    recall: str
    f1: str
    unanswered: int | None


def _run_row(run: EvaluationRun) -> RunRow:
    m = run.metrics or {}
    share = runs.progress(run)["percent"] if run.status == RunStatus.RUNNING else None
    return RunRow(run, share, runpage.percent(m.get("accuracy")), runpage.percent(m.get("precision")),
                  runpage.percent(m.get("recall")), runpage.percent(m.get("f1")), m.get("unanswered"))


@require_GET
@role_required(*WRITERS)
def workbench(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    policy = _get_policy_for_user(request, slug)
    labeled_sets = (policy.labeled_sets.annotate(example_count=Count("examples", distinct=True),
                                                 run_count=Count("runs", distinct=True)).order_by(Lower("name")))
    policy_runs = (EvaluationRun.objects.filter(labeled_set__policy=policy, kind=RunKind.LABELED)
                   .select_related("labeled_set", "policy_version", "created_by"))
    page = Paginator(policy_runs, 25).get_page(request.GET.get("page"))
    decided = Classification.objects.filter(policy_version__policy=policy, review_status=ReviewStatus.DECIDED).count()
    context = {
        "policy": policy,
        "labeled_sets": labeled_sets,
        "page": page,
        "rows": [_run_row(run) for run in page],
        "decided": decided,
        "golden_name": GOLDEN_SET_NAME,
        **shadow_pages.workbench_context(policy),
    }
    return render(request, "evaluations/workbench.html", context)


@require_POST
@role_required(*WRITERS)
def golden_set(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    policy = _get_policy_for_user(request, slug)
    name = request.POST.get("name", "").strip() or GOLDEN_SET_NAME
    try:
        labeled_set, added = sets.golden_set_from_reviews(actor=request.user, policy=policy, name=name)
    except sets.SetError as exc:
        messages.error(request, str(exc))
        return _done(request, reverse("evaluations:workbench", args=[policy.slug]))
    messages.success(request, f"{added.added} example{'s' if added.added != 1 else ''} added to {labeled_set.name} "
                              f"from moderators' final decisions ({added.duplicates} already there)")
    return _done(request, labeled_set.get_absolute_url())


# --- a set ----------------------------------------------------------------------------------------


def _labels(labeled_set: LabeledSet) -> list[tuple[str, str]]:
    """The labels an example of the set may take, as (value, shown) pairs; none if the policy has no version."""
    try:
        return sets.scheme_version(labeled_set.policy).label_choices()
    except sets.SetError:
        return []


@require_GET
@role_required(*WRITERS)
@vary_on_headers("HX-Request")
def set_detail(request: HtmxHttpRequest, set_id: int) -> HttpResponse:
    labeled_set = _get_set_for_user(request, set_id)
    query, label = request.GET.get("q", "").strip(), request.GET.get("label", "").strip()
    page = Paginator(sets.search(labeled_set, query, label), EXAMPLES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "labeled_set": labeled_set,
        "policy": labeled_set.policy,
        "page": page,
        "query": query,
        "label": label,
        "labels": _labels(labeled_set),
        "total": labeled_set.examples.count(),
        "set_runs": [_run_row(run) for run in labeled_set.runs.select_related("policy_version")[:10]],
        "recall_margin": _recall_margin_points(),
    }
    if _partial(request):
        return render(request, "evaluations/set_detail.html#examples", context)
    return render(request, "evaluations/set_detail.html", context)


def _recall_margin_points() -> str:
    """EVAL_PUBLISH_RECALL_MARGIN (a fraction) as percentage points: 0.02 is "2"."""
    return f"{settings.EVAL_PUBLISH_RECALL_MARGIN * 100:g}"


@require_POST
@role_required(*WRITERS)
def set_required(request: HtmxHttpRequest, set_id: int) -> HttpResponse:
    labeled_set = _get_set_for_user(request, set_id)
    required = request.POST.get("required", "") in ("1", "true", "on")
    was = labeled_set.required
    labeled_set = sets.set_required(actor=request.user, labeled_set=labeled_set, required=required)
    if request.htmx:
        return render(request, "evaluations/set_detail.html#required",
                      {"labeled_set": labeled_set, "recall_margin": _recall_margin_points(),
                       "changed": was != required})
    if was != required:
        messages.success(request, f"{labeled_set.name} is {'now' if required else 'no longer'} required to publish")
    return redirect(labeled_set)


@require_POST
@role_required(*WRITERS)
def relabel(request: HtmxHttpRequest, set_id: int, example_id: int) -> HttpResponse:
    labeled_set = _get_set_for_user(request, set_id)
    example = get_object_or_404(labeled_set.examples, pk=example_id)
    try:
        example = sets.relabel(actor=request.user, example=example, label=request.POST.get("label", ""))
    except sets.SetError as exc:
        if not request.htmx:
            messages.error(request, str(exc))
            return redirect(labeled_set)
        example.refresh_from_db()
        return render(request, "evaluations/_example_row.html",
                      {"example": example, "labeled_set": labeled_set, "labels": _labels(labeled_set),
                       "error": str(exc)}, status=400)
    if not request.htmx:
        messages.success(request, f"Example #{example.pk} is now labelled {example.label}")
        return redirect(labeled_set)
    return render(request, "evaluations/_example_row.html",
                  {"example": example, "labeled_set": labeled_set, "labels": _labels(labeled_set), "saved": True})


def _posted_ids(request: HtmxHttpRequest) -> list[int]:
    return [int(value) for value in request.POST.getlist("ids") if value.isdigit()]


@require_POST
@role_required(*WRITERS)
def delete_examples(request: HtmxHttpRequest, set_id: int) -> HttpResponse:
    labeled_set = _get_set_for_user(request, set_id)
    ids = _posted_ids(request)
    if not ids:
        messages.error(request, "Tick the examples to delete first: nothing was deleted")
        return _done(request, labeled_set.get_absolute_url())
    deleted = sets.delete_examples(actor=request.user, labeled_set=labeled_set, ids=ids)
    messages.success(request, f"{deleted} example{'s' if deleted != 1 else ''} deleted from {labeled_set.name}, "
                              "with their results in earlier runs")
    return _done(request, labeled_set.get_absolute_url())


@require_POST
@role_required(*WRITERS)
def delete_set(request: HtmxHttpRequest, set_id: int) -> HttpResponse:
    labeled_set = _get_set_for_user(request, set_id)
    policy, name = labeled_set.policy, labeled_set.name
    sets.delete_set(actor=request.user, labeled_set=labeled_set)
    messages.success(request, f"The set {name} is deleted, with its examples and runs")
    return _done(request, reverse("evaluations:workbench", args=[policy.slug]))


# --- starting a run -------------------------------------------------------------------------------


def _chosen_version(labeled_set: LabeledSet, raw: str) -> PolicyVersion | None:
    """The version numbered `raw` (none if there is no such version), or the newest when none is named."""
    versions = labeled_set.policy.versions.all()
    raw = raw.strip()
    if not raw:
        return versions.order_by("-number").first()
    return versions.filter(number=int(raw)).first() if raw.isdigit() else None


@require_http_methods(["GET", "POST"])
@role_required(*WRITERS)
@vary_on_headers("HX-Request")
def start_run(request: HtmxHttpRequest, set_id: int) -> HttpResponse:
    labeled_set = _get_set_for_user(request, set_id)
    data = request.POST if request.method == "POST" else request.GET
    version = _chosen_version(labeled_set, data.get("version", ""))
    context: dict[str, Any] = {
        "labeled_set": labeled_set,
        "policy": labeled_set.policy,
        "versions": labeled_set.policy.versions.order_by("-number"),
        "version": version,
        "note": data.get("note", "")[:300],
        "engine_configured": bool(settings.SAFEGUARD_BACKEND),
    }
    if version is None:
        context["error"] = f"{labeled_set.policy.name} has no version {data.get('version', '')!r}: choose one above"
        return render(request, "evaluations/run_start.html", context, status=400)
    if request.method == "POST":
        try:
            run = runs.start_run(actor=request.user, labeled_set=labeled_set, version=version, note=context["note"])
        except runs.RunError as exc:
            context["error"] = str(exc)
        else:
            messages.success(request, f"Run #{run.pk} started: {version} over {run.total} examples")
            return _done(request, run.get_absolute_url())
    estimate = runs.estimate(labeled_set=labeled_set, version=version)
    context.update(estimate=estimate, seconds=runpage.duration(estimate["seconds"]))
    status = 400 if context.get("error") else 200
    if _partial(request) and request.method == "GET":
        return render(request, "evaluations/run_start.html#estimate", context)
    return render(request, "evaluations/run_start.html", context, status=status)


# --- a run ----------------------------------------------------------------------------------------


@require_GET
@role_required(*WRITERS)
@vary_on_headers("HX-Request")
def run_detail(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    run = _get_run_for_user(request, run_id)
    show = request.GET.get("show", "all")
    if show not in dict(runpage.SHOW_CHOICES):
        show = "all"
    page = Paginator(runpage.results(run, show), RESULTS_PER_PAGE).get_page(request.GET.get("page"))
    others = (EvaluationRun.objects.filter(labeled_set=run.labeled_set_id).exclude(pk=run.pk)
              .select_related("policy_version"))
    context = {
        **runpage.progress_context(run),
        **runpage.metrics_context(run),
        "page": page,
        "show": show,
        "show_choices": runpage.SHOW_CHOICES,
        "others": others,
        "policy": run.policy_version.policy,
    }
    if _partial(request):
        return render(request, "evaluations/run_detail.html#results", context)
    return render(request, "evaluations/run_detail.html", context)


@require_POST
@role_required(*WRITERS)
def cancel_run(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    run = _get_run_for_user(request, run_id)
    try:
        runs.cancel_run(actor=request.user, run=run)
    except runs.RunError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Run #{run.pk} is cancelled: its metrics cover what was classified")
    return _done(request, run.get_absolute_url())


@require_GET
@role_required(*WRITERS)
def result_detail(request: HtmxHttpRequest, run_id: int, result_id: int) -> HttpResponse:
    run = _get_run_for_user(request, run_id)
    result = get_object_or_404(run.results.select_related("example"), pk=result_id, example__isnull=False)
    version = run.policy_version
    known = set(version.rule_ids)
    context = {
        "run": run,
        "policy": version.policy,
        "version": version,
        "result": result,
        "example": result.example,
        "outcome": compare.outcome(result, result.example),
        "cited_rules": [(rule, rule in known) for rule in result.rule_ids or []],
        "policy_html": policy_html(version.text, set(result.rule_ids or [])),
        "reasoning_html": link_rules(result.reasoning, known),
        "rationale_html": link_rules(result.rationale, known),
    }
    return render(request, "evaluations/result_detail.html", context)


@require_GET
@role_required(*WRITERS)
def metrics_json(request: HtmxHttpRequest, run_id: int) -> JsonResponse:
    run = _get_run_for_user(request, run_id)
    response = JsonResponse(exports.metrics_document(run), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-metrics.json"'
    return response


@require_GET
@role_required(*WRITERS)
def results_csv(request: HtmxHttpRequest, run_id: int) -> StreamingHttpResponse:
    run = _get_run_for_user(request, run_id)
    response = StreamingHttpResponse(streamed(request, exports.result_rows(run)), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-results.csv"'
    return response


# --- comparing two runs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeltaRow:
    label: str
    a: str
    b: str
    change: str
    direction: str  # "up", "down" or "" (for the colour: more unanswered is worse, so it is flipped)


def _delta_rows(comparison: compare.Comparison) -> list[DeltaRow]:
    rows = []
    for name, label in (*runpage.HEADLINE, ("strict_accuracy", "Strict accuracy"), ("unanswered", "No verdict")):
        a, b, change = comparison.metrics_a.get(name), comparison.metrics_b.get(name), comparison.deltas.get(name)
        if name == "unanswered":
            shown = ("—" if change is None else f"{change:+.0f}", str(a if a is not None else "—"),
                     str(b if b is not None else "—"))
            better = None if not change else change < 0
        else:
            shown = ("—" if change is None else f"{change * 100:+.1f} pts", runpage.percent(a), runpage.percent(b))
            better = None if not change else change > 0
        rows.append(DeltaRow(label, shown[1], shown[2], shown[0], "" if better is None else
                             ("up" if better else "down")))
    return rows


def _run_from(raw: str, side: str) -> EvaluationRun:
    raw = raw.strip()
    if not raw.isdigit():
        raise compare.CompareError(f"Choose the run for side {side} ({side}={raw!r} is not a run number)")
    run = (EvaluationRun.objects.filter(pk=int(raw)).select_related("labeled_set__policy", "policy_version__policy")
           .first())
    if run is None:
        raise compare.CompareError(f"There is no run #{int(raw)}")
    return run


@require_GET
@role_required(*WRITERS)
def compare_runs(request: HtmxHttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"a_raw": request.GET.get("a", ""), "b_raw": request.GET.get("b", "")}
    try:
        a, b = _run_from(context["a_raw"], "A"), _run_from(context["b_raw"], "B")
        context.update(a=a, b=b)
        comparison = compare.compare_runs(a, b)
    except compare.CompareError as exc:
        context["error"] = str(exc)
        return render(request, "evaluations/compare.html", context, status=400)
    old, new = a.policy_version, b.policy_version
    context.update(
        comparison=comparison,
        policy=new.policy,
        deltas=_delta_rows(comparison),
        flips=Paginator(comparison.flips, FLIPS_PER_PAGE).get_page(request.GET.get("page")),
        old=old,
        new=new,
        same_version=old.pk == new.pk,
        text_diff=diff.side_by_side(old.text, new.text),
        settings_changes=diff.changed_settings(old, new),
        others=EvaluationRun.objects.filter(labeled_set=a.labeled_set_id).select_related("policy_version"),
    )
    return render(request, "evaluations/compare.html", context)
