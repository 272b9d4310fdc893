"""The workbench's evidence for publishing a version (registered with policies_app.gates): for each of
the policy's labelled sets, the version's latest finished run beside the published version's. On a set
marked required, publishing is blocked when the version has no run on it, or recalls less than the
published version by more than EVAL_PUBLISH_RECALL_MARGIN."""

from __future__ import annotations

from django.conf import settings

from evaluations.models import EvaluationRun, LabeledSet, RunKind, RunStatus
from policies_app.gates import Evidence
from policies_app.models import PolicyVersion


def latest_run(labeled_set: LabeledSet, version: PolicyVersion) -> EvaluationRun | None:
    return (EvaluationRun.objects.filter(kind=RunKind.LABELED, labeled_set=labeled_set, policy_version=version,
                                         status=RunStatus.DONE).order_by("-created_at", "-id").first())


def _facts(run: EvaluationRun | None) -> dict[str, object]:
    if run is None:
        return {"run": None}
    m = run.metrics
    return {"run": run.pk, "examples": m.get("examples"), "accuracy": m.get("accuracy"),
            "precision": m.get("precision"), "recall": m.get("recall"), "f1": m.get("f1"),
            "unanswered": m.get("unanswered")}


def publish_evidence(version: PolicyVersion) -> list[Evidence]:
    published = version.policy.published_version()
    margin = settings.EVAL_PUBLISH_RECALL_MARGIN
    rows = []
    for labeled_set in LabeledSet.objects.filter(policy=version.policy_id).order_by("-required", "name"):
        mine = latest_run(labeled_set, version)
        theirs = latest_run(labeled_set, published) if published and published.pk != version.pk else None
        facts = {"set": labeled_set.name, "required": labeled_set.required, "version": _facts(mine),
                 "published": _facts(theirs) if published else None,
                 "published_number": published.number if published else None}
        reason = ""
        if labeled_set.required:
            if mine is None:
                reason = f"v{version.number} has no finished run on the required set {labeled_set.name!r}"
            elif published is not None and published.pk != version.pk:
                if theirs is None:
                    reason = (f"published v{published.number} has no finished run on the required set "
                              f"{labeled_set.name!r} to compare with")
                else:
                    new, old = mine.metrics.get("recall"), theirs.metrics.get("recall")
                    if new is None or (old is not None and new < old - margin):
                        reason = (f"on the required set {labeled_set.name!r} v{version.number} recalls "
                                  f"{_pct(new)} against {_pct(old)} for published v{published.number} "
                                  f"(allowed drop: {margin:.0%})")
        rows.append(Evidence(title=labeled_set.name, facts=facts, blocking=bool(reason), reason=reason,
                             link=labeled_set.get_absolute_url()))
    return rows


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
