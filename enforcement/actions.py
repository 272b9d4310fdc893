"""Actions taken on decided classifications, and their statements of reasons.

`record_for_items` runs when a moderator's final decision commits (the receiver of
`console.signals.item_decided`, connected in EnforcementConfig.ready) and again, idempotently, where a
webhook payload is built, so the payload carries the action whatever order the receivers ran in. It
records the verdicts no person decided as well (`enforcement.automated`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.writer import record
from console.models import Classification, Decision, Review, ReviewStatus, decided_violation
from enforcement import automated, rules
from enforcement.models import Action, ActionType, AutomatedDecision, DecisionGround, Statement
from enforcement.sources import source_of
from enforcement.transparency import CATEGORIES

log = logging.getLogger(__name__)


class ActionError(ValueError):
    """An edit that cannot be saved; the message says why."""


def _final_review(classification: Classification) -> Review | None:
    review = classification.reviews.order_by("-created_at", "-id").first()
    return review if review is not None and review.decision != Decision.ESCALATE else None


def decided(classification: Classification, review: Review) -> tuple[list[str], bool]:
    """The decided codes (category first, then label) and whether they are a violation."""
    codes = [review.category, review.label] if review.decision == Decision.OVERRIDE else [
        classification.category, classification.label]
    return codes, bool(decided_violation(review.decision, review.label, review.category, classification.violation))


def ground_text(classification: Classification, review: Review | None) -> tuple[str, list[str]]:
    """The contractual ground: the policy version, its name and number, and the rules cited."""
    version = classification.policy_version
    cited = [str(rule) for rule in (classification.rule_ids or [])]
    if review is not None and review.decision == Decision.OVERRIDE:
        cited = [review.misapplied_rule] if review.misapplied_rule else []
    text = f"{version.policy.name}, version {version.number}"
    if cited:
        text += f", rules {', '.join(cited)}"
    return text, cited


def facts_from(classification: Classification, review: Review | None) -> str:
    """The facts to start from: the moderator's reason for an override, else the model's rationale."""
    text = review.reason if review is not None and review.decision == Decision.OVERRIDE else classification.rationale
    return (text or "").strip() or f"Decided under {classification.policy_version.policy.name} by a moderator."


def _end_date(start: Any, duration_days: int | None) -> Any:
    return (start + timedelta(days=duration_days)).date() if duration_days else None


def _statement_fields(action: Action, classification: Classification, review: Review | None, category: str
                      ) -> dict[str, Any]:
    """A new statement's fields. `review` None: a moderator made an automated decision's action restrict
    (`edit_action`); the model decided, a person chose the restriction, so it is partially automated.
    (The statements of fully automated decisions are written in SQL by `enforcement.automated`.)"""
    ground, cited = ground_text(classification, review)
    detected = Classification.objects.filter(item_id=classification.item_id,
                                             policy_version_id=classification.policy_version_id,
                                             violation=True).exists()
    return {
        "facts": facts_from(classification, review),
        "ground": ground,
        "cited_rules": cited,
        "automated_detection": detected,
        # Approving the model's verdict: the model proposed, a person confirmed. An override: a person decided.
        "automated_decision": AutomatedDecision.PARTIALLY if review is None or review.decision == Decision.APPROVE
        else AutomatedDecision.NOT_AUTOMATED,
        "source_type": source_of(classification.item),
        "category": category if category in CATEGORIES else settings.ENFORCEMENT_TDB_CATEGORY,
        "application_date": timezone.localdate(action.decided_at),
        "content_date": timezone.localdate(classification.item.created_at),
        "end_date": _end_date(action.decided_at, action.duration_days),
    }


@transaction.atomic
def record_for_classification(classification_id: int) -> Action | None:
    """The action (and statement) for a decided classification; the existing one when recorded before."""
    classification = (Classification.objects.select_for_update(of=("self",))
                      .select_related("item", "policy_version__policy").filter(pk=classification_id).first())
    if classification is None or classification.review_status != ReviewStatus.DECIDED:
        return None
    existing = Action.objects.filter(classification=classification).first()
    review = _final_review(classification)
    if existing is not None:
        if existing.review_id is None and review is not None:
            # Recorded when the verdict closed on its own; a person has decided it since (after a re-read
            # sent it to review): their decision is the one in force.
            return follow_review(user=review.reviewer, action_id=existing.pk, review=review,
                                 event="enforcement.action_redecided")
        return existing
    if review is None:
        return None
    codes, violation = decided(classification, review)
    choice = rules.action_for(policy_id=classification.policy_version.policy_id, codes=codes, violation=violation)
    action = Action.objects.create(
        classification=classification, item_id=classification.item_id, review=review,
        policy_version=classification.policy_version, decided_code=next((c for c in codes if c), "")[:60],
        violation=violation, action=choice.action, duration_days=choice.duration_days, decided_at=review.created_at,
    )
    after: dict[str, Any] = {"action": action.action, "duration_days": action.duration_days,
                             "code": action.decided_code}
    if action.restricts:
        statement = Statement.objects.create(action=action, **_statement_fields(action, classification, review,
                                                                                choice.category))
        after["statement"] = str(statement.puid)
    record(actor=None, actor_name="system:enforcement", action="enforcement.action_recorded", obj=action,
           after=after)
    return action


def record_for_items(item_ids: Iterable[int]) -> list[Action]:
    """Record the actions of every decided classification of these items that has none yet: the
    verdicts no person had to decide (`enforcement.automated`, set-based), then the moderators' decisions;
    returns the moderators' actions."""
    item_ids = list(item_ids)
    automated.record_for_items(item_ids)
    # No action yet, or only one recorded without a person that a moderator's decision now replaces.
    ids = list(Classification.objects.filter(item_id__in=item_ids, review_status=ReviewStatus.DECIDED)
               .filter(Q(enforcement_action__isnull=True) | Q(enforcement_action__review__isnull=True))
               .values_list("id", flat=True))
    out = []
    for pk in ids:
        try:
            action = record_for_classification(pk)
        except IntegrityError:  # another process recorded it first: its action stands
            action = Action.objects.filter(classification_id=pk).first()
        if action is not None:
            out.append(action)
    return out


def on_item_decided(sender: Any, item_ids: list[int], **kwargs: Any) -> None:
    try:
        record_for_items(item_ids)
    except Exception:
        # The decision is stored; its action is recorded again when the webhook payload is built.
        log.exception("could not record enforcement actions for items %s", item_ids)


@transaction.atomic
def edit_action(*, user: Any, action_id: int, action: str, duration_days: int | None = None, facts: str | None = None,
                decision_ground: str | None = None, legal_ground: str | None = None) -> Action:
    """A moderator's change to an action and its statement, audited. Changing a restricting action to
    "none" withdraws its statement; changing it back restores it (same platform id)."""
    if action not in ActionType.values:
        raise ActionError(f"{action!r} is not an action")
    if action == ActionType.NONE:
        duration_days = None
    if duration_days is not None and not 1 <= duration_days <= rules.MAX_DURATION_DAYS:
        raise ActionError(f"A duration is 1 to {rules.MAX_DURATION_DAYS} days (empty: indefinite)")
    row = (Action.objects.select_for_update(of=("self",))
           .select_related("classification__item", "classification__policy_version__policy", "review")
           .filter(pk=action_id).first())
    if row is None:
        raise ActionError("No such action")
    statement = Statement.objects.select_for_update().filter(action=row).first()
    before: dict[str, Any] = {"action": row.action, "duration_days": row.duration_days}
    if statement is not None:
        before.update(facts=statement.facts, decision_ground=statement.decision_ground,
                      legal_ground=statement.legal_ground, withdrawn=statement.withdrawn_at is not None)
    row.action, row.duration_days = action, duration_days
    row.save(update_fields=["action", "duration_days", "updated_at"])
    after: dict[str, Any] = {"action": action, "duration_days": duration_days}
    if row.restricts:
        if statement is None:
            statement = Statement(action=row, **_statement_fields(row, row.classification, row.review, ""))
        statement.withdrawn_at = None
        statement.end_date = _end_date(row.decided_at, duration_days)
        if facts is not None:
            if not facts.strip():
                raise ActionError("The facts may not be empty")
            statement.facts = facts.strip()
        if decision_ground is not None:
            if decision_ground not in DecisionGround.values:
                raise ActionError(f"{decision_ground!r} is not a ground")
            statement.decision_ground = decision_ground
        if legal_ground is not None:
            statement.legal_ground = legal_ground.strip()
        if statement.decision_ground == DecisionGround.ILLEGAL_CONTENT and not statement.legal_ground:
            raise ActionError("Illegal content needs the legal ground relied on")
        statement.edited_by = user
        statement.save()
        after.update(facts=statement.facts, decision_ground=statement.decision_ground,
                     legal_ground=statement.legal_ground, statement=str(statement.puid), withdrawn=False)
    elif _withdraw(statement, user):
        after.update(statement=str(statement.puid), withdrawn=True)
    record(actor=user, action="enforcement.action_edited", obj=row, before=before, after=after)
    return row


def _withdraw(statement: Statement | None, user: Any) -> bool:
    """Withdraw a statement whose action no longer restricts; whether there was one to withdraw."""
    if statement is None or statement.withdrawn_at is not None:
        return False
    statement.withdrawn_at, statement.edited_by = timezone.now(), user
    statement.save(update_fields=["withdrawn_at", "edited_by", "updated_at"])
    return True


@transaction.atomic
def follow_review(*, user: Any, action_id: int, review: Review, event: str = "enforcement.action_reversed") -> Action:
    """The action a later review calls for (an appeal's reversal, or a moderator deciding a verdict whose
    action was recorded without a person), chosen by the policy's rules as when the action was first
    recorded, with its statement of reasons written afresh from that review (same platform id), or
    withdrawn when the action no longer restricts. Audited as `event`."""
    row = (Action.objects.select_for_update(of=("self",))
           .select_related("classification__item", "classification__policy_version__policy")
           .filter(pk=action_id).first())
    if row is None:
        raise ActionError("No such action")
    classification = row.classification
    codes, violation = decided(classification, review)
    choice = rules.action_for(policy_id=classification.policy_version.policy_id, codes=codes, violation=violation)
    before: dict[str, Any] = {"action": row.action, "duration_days": row.duration_days, "code": row.decided_code,
                              "review": row.review_id}
    row.review, row.decided_at, row.violation = review, review.created_at, violation
    row.decided_code = next((c for c in codes if c), "")[:60]
    row.action, row.duration_days = choice.action, choice.duration_days
    row.save()
    after: dict[str, Any] = {"action": row.action, "duration_days": row.duration_days, "code": row.decided_code,
                             "review": review.pk}
    statement = Statement.objects.select_for_update().filter(action=row).first()
    if row.restricts:
        fields = _statement_fields(row, classification, review, choice.category)
        if statement is None:
            statement = Statement(action=row)
        for name, value in fields.items():
            setattr(statement, name, value)
        statement.withdrawn_at, statement.edited_by = None, user
        statement.save()
        after.update(statement=str(statement.puid), withdrawn=False)
    elif _withdraw(statement, user):
        after.update(statement=str(statement.puid), withdrawn=True)
    record(actor=user, action=event, obj=row, before=before, after=after)
    return row
