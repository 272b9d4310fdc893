"""Decisions on verdicts: approve, override, escalate, skip, bulk approval from the queue, and the
override that reverses a final decision on appeal (`reverse`, called by `enforcement.appeals`).

Each write locks the rows it decides on (select_for_update), checks that nothing changed since the
moderator looked, writes its audit events in the same transaction, and once it has committed tells
the open pages (`broadcast`) and, for a final decision, the layers above (`signals.item_decided`:
the API tells the platform by webhook).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.timesince import timesince

from audit.writer import entry, record, record_many
from console import broadcast, signals
from console.errors import ClaimConflict, DecisionConflict, ReviewError
from console.models import Claim, Classification, ClassificationStatus, Decision, Review, ReviewStatus, Skip
from console.permissions import can_decide, can_review

BULK_LIMIT = 200  # most verdicts one bulk approval decides
PAST = {"approve": "approved it", "override": "overrode it", "escalate": "escalated it"}


@dataclass
class BulkResult:
    approved: list[int]
    refused: list[tuple[int, str]]  # (classification id, why)


def _ago(moment: Any) -> str:
    return f"{timesince(moment).split(',')[0]} ago"


def _who(user: Any, viewer: Any) -> str:
    return "You" if getattr(user, "pk", None) == viewer.pk else user.get_username()


def _lock_for_decision(*, user: Any, classification_id: int, seen_review: int | None, action: str) -> Any:
    """The classification, locked, once every check a decision needs has passed."""
    classification = (
        Classification.objects.select_for_update(no_key=True, of=("self",))
        .select_related("item", "policy_version__policy")
        .filter(pk=classification_id)
        .first()
    )
    if classification is None:
        raise ReviewError("No such classification")
    last = classification.reviews.select_related("reviewer").order_by("-created_at", "-id").first()
    if classification.review_status == ReviewStatus.DECIDED and last is not None:
        raise DecisionConflict(
            f"{_who(last.reviewer, user)} already decided this {_ago(last.created_at)} "
            f"({PAST[last.decision]}); your {action} was not saved"
        )
    if not classification.needs_review or classification.status in (
        ClassificationStatus.QUEUED, ClassificationStatus.RUNNING
    ) or classification.review_status == ReviewStatus.DECIDED:
        raise ReviewError("This result does not await review")
    if seen_review is not None and (last.pk if last else 0) != seen_review:
        who, what = (_who(last.reviewer, user), PAST[last.decision]) if last else ("Someone", "changed it")
        raise DecisionConflict(
            f"{who} {what} while you had this item open; your {action} was not saved. Look at it again, then decide"
        )
    if not can_decide(user, classification):
        raise ReviewError(
            "Escalated items are decided by a senior moderator (the admin role)"
            if classification.review_status == ReviewStatus.ESCALATED
            else "Your role does not let you decide reviews"
        )
    claim = Claim.objects.live(timezone.now()).select_related("user").filter(item_id=classification.item_id).first()
    if claim is not None and claim.user_id != user.pk:
        raise ClaimConflict(claim)
    return classification


def _settle(*, user: Any, classification: Any, review: Any, final: bool) -> None:
    """Record a stored review: the classification's state, its audit event, the claim, the broadcast."""
    before = classification.review_status
    classification.review_status = ReviewStatus.DECIDED if final else ReviewStatus.ESCALATED
    classification.save(update_fields=["review_status"])
    after: dict[str, Any] = {"review_status": classification.review_status, "review": review.pk,
                             "decision": review.decision}
    for name in ("label", "category", "reason", "misapplied_rule"):
        if getattr(review, name):
            after[name] = getattr(review, name)
    record(actor=user, action=f"review.{review.decision}", obj=classification, before={"review_status": before},
           after=after)
    item_id = classification.item_id
    others_open = Classification.objects.awaiting_review().filter(item_id=item_id).exclude(pk=classification.pk)
    done_here = not final or not any(can_decide(user, c) for c in others_open.only("id", "review_status"))
    # Nothing left here for this moderator: the claim goes, so the item shows as free at once.
    if done_here and Claim.objects.filter(item_id=item_id, user=user).delete()[0]:
        broadcast.on_commit(broadcast.claim_changed, item_id=item_id, username="", since="")
    broadcast.on_commit(broadcast.review_decided, classification_ids=[classification.pk], item_ids=[item_id],
                   username=user.get_username(), decision=review.decision)
    if final:
        signals.send_on_commit(signals.item_decided, sender=Review, item_ids=[item_id])


@transaction.atomic
def approve(*, user: Any, classification_id: int, seen_review: int | None) -> Any:
    """The model's verdict stands. `seen_review` is the id of the latest review the moderator saw (0:
    none); a different one now means someone acted meanwhile, and the approval is refused."""
    classification = _lock_for_decision(user=user, classification_id=classification_id, seen_review=seen_review,
                                        action="approval")
    if classification.status != ClassificationStatus.DONE:
        raise ReviewError("There is no verdict to approve: override it with the correct label instead")
    review = Review.objects.create(classification=classification, decision=Decision.APPROVE, reviewer=user)
    _settle(user=user, classification=classification, review=review, final=True)
    return review


@transaction.atomic
def override(
    *, user: Any, classification_id: int, seen_review: int | None, label: str, category: str = "", reason: str,
    misapplied_rule: str = "",
) -> Any:
    """Replace the model's verdict with the moderator's: a label of the policy's scheme (or a category),
    a reason (required), and optionally the rule the model misapplied."""
    label, category, reason, misapplied_rule = (label or "").strip(), (category or "").strip(), \
        (reason or "").strip(), (misapplied_rule or "").strip()
    if not reason:
        raise ReviewError("An override needs a reason")
    if not label and not category:
        raise ReviewError("An override needs the correct label or category")
    classification = _lock_for_decision(user=user, classification_id=classification_id, seen_review=seen_review,
                                        action="override")
    _check_codes(classification.policy_version, label, misapplied_rule)
    if (
        classification.status == "done"
        and (label or classification.label) == classification.label
        and (category or classification.category) == classification.category
    ):
        raise ReviewError("That is the model's own verdict: approve it instead")
    review = _override_review(user=user, classification=classification, label=label, category=category,
                              reason=reason, misapplied_rule=misapplied_rule)
    _settle(user=user, classification=classification, review=review, final=True)
    return review


def _check_codes(version: Any, label: str, misapplied_rule: str) -> None:
    allowed = [code for code, _ in version.label_choices()]
    if label and label not in allowed:
        raise ReviewError(f"{label!r} is not a label of {version}: choose one of {', '.join(allowed)}")
    if misapplied_rule and misapplied_rule not in version.rule_ids:
        raise ReviewError(f"{misapplied_rule!r} is not a rule of {version}")


def _override_review(*, user: Any, classification: Any, label: str, category: str, reason: str,
                     misapplied_rule: str) -> Review:
    if classification.policy_version.label_scheme == "categories" and label and not category:
        category = label  # in a categories policy the label is the category code
    return Review.objects.create(
        classification=classification, decision=Decision.OVERRIDE, label=label[:60], category=category[:60],
        reason=reason, misapplied_rule=misapplied_rule[:40], reviewer=user,
    )


def _codes_in_force(classification: Any, review: Any) -> tuple[str, str]:
    """(label, category) a final review decided: the corrected ones of an override, else the model's."""
    if review is not None and review.decision == Decision.OVERRIDE:
        return review.label, review.category
    return classification.label, classification.category


@transaction.atomic
def reverse(*, user: Any, classification_id: int, label: str, category: str = "", reason: str) -> Review:
    """Replace a final decision with `user`'s override: an appeal's reversal. The appeals service has
    already decided that `user` may decide the appeal (never the moderator who made this decision); this
    records the new decision the one way an override is recorded: audited, shown on open pages, and told
    to the layers above as a changed decision (`signals.item_decided`)."""
    label, category, reason = (label or "").strip(), (category or "").strip(), (reason or "").strip()
    if not reason:
        raise ReviewError("A reversal needs a reason")
    if not label and not category:
        raise ReviewError("A reversal needs the correct label or category")
    if not can_review(user):
        raise ReviewError("Your role does not let you decide reviews")
    classification = (
        Classification.objects.select_for_update(no_key=True, of=("self",))
        .select_related("item", "policy_version__policy").filter(pk=classification_id).first()
    )
    if classification is None:
        raise ReviewError("No such classification")
    # Decided by a moderator, or by the model alone (a finished verdict no person was asked about).
    if classification.review_status != ReviewStatus.DECIDED and (
        classification.needs_review or classification.status != ClassificationStatus.DONE
    ):
        raise ReviewError("Only a decided verdict can be reversed")
    _check_codes(classification.policy_version, label, "")
    current = _codes_in_force(classification, classification.reviews.order_by("-created_at", "-id").first())
    if (label or current[0], category or current[1]) == current:
        raise ReviewError("That is the decision in force: uphold it instead")
    review = _override_review(user=user, classification=classification, label=label, category=category,
                              reason=reason, misapplied_rule="")
    _settle(user=user, classification=classification, review=review, final=True)
    return review


@transaction.atomic
def escalate(*, user: Any, classification_id: int, seen_review: int | None, reason: str) -> Any:
    """Send the item to the senior queue, with a note saying why."""
    reason = (reason or "").strip()
    if not reason:
        raise ReviewError("Say why a senior should look (the reason is required)")
    classification = _lock_for_decision(user=user, classification_id=classification_id, seen_review=seen_review,
                                        action="escalation")
    if classification.review_status == ReviewStatus.ESCALATED:
        raise ReviewError("This item is already with the seniors: approve or override it")
    review = Review.objects.create(classification=classification, decision=Decision.ESCALATE, reason=reason,
                                   reviewer=user)
    _settle(user=user, classification=classification, review=review, final=False)
    return review


@transaction.atomic
def skip(*, user: Any, classification_id: int) -> None:
    """Pass on a classification: it stays in the queue for the others, and "next" leaves it out for
    this moderator for SKIP_HOURS. The moderator's claim on the item is released."""
    classification = Classification.objects.awaiting_review().select_related("item").filter(
        pk=classification_id).first()
    if classification is None:
        raise ReviewError("This result does not await review")
    Skip.objects.create(classification=classification, user=user)
    record(actor=user, action="review.skipped", obj=classification)
    if Claim.objects.filter(item_id=classification.item_id, user=user).delete()[0]:
        broadcast.on_commit(broadcast.claim_changed, item_id=classification.item_id, username="", since="")


@transaction.atomic
def bulk_approve(*, user: Any, classification_ids: list[int]) -> BulkResult:
    """Approve many verdicts at once (from the queue, after a confirmation). Each one is checked like a
    single approval; those that fail a check are left as they are and reported with the reason."""
    ids = sorted({int(pk) for pk in classification_ids})
    if not ids:
        raise ReviewError("Select the verdicts to approve first")
    if len(ids) > BULK_LIMIT:
        raise ReviewError(f"At most {BULK_LIMIT} verdicts can be approved at once")
    if not can_review(user):
        raise ReviewError("Your role does not let you decide reviews")
    now = timezone.now()
    # Locked in id order, so two bulk approvals of overlapping selections cannot deadlock.
    rows = {
        c.pk: c
        for c in Classification.objects.select_for_update(no_key=True, of=("self",))
        .select_related("item", "policy_version__policy").filter(pk__in=ids).order_by("pk")
    }
    claims = {c.item_id: c for c in Claim.objects.live(now).select_related("user").filter(
        item_id__in={row.item_id for row in rows.values()})}
    approved, refused = [], []
    for pk in ids:
        c = rows.get(pk)
        claim = claims.get(c.item_id) if c else None
        if c is None:
            refused.append((pk, "no such classification"))
        elif c.review_status == ReviewStatus.DECIDED or not c.needs_review:
            refused.append((pk, "already decided"))
        elif c.status != ClassificationStatus.DONE:
            refused.append((pk, "no verdict to approve"))
        elif not can_decide(user, c):
            refused.append((pk, "escalated: for a senior"))
        elif claim is not None and claim.user_id != user.pk:
            refused.append((pk, f"claimed by {claim.user.get_username()}"))
        else:
            approved.append(c)
    if approved:
        reviews = Review.objects.bulk_create(
            [Review(classification=c, decision=Decision.APPROVE, reviewer=user) for c in approved]
        )
        Classification.objects.filter(pk__in=[c.pk for c in approved]).update(review_status=ReviewStatus.DECIDED)
        record_many(actor=user, object_type=Classification, entries=[
            entry(c, "review.approve", before={"review_status": c.review_status},
                  after={"review_status": ReviewStatus.DECIDED, "review": review.pk, "decision": Decision.APPROVE,
                         "bulk": True})
            for c, review in zip(approved, reviews, strict=True)
        ])
        item_ids = sorted({c.item_id for c in approved})
        still_open = set(Classification.objects.awaiting_review().filter(item_id__in=item_ids)
                         .values_list("item_id", flat=True))
        released = [pk for pk in item_ids if pk not in still_open]
        Claim.objects.filter(item_id__in=released, user=user).delete()
        broadcast.on_commit(broadcast.review_decided, classification_ids=[c.pk for c in approved], item_ids=item_ids,
                       username=user.get_username(), decision=Decision.APPROVE)
        signals.send_on_commit(signals.item_decided, sender=Review, item_ids=item_ids)
    return BulkResult(approved=[c.pk for c in approved], refused=refused)
