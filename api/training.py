"""First-pass training: labelled examples imported for a policy, the examples a policy's first pass
learns from (moderators' decisions, unreviewed reasoner verdicts, imported sets), and retraining,
which stores a new model with its cross-validated metrics (audited), applies the close threshold that
nested cross-validation proposes when it is safe (api.routing.apply_retrained_threshold) and prunes
the oldest models."""

from __future__ import annotations

import hashlib
import logging
import random
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import FloatField, OuterRef, Subquery, Value
from django.db.models.functions import Abs

from api import routing
from api.errors import ClientError
from api.models import ExternalFirstPass, FirstPassModel, LabeledExample, Route, RoutingRule
from audit.writer import record
from console.models import Classification, ClassificationStatus, Decision, Review, Stage, decided_violation
from policies_app.models import Policy, PolicyVersion, VersionStatus
from safeguard import firstpass, firstpass_thresholds

log = logging.getLogger("api.services")  # the name it had before training got a module of its own

KEEP_MODELS = 10  # first-pass models kept per policy (older ones are pruned at retraining)
CV_SAMPLE = 20_000  # examples cross-validated for a model's metrics


@transaction.atomic
def import_labeled_examples(*, actor: Any, policy: Policy, examples: list[firstpass.LabeledText], dataset: str,
                            actor_name: str = "") -> int:
    """Add labelled texts a policy's first pass will learn from at its next retraining."""
    dataset = (dataset or "import").strip()[:200]
    rows = [e for e in examples if e.text.strip()]
    if not rows:
        raise ClientError("The file holds no labelled examples", "file")
    LabeledExample.objects.bulk_create(
        [LabeledExample(policy=policy, text=e.text, violation=e.violation, label=e.label[:60], dataset=dataset)
         for e in rows]
    )
    record(actor=actor, actor_name=actor_name, action="first_pass.examples_imported", obj=policy,
           after={"dataset": dataset, "examples": len(rows), "violations": sum(e.violation for e in rows)})
    return len(rows)


def _nearest_the_threshold_first(policy: Policy, item: str, version: str) -> list[Any]:
    """An order for verdicts on items: those the first pass scored nearest its close threshold first
    (what it was least sure of teaches it most), then the rest, newest first. `item` and `version`
    name the rows' item and policy-version columns."""
    routed = routed_version(policy)
    threshold = routing.thresholds_for([routed])[routed.id].safe_below if routed else settings.FIRST_PASS_SAFE_BELOW
    score = Route.objects.filter(item_id=OuterRef(item), policy_version_id=OuterRef(version)).values("score")[:1]
    distance = Abs(Subquery(score, output_field=FloatField()) - Value(threshold))
    return [distance.asc(nulls_last=True)]


def training_examples(policy: Policy) -> tuple[list[str], list[bool], list[str], dict[str, int]]:
    """What a policy's first pass learns from, at most FIRST_PASS_MAX_EXAMPLES: moderators' decisions,
    then reasoner verdicts nobody reviewed (distillation), then imported sets. Within the first two,
    verdicts on the items the first pass scored nearest its close threshold come first (active
    learning: when the budget binds, they are what is kept), then the newest.
    Returns texts, labels (violation or not), each violation's category ("" unknown or safe), counts."""
    limit = settings.FIRST_PASS_MAX_EXAMPLES
    texts: list[str] = []
    labels: list[bool] = []
    categories: list[str] = []
    seen: set[int] = set()
    counts = {"reviews": 0, "reasoner": 0, "imported": 0}
    reviews = (
        Review.objects.filter(classification__policy_version__policy=policy)
        .exclude(decision=Decision.ESCALATE)
        # An item's newest review comes first among its own, so the latest decision is the one learnt.
        .order_by(*_nearest_the_threshold_first(policy, "classification__item_id", "classification__policy_version_id"),
                  "-created_at", "-id")
        .values_list("classification__item_id", "decision", "label", "category", "classification__violation",
                     "classification__category", "classification__label", "classification__item__kind",
                     "classification__item__content", "classification__item__turns")
    )
    for (item_id, decision, label, category, reviewed, model_category, model_label, kind, content,
         turns) in reviews[:limit].iterator():
        violation = decided_violation(decision, label, category, reviewed)
        if item_id in seen or violation is None:
            continue
        seen.add(item_id)
        texts.append(routing.item_text(kind, content, turns))
        labels.append(violation)
        corrected = (category or label) if decision == Decision.OVERRIDE else (model_category or model_label)
        categories.append(firstpass.category_of(corrected) if violation else "")
        counts["reviews"] += 1
    verdicts = (
        Classification.objects.filter(policy_version__policy=policy, stage=Stage.REASONER,
                                      status=ClassificationStatus.DONE, violation__isnull=False)
        .order_by(*_nearest_the_threshold_first(policy, "item_id", "policy_version_id"), "-finished_at", "-id")
        .values_list("item_id", "violation", "category", "label", "item__kind", "item__content", "item__turns")
    )
    for item_id, violation, category, label, kind, content, turns in verdicts[: max(0, limit - len(texts))].iterator():
        if item_id in seen:
            continue
        seen.add(item_id)
        texts.append(routing.item_text(kind, content, turns))
        labels.append(violation)
        categories.append(firstpass.category_of(category or label) if violation else "")
        counts["reasoner"] += 1
    for text, violation, label in LabeledExample.objects.for_policy(policy).values_list("text", "violation", "label")[
        : max(0, limit - len(texts))
    ].iterator():
        texts.append(text)
        labels.append(violation)
        categories.append(firstpass.category_of(label) if violation else "")
        counts["imported"] += 1
    return texts, labels, categories, counts


def _fingerprint(texts: list[str], labels: list[bool]) -> str:
    """What the model would be trained from, and the model format it would be: a model of an older
    format (firstpass/1) is retrained once even where its data did not change."""
    digest = hashlib.sha256(firstpass.FORMAT.encode())
    for text, label in zip(texts, labels, strict=True):
        digest.update(b"1" if label else b"0")
        digest.update(text.encode("utf-8", "replace"))
        digest.update(b"\x00")
    return digest.hexdigest()


def _cross_validated(texts: list[str], labels: list[bool], categories: list[str]) -> dict[str, Any]:
    """The model's held-out quality and its proposed close threshold (nested cross-validation), with
    the verdict on whether to apply it."""
    if len(texts) > CV_SAMPLE:
        picked = random.Random(0).sample(range(len(texts)), CV_SAMPLE)
        texts, labels, categories = ([values[i] for i in picked] for values in (texts, labels, categories))
    target = settings.FIRST_PASS_RECALL_TARGET
    proposal = firstpass_thresholds.propose(texts, labels, categories,
                                            aim=min(1.0, target + settings.FIRST_PASS_RECALL_MARGIN))
    verdict = firstpass_thresholds.judge(
        proposal, target=target, min_violations=settings.FIRST_PASS_RECALL_MIN_VIOLATIONS,
        category_floor=settings.FIRST_PASS_CATEGORY_RECALL_FLOOR,
        category_min_violations=settings.FIRST_PASS_CATEGORY_MIN_VIOLATIONS,
    )
    return {
        "auc": round(proposal.auc, 4),
        "examples": len(texts),
        "proposal": {**proposal.as_dict(), "target": target, "apply": verdict.apply, "reason": verdict.reason,
                     "weak_categories": [c.category for c in verdict.weak_categories]},
    }


def retrain_first_pass(*, policy: Policy, actor: Any = None, force: bool = False) -> FirstPassModel | None:
    """Train a new first-pass model for `policy` from its labelled data, when there is enough data
    and it changed since the last model (or `force`), and apply its threshold when that is safe.
    Returns the new model, or None."""
    texts, labels, categories, counts = training_examples(policy)
    positives = sum(labels)
    if (len(labels) < settings.FIRST_PASS_MIN_EXAMPLES
            or min(positives, len(labels) - positives) < settings.FIRST_PASS_MIN_PER_CLASS):
        log.info("first pass for %s: %d examples (%d violations) is too few to train on", policy.slug,
                 len(labels), positives)
        return None
    fingerprint = _fingerprint(texts, labels)
    latest = FirstPassModel.objects.filter(policy=policy).order_by("-trained_at", "-id").first()
    if not force and latest is not None and latest.metrics.get("fingerprint") == fingerprint:
        return None
    model = firstpass.train(texts, labels)  # seconds to minutes: outside the transaction
    metrics = {"sources": counts, "cv": _cross_validated(texts, labels, categories), "fingerprint": fingerprint}
    return _store_model(actor=actor, policy=policy, model=model, metrics=metrics)


def routed_version(policy: Policy) -> PolicyVersion | None:
    """The version retraining sets thresholds for: the published one, else the latest draft (so its
    first publish routes by them). A draft newer than the published version inherits its rule."""
    return policy.published_version() or policy.versions.filter(status=VersionStatus.DRAFT).order_by("-number").first()


def _apply_proposal(policy: Policy, row: FirstPassModel) -> None:
    proposal = row.metrics["cv"]["proposal"]
    if not proposal["apply"]:
        return
    version = routed_version(policy)
    refusal = ""
    if version is None:
        refusal = f"{policy} has no published or draft version"
    elif ExternalFirstPass.objects.filter(policy=policy, enabled=True).exists():
        refusal = (f"{policy}'s first pass is an external endpoint, and a threshold chosen for the built-in "
                   "model's scores does not fit its scores (an admin sets its thresholds)")
    if refusal:
        proposal["apply"] = False
        proposal["reason"] = f"Not applied: {refusal}. Measured: {proposal['reason']}"
        row.save(update_fields=["metrics"])
        return
    weak = [c for c in proposal["categories"] if c["category"] in proposal["weak_categories"]]
    # No category scores to single out a weak category's items: close nothing until it recovers.
    safe_below = 0.0 if weak else proposal["threshold"]
    rule = routing.apply_retrained_threshold(version=version, model=row, safe_below=safe_below,
                                             reason=proposal["reason"], weak_categories=weak)
    if rule is None:
        proposal["apply"] = False
        proposal["reason"] = f"Not applied: an admin pinned the routing of {version}. Measured: {proposal['reason']}"
        row.save(update_fields=["metrics"])


@transaction.atomic
def _store_model(*, actor: Any, policy: Policy, model: firstpass.Model, metrics: dict[str, Any]) -> FirstPassModel:
    row = FirstPassModel.objects.create(policy=policy, model=firstpass.dumps(model), n_examples=model.n_examples,
                                        n_positive=model.n_positive, metrics=metrics)
    _apply_proposal(policy, row)
    record(actor=actor, actor_name="" if actor else "system:first-pass", action="first_pass.trained", obj=row,
           after={"policy": policy.slug, "n_examples": row.n_examples, "n_positive": row.n_positive,
                  "sources": metrics["sources"], "cv": row.metrics["cv"]})
    old = FirstPassModel.objects.filter(policy=policy).order_by("-trained_at", "-id").values_list("id", flat=True)
    # A model a routing rule's threshold was chosen for keeps routing: it is never pruned.
    FirstPassModel.objects.filter(id__in=list(old[KEEP_MODELS:])).exclude(
        id__in=RoutingRule.objects.filter(model__isnull=False).values("model_id")).delete()
    return row
