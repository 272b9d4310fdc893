"""Webhook deliveries: telling a client the final decision on an item it submitted, and the outcome of
an appeal against one (`queue_appeal_delivery`, event appeal.decided, on `enforcement.signals`).

The one entry point is `queue_decision_delivery(item_id)`: it finds out whether the item is decided
and the decision is news, and queues a delivery that `attempt_delivery` (the RQ job
`api.jobs.deliver_webhook`) posts through `api.webhooks`, retrying with backoff. Final decisions come
from the layers below as signals (`console.signals`): `on_item_decided` for moderators' decisions,
`on_verdicts_stored` for the reasoner's batches (checked in the webhook worker, off the GPU's path,
which also records the enforcement actions of the verdicts that need no person).
Jobs are enqueued by dotted path, so this module and `api.jobs` do not import each other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api import item_states, redis_client, webhooks
from api.metrics import DELIVERY_ATTEMPTS, DELIVERY_FAILURES
from api.models import ApiClient, DeliveryStatus, RouteChoice, WebhookDelivery
from audit.writer import record
from console.models import Classification, Item
from enforcement import actions as enforcement_actions
from enforcement import automated as enforcement_automated
from enforcement import shapes as enforcement_shapes
from enforcement.models import Appeal

log = logging.getLogger("api.webhooks")  # the name the decision-webhook failures were logged under

WEBHOOK_QUEUE = "webhooks"
SWEEP_INTERVAL_S = 60
OWED_MAX = 500_000  # about three hours of one GPU's verdicts; beyond that the oldest are logged and dropped


def enqueue_delivery(delivery_id: int, delay_s: float = 0.0) -> None:
    """Hand one delivery to the webhook worker, now or after `delay_s`."""
    queue = redis_client.queue(WEBHOOK_QUEUE)
    if delay_s > 0:
        queue.enqueue_in(timedelta(seconds=delay_s), "api.jobs.deliver_webhook", delivery_id)
    else:
        queue.enqueue("api.jobs.deliver_webhook", delivery_id)


def check_decisions_later(classification_ids: Iterable[int]) -> None:
    """Hand freshly stored reasoner results to the webhook worker (one Redis round trip), which works
    out which items are now decided and tells their clients (`notify_decisions`)."""
    ids = [int(pk) for pk in classification_ids]
    if ids:
        redis_client.queue(WEBHOOK_QUEUE).enqueue("api.jobs.notify_decisions", ids)


def record_actions_later(item_ids: Iterable[int]) -> None:
    """Once the current transaction commits, hand items the first pass closed to the webhook worker,
    which records their enforcement actions (`enforcement.automated`; one Redis round trip). Should
    Redis be away, the failure is logged and the actions wait for the next time the items are touched
    (a decision, a webhook payload): ingestion has succeeded."""
    ids = sorted({int(pk) for pk in item_ids})
    if ids:
        transaction.on_commit(lambda: redis_client.queue(WEBHOOK_QUEUE, immediate=True).enqueue(
            "api.jobs.record_automated_actions", ids), robust=True)


def notify_decisions(classification_ids: list[int]) -> int:
    """Record the actions of the verdicts among these classifications that no person has to decide (one
    statement for the batch), then queue decision webhooks for their items; how many were queued."""
    item_ids = sorted(set(Classification.objects.filter(id__in=classification_ids).values_list("item_id", flat=True)))
    enforcement_automated.record_for_items(item_ids)
    return sum(queue_decision_delivery(item_id=pk) is not None for pk in item_ids)


def sweep_late() -> int:
    """Re-enqueue deliveries that should have been attempted a while ago (their job was lost)."""
    late = timezone.now() - timedelta(seconds=SWEEP_INTERVAL_S)
    ids = list(WebhookDelivery.objects.due(late).values_list("id", flat=True)[:1000])
    for pk in ids:
        enqueue_delivery(pk)
    return len(ids)


# --- receivers of console.signals (connected in ApiConfig.ready) ----------------------------------

# Results whose decision check could not be handed to RQ yet (Redis away): retried with the next
# batch's, so a short Redis outage delays a client's webhook instead of losing it.
owed: list[int] = []
_owed_lock = threading.Lock()


def on_verdicts_stored(sender: Any, classification_ids: list[int], **kwargs: Any) -> None:
    global owed
    with _owed_lock:
        pending = owed + list(classification_ids)
        try:
            check_decisions_later(pending)
            owed = []
        except Exception:  # the verdicts are stored and visible in the console; the webhooks wait
            owed = pending[-OWED_MAX:]
            log.exception("could not queue decision webhooks for %d stored verdicts; retrying with the next "
                          "batch (%d dropped over the cap)", len(pending), len(pending) - len(owed))


def on_item_decided(sender: Any, item_ids: list[int], **kwargs: Any) -> None:
    for item_id in item_ids:
        try:
            queue_decision_delivery(item_id=item_id)
        except Exception:
            # The decision is stored and the moderator's work is done; a failure here must not undo or
            # fail it, but it is logged loudly: the platform has not been told.
            log.exception("could not queue the decision webhook for item %s", item_id)


def on_appeal_decided(sender: Any, appeal_id: int, **kwargs: Any) -> None:
    try:
        queue_appeal_delivery(appeal_id=appeal_id)
    except Exception:
        log.exception("could not queue the webhook for the outcome of appeal %s", appeal_id)


# --- deliveries -----------------------------------------------------------------------------------


@transaction.atomic
def queue_decision_delivery(*, item_id: int) -> WebhookDelivery | None:
    """Queue a webhook telling the item's client its decision, when the item is decided, the client
    has a webhook URL, and this outcome was not told before. Returns the new delivery, if any."""
    source = Item.objects.filter(pk=item_id).values_list("source", flat=True).first()
    client = ApiClient.objects.active().filter(source=source).exclude(webhook_url="").first() if source else None
    if client is None:
        return None
    state = item_states.item_states([item_id]).get(item_id)
    if state is None or state["status"] != item_states.DECIDED:
        return None
    closed_at_once = all(p["route"] in (RouteChoice.CLOSED, RouteChoice.QC_SAMPLE) for p in state["policies"])
    if closed_at_once and not state["decision"]["flagged"] and not WebhookDelivery.objects.filter(
        item_id=item_id
    ).exists():
        return None  # the API's answer already said "closed, not flagged" (a quality check confirmed it)
    delivery, created = WebhookDelivery.objects.get_or_create(
        item_id=item_id,
        decision_key=item_states.decision_key(state),
        defaults={"client": client, "event": "item.decided", "url": client.webhook_url, "payload": {},
                  "next_attempt_at": timezone.now()},
    )
    if not created:
        return None
    delivery.payload = {"id": f"whd_{delivery.pk}", "event": delivery.event, "created_at": item_states.iso(
        delivery.created_at), "item": with_enforcement(item_id, state)}
    delivery.save(update_fields=["payload"])
    record(actor=None, actor_name="system:webhooks", action="webhook.queued", obj=delivery,
           after={"client": client.name, "item": item_id, "flagged": state["decision"]["flagged"]})
    transaction.on_commit(lambda: enqueue_delivery(delivery.pk))
    return delivery


@transaction.atomic
def queue_appeal_delivery(*, appeal_id: int) -> WebhookDelivery | None:
    """Queue a webhook telling the item's client the outcome of a decided appeal: the appeal, the action
    now in force and its statement of reasons, and the item's state as it now stands. Once per appeal."""
    appeal = Appeal.objects.select_related("item", "action__policy_version__policy").filter(pk=appeal_id).first()
    if appeal is None or appeal.decided_at is None:
        return None
    client = ApiClient.objects.active().filter(source=appeal.item.source).exclude(webhook_url="").first()
    if client is None:
        return None
    delivery, created = WebhookDelivery.objects.get_or_create(
        item_id=appeal.item_id, decision_key=f"appeal-{appeal.pk}",
        defaults={"client": client, "event": "appeal.decided", "url": client.webhook_url, "payload": {},
                  "next_attempt_at": timezone.now()},
    )
    if not created:
        return None
    state = item_states.item_states([appeal.item_id])[appeal.item_id]
    delivery.payload = {"id": f"whd_{delivery.pk}", "event": delivery.event,
                        "created_at": item_states.iso(delivery.created_at),
                        "appeal": enforcement_shapes.appeal_outcome(appeal),
                        "item": with_enforcement(appeal.item_id, state)}
    delivery.save(update_fields=["payload"])
    record(actor=None, actor_name="system:webhooks", action="webhook.queued", obj=delivery,
           after={"client": client.name, "item": appeal.item_id, "appeal": appeal.pk, "outcome": appeal.status})
    transaction.on_commit(lambda: enqueue_delivery(delivery.pk))
    return delivery


def with_enforcement(item_id: int, state: dict[str, Any]) -> dict[str, Any]:
    """The item's state with each policy's enforcement `action` and `statement` of reasons (None where a
    policy is not decided yet, or its action is "none"). Records the actions first (the moderators' and
    the automated ones), in case this receiver ran before the enforcement app's or the batch's job."""
    enforcement_actions.record_for_items([item_id])
    found = enforcement_shapes.by_policy(item_id)
    policies = []
    for policy in state["policies"]:
        entry = found.get((policy["policy"], policy["version"]), {})
        policies.append({**policy, "action": entry.get("action"), "statement": entry.get("statement")})
    return {**state, "policies": policies}


def backoff_s(attempts: int) -> float:
    """Wait after the `attempts`-th failed attempt: WEBHOOK_BACKOFF_S, doubling, capped."""
    return min(settings.WEBHOOK_BACKOFF_S * 2 ** max(0, attempts - 1), settings.WEBHOOK_BACKOFF_MAX_S)


@transaction.atomic
def attempt_delivery(*, delivery_id: int) -> WebhookDelivery | None:
    """Make one attempt at a pending delivery and log it; schedule the next after a failure.

    The row stays locked during the request (at most WEBHOOK_TIMEOUT_S), so two workers holding
    copies of the job never post the same delivery twice. None: nothing to do (done, or held).
    """
    delivery = (
        WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",)).select_related("client")
        .filter(pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]).first()
    )
    if delivery is None:
        return None
    if delivery.next_attempt_at and delivery.next_attempt_at > timezone.now() + timedelta(seconds=0.5):
        return None  # a duplicate job came early (the sweeper's copy): the scheduled attempt will run
    before = {"status": delivery.status, "attempts": delivery.attempts}
    client = delivery.client
    if not client.is_active or not client.webhook_url:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        delivery.error = "the client was revoked" if not client.is_active else "the client has no webhook URL now"
        delivery.save()
        record(actor=None, actor_name="system:webhooks", action="webhook.failed", obj=delivery, before=before,
               after={"status": delivery.status, "error": delivery.error})
        DELIVERY_ATTEMPTS.labels(delivery.status).inc()
        DELIVERY_FAILURES.labels("client_gone").inc()
        return delivery
    delivery.url = client.webhook_url
    result = webhooks.post(delivery.url, delivery.payload, secret=client.webhook_secret,
                           delivery_id=f"whd_{delivery.pk}")
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.response_code = result.status_code
    delivery.response_excerpt = result.excerpt[:500]
    delivery.error = result.error[:500]
    if result.ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = DeliveryStatus.DELIVERED, now, None
        action = "webhook.delivered"
    elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        action = "webhook.failed"
    else:
        delay = backoff_s(delivery.attempts)
        delivery.status, delivery.next_attempt_at = DeliveryStatus.RETRYING, now + timedelta(seconds=delay)
        action = "webhook.retrying"
        # RQ schedules at whole seconds, rounding down: one more second keeps the job from coming early.
        transaction.on_commit(lambda: enqueue_delivery(delivery.pk, delay_s=delay + 1))
    delivery.save()
    record(actor=None, actor_name="system:webhooks", action=action, obj=delivery, before=before,
           after={"status": delivery.status, "attempts": delivery.attempts, "response_code": result.status_code,
                  "error": delivery.error, "next_attempt_at": item_states.iso(delivery.next_attempt_at)})
    DELIVERY_ATTEMPTS.labels(delivery.status).inc()
    return delivery


@transaction.atomic
def redeliver(*, actor: Any, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again from the start (an admin's decision after fixing the receiver)."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    before = {"status": delivery.status, "attempts": delivery.attempts}
    delivery.status, delivery.attempts, delivery.next_attempt_at = DeliveryStatus.PENDING, 0, timezone.now()
    delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
    record(actor=actor, action="webhook.redeliver", obj=delivery, before=before, after={"status": delivery.status})
    transaction.on_commit(lambda: enqueue_delivery(delivery.pk))
    return delivery
