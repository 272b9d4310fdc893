"""Shadow mode: a draft classifies a share of live items beside the published version, through the
reasoner's evaluation lane, and never routes, decides or sends a webhook (its results are evaluation
results, not classifications). The policy page shows how often it agrees with the published version
and with moderators, and where it does not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.writer import record
from console import wakeup
from console.models import Classification, Review, ReviewStatus, Stage, decided_violation
from evaluations.models import EvaluationResult, EvaluationRun, ResultStatus, RunKind, RunStatus
from policies_app.models import Policy, PolicyVersion, VersionStatus


class ShadowError(ValueError):
    """A shadow run that cannot be started or stopped; the message says why."""


def active_shadow(policy: Policy) -> EvaluationRun | None:
    return (EvaluationRun.objects.filter(kind=RunKind.SHADOW, status=RunStatus.RUNNING, policy_version__policy=policy)
            .select_related("policy_version").first())


def start_shadow(*, actor: Any, version: PolicyVersion, share: float, actor_name: str = "") -> EvaluationRun:
    """Shadow `version` (not the published one) on `share` (0 < share <= 1) of the policy's new items."""
    if version.status == VersionStatus.PUBLISHED:
        raise ShadowError(f"{version} is the published version: shadow a draft against it")
    if not 0 < share <= 1:
        raise ShadowError("The share of live traffic must be more than 0 and at most 1 (e.g. 0.1 for 10%)")
    with transaction.atomic():
        Policy.objects.select_for_update().get(pk=version.policy_id)  # one shadow per policy at a time
        if active_shadow(version.policy) is not None:
            raise ShadowError(f"{version.policy} already shadows a version: stop it first")
        run = EvaluationRun.objects.create(kind=RunKind.SHADOW, policy_version=version, estimate={"share": share},
                                           created_by=actor if getattr(actor, "is_authenticated", False) else None)
        record(actor=actor, actor_name=actor_name, action="evaluation_run.shadow_started", obj=run,
               after={"policy_version": version.pk, "share": share})
    return run


def stop_shadow(*, actor: Any, run: EvaluationRun, actor_name: str = "") -> EvaluationRun:
    with transaction.atomic():
        run = EvaluationRun.objects.select_for_update().get(pk=run.pk)
        if run.kind != RunKind.SHADOW or run.status != RunStatus.RUNNING:
            raise ShadowError(f"Run #{run.pk} is not a running shadow")
        cancelled = run.results.filter(status=ResultStatus.QUEUED).update(status=ResultStatus.CANCELLED)
        run.status, run.finished_at = RunStatus.DONE, timezone.now()
        run.total = run.results.count()
        run.metrics = agreement(run).as_dict()
        run.save(update_fields=["status", "finished_at", "total", "metrics"])
        record(actor=actor, actor_name=actor_name, action="evaluation_run.shadow_stopped", obj=run,
               after={"results": run.total, "cancelled_results": cancelled})
    return run


def _sampled(run_id: int, item_id: int, share: float) -> bool:
    # Deterministic, so the same item is in or out of a shadow however often it is looked at.
    digest = hashlib.blake2b(f"{run_id}:{item_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64 < share


def sample_items(item_policies: Iterable[tuple[int, int]], *, now: datetime) -> int:
    """Queue shadow results for newly ingested items: `item_policies` holds (item id, policy id) pairs.
    Called inside the ingest transaction; how many were queued."""
    pairs = list(item_policies)
    if not pairs:
        return 0
    shadows = {run.policy_version.policy_id: run for run in EvaluationRun.objects.filter(
        kind=RunKind.SHADOW, status=RunStatus.RUNNING, policy_version__policy__in={p for _, p in pairs}
    ).select_related("policy_version")}
    rows = [(shadows[policy_id].pk, item_id) for item_id, policy_id in pairs
            if policy_id in shadows and _sampled(shadows[policy_id].pk, item_id,
                                                 float(shadows[policy_id].estimate.get("share", 0)))]
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EvaluationResult._meta.db_table} (run_id, item_id, status, label, category, rule_ids, "
            "rationale, reasoning, raw_output, error, parse_quality, parse_notes, model_name, needs_review, attempts, "
            "worker, created_at) SELECT r.run_id, r.item_id, 'queued', '', '', '[]', '', '', '', '', '', '[]', '', "
            "false, 0, '', %s FROM unnest(%s::bigint[], %s::bigint[]) AS r(run_id, item_id) "
            "ON CONFLICT DO NOTHING",
            [now, [r for r, _ in rows], [i for _, i in rows]],
        )
    transaction.on_commit(wakeup.wake_reasoner, robust=True)
    return len(rows)


@dataclass
class Agreement:
    """How a shadow's verdicts compare with the published version's and with moderators' decisions."""

    results: int = 0
    with_verdict: int = 0
    compared_published: int = 0
    agree_published: int = 0
    compared_moderators: int = 0
    agree_moderators: int = 0
    disagreements: list[dict[str, Any]] = field(default_factory=list)

    def rate(self, agree: int, compared: int) -> float | None:
        return round(agree / compared, 4) if compared else None

    def as_dict(self) -> dict[str, Any]:
        return {"results": self.results, "with_verdict": self.with_verdict,
                "compared_published": self.compared_published, "agree_published": self.agree_published,
                "published_agreement": self.rate(self.agree_published, self.compared_published),
                "compared_moderators": self.compared_moderators, "agree_moderators": self.agree_moderators,
                "moderator_agreement": self.rate(self.agree_moderators, self.compared_moderators)}


def agreement(run: EvaluationRun, *, examples: int = 50) -> Agreement:
    """Agreement on "violation" with the published version's verdict on the same items (its reasoner
    verdict, else its first pass's) and with moderators' final decisions; up to `examples` disagreements."""
    result = Agreement()
    shadow = {r.item_id: r for r in run.results.filter(item__isnull=False).exclude(
        status__in=[ResultStatus.QUEUED, ResultStatus.RUNNING, ResultStatus.CANCELLED])}
    result.results = len(shadow)
    live = (Classification.objects.filter(item_id__in=shadow, policy_version__policy=run.policy_version.policy_id)
            .exclude(policy_version=run.policy_version_id).filter(status="done")
            .order_by("item_id", "-stage"))  # "reasoner" sorts after "fast": its verdict wins below
    published: dict[int, Classification] = {}
    for classification in live:
        if classification.item_id not in published or classification.stage == Stage.REASONER:
            published[classification.item_id] = classification
    decided = {}
    for review in (Review.objects.filter(classification__in=[c.pk for c in published.values()],
                                         classification__review_status=ReviewStatus.DECIDED,
                                         decision__in=["approve", "override"])
                   .select_related("classification").order_by("created_at")):
        c = review.classification
        decided[c.item_id] = decided_violation(review.decision, review.label, review.category, c.violation)
    for item_id, r in shadow.items():
        if r.status != ResultStatus.DONE:
            continue
        result.with_verdict += 1
        theirs = published.get(item_id)
        if theirs is not None:
            result.compared_published += 1
            result.agree_published += theirs.violation == r.violation
        moderators = decided.get(item_id)
        if moderators is not None:
            result.compared_moderators += 1
            result.agree_moderators += moderators == r.violation
        differs = (theirs is not None and theirs.violation != r.violation) or (
            moderators is not None and moderators != r.violation)
        if differs and len(result.disagreements) < examples:
            result.disagreements.append({
                "item": item_id, "shadow": r.violation, "shadow_label": r.label, "shadow_rationale": r.rationale,
                "published": None if theirs is None else theirs.violation,
                "published_label": "" if theirs is None else theirs.label,
                "moderators": moderators, "result": r.pk,
            })
    return result
