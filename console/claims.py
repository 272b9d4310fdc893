"""Claims: a moderator who opens an item holds it for CLAIM_SECONDS (renewed while the page is open), so
two people never decide the same item at once; "next" claims the first free item of a queue.
Taking and giving back a claim is audited and shown live on the open pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.roles import Role, roles_of
from audit.writer import entry, record, record_many
from console import broadcast, queues
from console.errors import ClaimConflict, ReviewError
from console.models import Claim, Classification, Item, ReviewQueue
from console.permissions import can_decide

CLAIM_SECONDS = 300  # how long opening an item holds it; the open page renews it every minute


@transaction.atomic
def claim_item(*, user: Any, item_id: int) -> Any:
    """Claim the item for `user` (or renew their claim) for CLAIM_SECONDS.

    Raises ClaimConflict when someone else holds a live claim, ReviewError when nothing on the item
    awaits a decision `user` may take. Taking a claim is audited and broadcast; renewing it is neither
    (the open page renews every minute, which would bury the audit log without telling anyone anything).
    """
    now = timezone.now()
    # Locking the item row serialises claims on it; NO KEY UPDATE still lets workers add classifications.
    item = Item.objects.select_for_update(no_key=True).filter(pk=item_id).first()
    if item is None:
        raise ReviewError("No such item")
    open_here = Classification.objects.awaiting_review().filter(item_id=item_id)
    if not any(can_decide(user, c) for c in open_here.only("id", "review_status")):
        raise ReviewError("Nothing on this item awaits a decision you can take")
    claim = Claim.objects.select_related("user").filter(item_id=item_id).first()
    if claim is not None and claim.user_id != user.pk and claim.expires_at > now:
        raise ClaimConflict(claim)
    taking = claim is None or claim.user_id != user.pk or claim.expires_at <= now
    expires = now + timedelta(seconds=CLAIM_SECONDS)
    if claim is None:
        claim = Claim.objects.create(item=item, user=user, claimed_at=now, expires_at=expires)
    else:
        if taking:
            claim.user, claim.claimed_at = user, now
        claim.expires_at = expires
        claim.save()
    if taking:
        record(actor=user, action="item.claimed", obj=item, after={"until": expires.isoformat()})
        broadcast.on_commit(broadcast.claim_changed, item_id=item_id, username=user.get_username(),
                                         since=now.isoformat())
        # A moderator works one item at a time: opening another gives back the one left behind, so it
        # is free for the others at once instead of when its claim runs out.
        _release_all(user=user, now=now, keep=item_id)
    return claim


def _release_all(*, user: Any, now: Any, keep: int) -> None:
    left = list(Claim.objects.live(now).filter(user=user).exclude(item_id=keep).values_list("item_id", flat=True))
    if not left:
        return
    Claim.objects.filter(item_id__in=left, user=user).delete()
    record_many(actor=user, object_type=Item, entries=[
        entry(item, "item.released") for item in Item.objects.filter(pk__in=left).only("id", "source", "external_id")
    ])
    for pk in left:
        broadcast.on_commit(broadcast.claim_changed, item_id=pk, username="", since="")


@transaction.atomic
def release_claim(*, user: Any, item_id: int) -> bool:
    """Give the item back (the moderator left it undecided). Whether there was a claim to give back."""
    claim = Claim.objects.select_for_update().filter(item_id=item_id, user=user).first()
    if claim is None:
        return False
    live = claim.expires_at > timezone.now()
    claim.delete()
    if live:
        record(actor=user, action="item.released", obj=Item.objects.get(pk=item_id))
        broadcast.on_commit(broadcast.claim_changed, item_id=item_id, username="", since="")
    return live


def claim_next(*, user: Any, filters: Any, leaving: int | None = None) -> int | None:
    """Claim the first item of the (filtered) queue that no one holds and `user` has not skipped lately;
    its id, or None when there is none. `leaving` is an item the moderator moves on from undecided:
    its claim is released first."""
    if leaving is not None:
        release_claim(user=user, item_id=leaving)
    now = timezone.now()
    qs = queues.unclaimed_for(queues.select(filters), user, now)
    if Role.ADMIN not in roles_of(user):
        qs = qs.exclude(queue=ReviewQueue.ESCALATED)
    if leaving is not None:
        qs = qs.exclude(item_id=leaving)
    ordered = qs.order_by(*queues.ORDER_KEYS[filters.order]).values_list("item_id", flat=True)
    candidates = list(dict.fromkeys(ordered[:25]))
    for item_id in candidates:
        try:
            with transaction.atomic():
                # Another moderator's "next" may be claiming this very item: skip it rather than wait.
                if not Item.objects.select_for_update(skip_locked=True, no_key=True).filter(pk=item_id).exists():
                    continue
                claim_item(user=user, item_id=item_id)
                return item_id
        except ReviewError:
            continue
    return None
