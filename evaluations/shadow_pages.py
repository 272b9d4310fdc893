"""Shadow mode's pages, for policy writers and admins: start and stop a policy's shadow (a form on the
workbench), a shadow's page (its agreement with the published version and with moderators, and where it
disagrees) and the one-line summary the policy page loads with htmx.

Every write goes through evaluations.shadow, which audits; these views only collect input and show results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from accounts.roles import Role, role_required
from console.models import Item
from evaluations import runpage, shadow
from evaluations.models import EvaluationResult, EvaluationRun, ResultStatus, RunKind, RunStatus
from policies_app.models import Policy, PolicyVersion, VersionStatus

WRITERS = (Role.POLICY_WRITER, Role.ADMIN)
DISAGREEMENTS_SHOWN = 50
PAST_SHADOWS_SHOWN = 10
POLL_SECONDS = 5


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


# --- lookups --------------------------------------------------------------------------------------
# Every writer may see and change every policy's shadow; the role decorator has checked the role.


def _get_policy_for_user(request: HtmxHttpRequest, slug: str) -> Policy:
    return get_object_or_404(Policy, slug=slug)


def _get_shadow_for_user(request: HtmxHttpRequest, run_id: int) -> EvaluationRun:
    shadows = EvaluationRun.objects.filter(kind=RunKind.SHADOW).select_related("policy_version__policy", "created_by")
    return get_object_or_404(shadows, pk=run_id)


def _done(request: HtmxHttpRequest, url: str) -> HttpResponse:
    """After a POST: a full redirect, or for htmx a client-side one (a plain 302 would be swapped in)."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _workbench(policy: Policy) -> str:
    return reverse("evaluations:workbench", args=[policy.slug]) + "#shadow"


# --- what a shadow shows --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShadowSummary:
    """A shadow run's counts and agreement, as the workbench, its page and the policy page show them."""

    run: EvaluationRun
    share_percent: str
    sampled: int  # results queued for it so far (each a sampled live item)
    answered: int
    waiting: int
    no_verdict: int
    cancelled: int
    agreement: shadow.Agreement
    published_rate: str
    moderator_rate: str


def _share_percent(run: EvaluationRun) -> str:
    return f"{float(run.estimate.get('share', 0)) * 100:g}%"


def summary(run: EvaluationRun, *, examples: int = 0) -> ShadowSummary:
    """The run's counts now, and its agreement with up to `examples` disagreements."""
    counts = {row["status"]: row["n"] for row in run.results.order_by().values("status").annotate(n=Count("id"))}
    waiting = counts.get(ResultStatus.QUEUED, 0) + counts.get(ResultStatus.RUNNING, 0)
    cancelled = counts.get(ResultStatus.CANCELLED, 0)
    answered = counts.get(ResultStatus.DONE, 0)
    agreement = shadow.agreement(run, examples=examples)
    return ShadowSummary(
        run=run, share_percent=_share_percent(run), sampled=sum(counts.values()), answered=answered, waiting=waiting,
        no_verdict=sum(counts.values()) - answered - waiting - cancelled, cancelled=cancelled, agreement=agreement,
        published_rate=runpage.percent(agreement.rate(agreement.agree_published, agreement.compared_published)),
        moderator_rate=runpage.percent(agreement.rate(agreement.agree_moderators, agreement.compared_moderators)),
    )


def workbench_context(policy: Policy) -> dict[str, Any]:
    """The workbench's shadow section: the active shadow, the versions a new one may shadow, past shadows."""
    active = shadow.active_shadow(policy)
    past = (EvaluationRun.objects.filter(kind=RunKind.SHADOW, policy_version__policy=policy)
            .exclude(status=RunStatus.RUNNING).select_related("policy_version", "created_by")[:PAST_SHADOWS_SHOWN])
    return {
        "shadow": summary(active) if active else None,
        "shadow_versions": policy.versions.exclude(status=VersionStatus.PUBLISHED).order_by("-number"),
        "past_shadows": [(run, _share_percent(run)) for run in past],
    }


@dataclass(frozen=True, slots=True)
class Disagreement:
    item_id: int
    item: Item | None
    shadow: bool | None
    shadow_label: str
    shadow_rationale: str
    shadow_reasoning: str  # shown when there is no rationale (a bare "1" or "0" answer has none)
    published: bool | None
    published_label: str
    moderators: bool | None


def _disagreements(agreement: shadow.Agreement) -> list[Disagreement]:
    items = Item.objects.in_bulk([d["item"] for d in agreement.disagreements])
    reasoning = dict(EvaluationResult.objects.filter(pk__in=[d["result"] for d in agreement.disagreements])
                     .values_list("pk", "reasoning"))
    return [Disagreement(item_id=d["item"], item=items.get(d["item"]), shadow=d["shadow"],
                         shadow_label=d["shadow_label"], shadow_rationale=d["shadow_rationale"],
                         shadow_reasoning=reasoning.get(d["result"], ""), published=d["published"],
                         published_label=d["published_label"], moderators=d["moderators"])
            for d in agreement.disagreements]


# --- starting and stopping ------------------------------------------------------------------------


def _posted_share(raw: str) -> float | None:
    """The share posted as a percent (1 to 100) as a fraction, or None when it is not one."""
    try:
        percent = float(raw.strip().rstrip("%"))
    except ValueError:
        return None
    if not math.isfinite(percent) or not 1 <= percent <= 100:
        return None
    return percent / 100


def _posted_version(policy: Policy, raw: str) -> PolicyVersion | None:
    raw = raw.strip()
    return policy.versions.filter(number=int(raw)).first() if raw.isdigit() else None


@require_POST
@role_required(*WRITERS)
def start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    policy = _get_policy_for_user(request, slug)
    version = _posted_version(policy, request.POST.get("version", ""))
    share = _posted_share(request.POST.get("share", ""))
    if version is None:
        messages.error(request, f"Choose a version of {policy.name} to shadow: nothing was started")
    elif share is None:
        messages.error(request, "The share is a percent of new items, from 1 to 100: nothing was started")
    else:
        try:
            run = shadow.start_shadow(actor=request.user, version=version, share=share)
        except shadow.ShadowError as exc:
            messages.error(request, f"{exc}: nothing was started")
        else:
            messages.success(request, f"v{version.number} now shadows {_share_percent(run)} of {policy.name}'s "
                                      "new items beside the published version")
            return _done(request, reverse("evaluations:shadow", args=[run.pk]))
    return _done(request, _workbench(policy))


@require_POST
@role_required(*WRITERS)
def stop(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    run = _get_shadow_for_user(request, run_id)
    try:
        run = shadow.stop_shadow(actor=request.user, run=run)
    except shadow.ShadowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"The shadow of v{run.policy_version.number} is stopped: its {run.total} "
                                  f"result{'s' if run.total != 1 else ''} and agreement are kept")
    return _done(request, reverse("evaluations:shadow", args=[run.pk]))


# --- a shadow's page and the policy page's summary ------------------------------------------------


@require_GET
@role_required(*WRITERS)
@vary_on_headers("HX-Request")
def shadow_detail(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    run = _get_shadow_for_user(request, run_id)
    policy = run.policy_version.policy
    shown = summary(run, examples=DISAGREEMENTS_SHOWN)
    context = {
        "run": run,
        "policy": policy,
        "published": policy.published_version(),
        "summary": shown,
        "disagreements": _disagreements(shown.agreement),
        "limit": DISAGREEMENTS_SHOWN,
        "poll_seconds": POLL_SECONDS,
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "evaluations/shadow_detail.html#live", context)
    return render(request, "evaluations/shadow_detail.html", context)


@require_GET
@role_required(*WRITERS)
def shadow_summary(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The policy page's shadow panel (loaded with htmx): the active shadow's agreement, or nothing."""
    policy = _get_policy_for_user(request, slug)
    active = shadow.active_shadow(policy)
    if active is None:
        return HttpResponse("")
    return render(request, "evaluations/_shadow_summary.html",
                  {"summary": summary(active), "policy": policy, "published": policy.published_version()})
