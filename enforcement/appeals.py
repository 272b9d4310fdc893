"""Appeals (DSA Art. 20 internal complaint handling): filing a complaint against a decided action, and a
moderator's decision on it.

Nothing automated decides an appeal: `decide_appeal` takes a person with the moderator (or admin) role
who did not make the decision complained about, and the database refuses a decided appeal without
`decided_by`, or with `decided_by` the original reviewer, as a backstop. A reversal is recorded as the
deciding moderator's override of the classification (`console.decisions.reverse`) and the action
follows it (`enforcement.actions.follow_review`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role, has_role
from audit.writer import record
from console import decisions
from console.errors import ReviewError
from console.models import Item
from console.permissions import can_review
from console.signals import send_on_commit
from enforcement import actions, live, signals
from enforcement.models import Action, Appeal, AppealStatus, Complainant

REASON_MAX = 5000
EXTERNAL_ID_MAX = 200
OUTCOMES = (AppealStatus.UPHELD, AppealStatus.REVERSED)


class AppealError(ValueError):
    """A refused filing or decision; nothing was changed. `field` names the input at fault ("" when the
    refusal is about the state of things, not an input)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class AppealConflict(AppealError):
    """The request contradicts what is stored: an external id reused for another complaint, or an
    appeal already open on the action."""


def _action_appealed(item: Item, policy: str) -> Action:
    """The item's action for `policy` (a slug), or its latest when no policy is named."""
    rows = Action.objects.filter(item=item).select_related("review", "policy_version__policy")
    if policy:
        rows = rows.filter(policy_version__policy__slug=policy)
    action = rows.order_by("-decided_at", "-id").first()
    if action is None:
        if policy:
            raise AppealError(f"item {item.pk} has no decided action under the policy {policy!r}", "policy")
        raise AppealError(f"item {item.pk} has no decided action to appeal yet")
    return action


def _same_complaint(appeal: Appeal, *, reason: str, complainant: str, policy: str) -> bool:
    return (appeal.reason == reason and appeal.complainant == complainant
            and (not policy or appeal.action.policy_version.policy.slug == policy))


@transaction.atomic
def file_appeal(*, item_id: int, reason: str, complainant: str = Complainant.AFFECTED, policy: str = "",
                external_id: str = "", filed_by: Any = None, filed_via: str) -> tuple[Appeal, bool]:
    """File a complaint against the item's decided action (see `_action_appealed`); (appeal, created).

    Idempotent by (item, external_id): the same id with the same complaint returns the stored appeal
    (created False); the same id with another complaint is an AppealConflict. `filed_by` is the admin
    who filed it, None through the API; `filed_via` says which (api:<client>, or the username)."""
    reason, external_id, policy = (reason or "").strip(), (external_id or "").strip(), (policy or "").strip()
    if not reason:
        raise AppealError("the reason is required: what does the complainant say?", "reason")
    if len(reason) > REASON_MAX:
        raise AppealError(f"the reason is {len(reason)} characters; at most {REASON_MAX}", "reason")
    if len(external_id) > EXTERNAL_ID_MAX:
        raise AppealError(f"the external id is {len(external_id)} characters; at most {EXTERNAL_ID_MAX}",
                          "external_id")
    if complainant not in Complainant.values:
        raise AppealError(f"{complainant!r} is not a complainant: choose {' or '.join(Complainant.values)}",
                          "complainant")
    # Filings on one item wait for each other here, so a repeated request finds the first one's appeal.
    item = Item.objects.select_for_update(no_key=True).filter(pk=item_id).first()
    if item is None:
        raise AppealError(f"there is no item {item_id}", "item")
    if external_id:
        existing = (Appeal.objects.select_related("action__policy_version__policy")
                    .filter(item=item, external_id=external_id).first())
        if existing is not None:
            if _same_complaint(existing, reason=reason, complainant=complainant, policy=policy):
                return existing, False
            raise AppealConflict(f"the external id {external_id!r} was used for another complaint on this item "
                                 f"(appeal {existing.pk}); use a new id for a new complaint", "external_id")
    action = _action_appealed(item, policy)
    if Appeal.objects.open().filter(action=action).exists():
        raise AppealConflict(f"an appeal against this decision ({action.policy_version.policy.slug}) is already "
                             "open; it is decided before another is filed")
    now = timezone.now()
    appeal = Appeal.objects.create(
        item=item, action=action, external_id=external_id, complainant=complainant, reason=reason,
        filed_by=filed_by, filed_via=filed_via[:150], received_at=now,
        due_at=now + timedelta(days=settings.APPEAL_DEADLINE_DAYS),
        original_reviewer=action.review.reviewer if action.review else None,
    )
    record(actor=filed_by, actor_name="" if filed_by else filed_via, action="appeal.filed", obj=appeal,
           after={"item": item.pk, "action": action.pk, "complainant": complainant, "external_id": external_id,
                  "due_at": appeal.due_at.isoformat(), "filed_via": appeal.filed_via})
    transaction.on_commit(lambda: live.appeal_filed(appeal.pk), robust=True)
    return appeal, True


@transaction.atomic
def file_by_admin(*, user: Any, item_id: int, reason: str, complainant: str, policy: str = "") -> Appeal:
    """An admin files a complaint that reached the platform another way (a letter, a call)."""
    if not has_role(user, Role.ADMIN):
        raise AppealError("Only admins file appeals in the console; platforms file them through the API")
    appeal, _ = file_appeal(item_id=item_id, reason=reason, complainant=complainant, policy=policy,
                            filed_by=user, filed_via=user.get_username())
    return appeal


def refusal_for(user: Any, appeal: Appeal) -> str:
    """Why `user` may not decide `appeal` ("" when they may): the pages say it instead of the form."""
    if appeal.status != AppealStatus.OPEN:
        return f"This appeal was decided already ({appeal.get_status_display().lower()})"
    if not can_review(user):
        return "Appeals are decided by moderators"
    if appeal.original_reviewer_id is not None and appeal.original_reviewer_id == user.pk:
        return "You made the decision complained about: another moderator decides this appeal"
    return ""


@transaction.atomic
def decide_appeal(*, user: Any, appeal_id: int, outcome: str, reason: str, label: str = "",
                  category: str = "") -> Appeal:
    """Uphold or reverse an open appeal, with the deciding moderator's reason (required). A reversal
    needs the corrected label or category: it is recorded as `user`'s override of the classification,
    and the action and its statement of reasons follow it. Upholding changes nothing but the appeal."""
    reason = (reason or "").strip()
    if outcome not in OUTCOMES:
        raise AppealError(f"{outcome!r} is not an outcome: choose {' or '.join(OUTCOMES)}", "outcome")
    if not reason:
        raise AppealError("the reason is required: the complainant is told why", "reason")
    if len(reason) > REASON_MAX:
        raise AppealError(f"the reason is {len(reason)} characters; at most {REASON_MAX}", "reason")
    appeal = (Appeal.objects.select_for_update(of=("self",)).select_related("action", "original_reviewer")
              .filter(pk=appeal_id).first())
    if appeal is None:
        raise AppealError(f"there is no appeal {appeal_id}", "appeal")
    refusal = refusal_for(user, appeal)
    if refusal:
        raise AppealConflict(refusal) if appeal.status != AppealStatus.OPEN else AppealError(refusal)
    after: dict[str, Any] = {"status": outcome, "reason": reason}
    if outcome == AppealStatus.REVERSED:
        try:
            appeal.reversal = decisions.reverse(user=user, classification_id=appeal.action.classification_id,
                                                label=label, category=category, reason=reason)
        except ReviewError as exc:
            raise AppealError(str(exc), "label") from None
        actions.follow_review(user=user, action_id=appeal.action_id, review=appeal.reversal)
        after["review"] = appeal.reversal.pk
    appeal.status, appeal.decided_by, appeal.decided_at, appeal.outcome_reason = outcome, user, timezone.now(), reason
    appeal.save(update_fields=["status", "decided_by", "decided_at", "outcome_reason", "reversal"])
    record(actor=user, action="appeal.decided", obj=appeal, before={"status": AppealStatus.OPEN}, after=after)
    transaction.on_commit(lambda: live.appeal_decided(appeal.pk), robust=True)
    send_on_commit(signals.appeal_decided, sender=Appeal, appeal_id=appeal.pk)
    return appeal
