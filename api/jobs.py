"""RQ jobs of the API: thin, module-level functions that load by primary key and call a service.

Their dotted paths are what Redis holds for queued jobs (`api.jobs.deliver_webhook`, ...), so they stay
here, whatever module does the work. Periodic chains are started by `api.schedule`.
"""

from __future__ import annotations

import logging

from api import deliveries, schedule, training
from audit import jobs as audit_jobs
from enforcement import automated as enforcement_automated
from policies_app.models import Policy
from privacy import jobs as privacy_jobs

log = logging.getLogger(__name__)


def deliver_webhook(delivery_id: int) -> str:
    delivery = deliveries.attempt_delivery(delivery_id=delivery_id)
    return delivery.status if delivery else "skipped"


def notify_decisions(classification_ids: list[int]) -> int:
    """Queue decision webhooks for the items of these classifications; how many were queued."""
    return deliveries.notify_decisions(classification_ids)


def record_automated_actions(item_ids: list[int]) -> int:
    """Record the enforcement actions of these items' verdicts that no person has to decide (queued by
    ingestion for what the first pass closed); how many were recorded."""
    return enforcement_automated.record_for_items(item_ids)


def sweep_webhooks() -> int:
    """Re-enqueue deliveries that should have been attempted a while ago (their job was lost)."""
    return deliveries.sweep_late()


def retrain_first_pass(policy_id: int | None = None, force: bool = False) -> list[int]:
    """Retrain the first pass of one policy, or of every policy; the ids of the new models."""
    policies = Policy.objects.filter(pk=policy_id) if policy_id else Policy.objects.all()
    trained = []
    for policy in policies:
        try:
            model = training.retrain_first_pass(policy=policy, force=force)
        except Exception:  # one policy's bad data must not stop the others' retraining
            log.exception("retraining the first pass of %s failed", policy.slug)
            continue
        if model is not None:
            trained.append(model.pk)
    return trained


def scheduled_retrain() -> list[int]:
    try:
        return retrain_first_pass()
    finally:
        schedule.reschedule("retrain")


def scheduled_audit_verify() -> bool:
    """The audit chain's periodic check (the job lives in the audit app, below the schedule)."""
    try:
        return audit_jobs.verify_chain()
    finally:
        schedule.reschedule("audit-verify")


def scheduled_retention() -> int:
    """The retention rules' periodic run (the job lives in the privacy app, below the schedule)."""
    try:
        return privacy_jobs.apply_retention()
    finally:
        schedule.reschedule("retention")


def scheduled_webhook_sweep() -> int:
    try:
        return sweep_webhooks()
    finally:
        schedule.reschedule("webhook-sweep")
