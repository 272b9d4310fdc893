"""RQ jobs of the ingestion API: thin wrappers that load by primary key and call a service.

Periodic work (first-pass retraining, the webhook sweep) runs as self-rescheduling jobs on the
`default` queue, which `manage.py rqworker default webhooks --with-scheduler` runs. A Redis key per
chain marks it alive; `ensure_scheduled` (called after every ingestion, at most once a minute per
process) restarts a chain whose key expired, so a flushed Redis or a lost job heals itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from api import queues

log = logging.getLogger(__name__)

WEBHOOK_QUEUE = "webhooks"
PERIODIC_QUEUE = "default"
SWEEP_INTERVAL_S = 60
_CHAIN_KEY = "api:schedule:{name}"
_ENSURE_EVERY_S = 60.0
_last_ensured = 0.0


# --- webhooks ------------------------------------------------------------------------------------


def deliver_webhook(delivery_id: int) -> str:
    from api import services

    delivery = services.attempt_delivery(delivery_id=delivery_id)
    return delivery.status if delivery else "skipped"


def enqueue_delivery(delivery_id: int, delay_s: float = 0.0) -> None:
    queue = queues.queue(WEBHOOK_QUEUE)
    if delay_s > 0:
        queue.enqueue_in(timedelta(seconds=delay_s), deliver_webhook, delivery_id)
    else:
        queue.enqueue(deliver_webhook, delivery_id)


def on_verdicts_stored(classification_ids: Iterable[int]) -> None:
    """Hand freshly stored reasoner verdicts to the webhook worker (one Redis round trip).

    The reasoner worker calls this after a batch of verdicts has committed; the job works out which
    items are now decided and tells their clients.
    """
    ids = [int(pk) for pk in classification_ids]
    if ids:
        queues.queue(WEBHOOK_QUEUE).enqueue(notify_decisions, ids)


def notify_decisions(classification_ids: list[int]) -> int:
    """Queue decision webhooks for the items of these classifications; how many were queued."""
    from api import services
    from console.models import Classification

    item_ids = sorted(set(Classification.objects.filter(id__in=classification_ids).values_list("item_id", flat=True)))
    return sum(services.queue_decision_delivery(item_id=pk) is not None for pk in item_ids)


def sweep_webhooks() -> int:
    """Re-enqueue deliveries that should have been attempted a while ago (their job was lost)."""
    from api.models import WebhookDelivery

    late = timezone.now() - timedelta(seconds=SWEEP_INTERVAL_S)
    ids = list(WebhookDelivery.objects.due(late).values_list("id", flat=True)[:1000])
    for pk in ids:
        enqueue_delivery(pk)
    return len(ids)


# --- first pass ----------------------------------------------------------------------------------


def retrain_first_pass(policy_id: int | None = None, force: bool = False) -> list[int]:
    """Retrain the first pass of one policy, or of every policy; the ids of the new models."""
    from api import services
    from policies_app.models import Policy

    policies = Policy.objects.filter(pk=policy_id) if policy_id else Policy.objects.all()
    trained = []
    for policy in policies:
        try:
            model = services.retrain_first_pass(policy=policy, force=force)
        except Exception:  # one policy's bad data must not stop the others' retraining
            log.exception("retraining the first pass of %s failed", policy.slug)
            continue
        if model is not None:
            trained.append(model.pk)
    return trained


# --- periodic chains -----------------------------------------------------------------------------


def _periodic() -> dict[str, tuple[object, int]]:
    chains: dict[str, tuple[object, int]] = {"webhook-sweep": (scheduled_webhook_sweep, SWEEP_INTERVAL_S)}
    if settings.FIRST_PASS_RETRAIN_INTERVAL_S > 0:
        chains["retrain"] = (scheduled_retrain, settings.FIRST_PASS_RETRAIN_INTERVAL_S)
    return chains


def _keep_alive(name: str, interval_s: int, *, only_if_missing: bool) -> bool:
    # The key outlives one interval by a margin, so a chain that runs on time always refreshes it.
    return bool(queues.connection().set(_CHAIN_KEY.format(name=name), 1, ex=interval_s + 300, nx=only_if_missing))


def _reschedule(name: str) -> None:
    func, interval_s = _periodic()[name]
    _keep_alive(name, interval_s, only_if_missing=False)
    queues.queue(PERIODIC_QUEUE).enqueue_in(timedelta(seconds=interval_s), func)


def scheduled_retrain() -> list[int]:
    try:
        return retrain_first_pass()
    finally:
        if "retrain" in _periodic():
            _reschedule("retrain")


def scheduled_webhook_sweep() -> int:
    try:
        return sweep_webhooks()
    finally:
        _reschedule("webhook-sweep")


def ensure_scheduled() -> None:
    """Start any periodic chain that is not running (checked at most once a minute per process)."""
    global _last_ensured
    if not settings.API_PERIODIC_JOBS or time.monotonic() - _last_ensured < _ENSURE_EVERY_S:
        return
    _last_ensured = time.monotonic()
    try:
        for name, (func, interval_s) in _periodic().items():
            if _keep_alive(name, interval_s, only_if_missing=True):
                # At once, not on commit: the marker just set in Redis must not outlive a lost job.
                queues.queue(PERIODIC_QUEUE, immediate=True).enqueue(func)
    except Exception:  # ingestion succeeded; the schedule is retried on the next call after a minute
        log.exception("could not check the periodic API jobs")
