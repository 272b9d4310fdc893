"""The periodic work (first-pass retraining, the webhook sweep, the audit chain's verification, retention) as
self-rescheduling RQ jobs on the `default` queue, which `manage.py rqworker default webhooks --with-scheduler` runs.

A Redis key per chain marks it alive; `ensure_scheduled` (called after every ingestion, at most once a
minute per process) restarts a chain whose key expired, so a flushed Redis or a lost job heals itself.
Jobs are named by dotted path (they live in `api.jobs`, which imports this module).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings

from api import redis_client
from api.deliveries import SWEEP_INTERVAL_S

log = logging.getLogger("api.jobs")  # the name it had when the schedule lived in api.jobs

PERIODIC_QUEUE = "default"
_CHAIN_KEY = "api:schedule:{name}"
_ENSURE_EVERY_S = 60.0
_last_ensured = 0.0


def periodic() -> dict[str, tuple[str, int]]:
    """Each chain's name: (its job's dotted path, its interval in seconds)."""
    chains = {"webhook-sweep": ("api.jobs.scheduled_webhook_sweep", SWEEP_INTERVAL_S)}
    if settings.FIRST_PASS_RETRAIN_INTERVAL_S > 0:
        chains["retrain"] = ("api.jobs.scheduled_retrain", settings.FIRST_PASS_RETRAIN_INTERVAL_S)
    if settings.AUDIT_VERIFY_EVERY_S > 0:
        chains["audit-verify"] = ("api.jobs.scheduled_audit_verify", settings.AUDIT_VERIFY_EVERY_S)
    if settings.RETENTION_EVERY_S > 0:
        chains["retention"] = ("api.jobs.scheduled_retention", settings.RETENTION_EVERY_S)
    return chains


def _keep_alive(name: str, interval_s: int, *, only_if_missing: bool) -> bool:
    # The key outlives one interval by a margin, so a chain that runs on time always refreshes it.
    return bool(redis_client.connection().set(_CHAIN_KEY.format(name=name), 1, ex=interval_s + 300,
                                              nx=only_if_missing))


def reschedule(name: str) -> None:
    """Run chain `name` again after its interval, if it is still configured."""
    chains = periodic()
    if name not in chains:
        return
    func, interval_s = chains[name]
    _keep_alive(name, interval_s, only_if_missing=False)
    redis_client.queue(PERIODIC_QUEUE).enqueue_in(timedelta(seconds=interval_s), func)


def ensure_scheduled() -> None:
    """Start any periodic chain that is not running (checked at most once a minute per process)."""
    global _last_ensured
    if not settings.API_PERIODIC_JOBS or time.monotonic() - _last_ensured < _ENSURE_EVERY_S:
        return
    _last_ensured = time.monotonic()
    try:
        for name, (func, interval_s) in periodic().items():
            if _keep_alive(name, interval_s, only_if_missing=True):
                # At once, not on commit: the marker just set in Redis must not outlive a lost job.
                redis_client.queue(PERIODIC_QUEUE, immediate=True).enqueue(func)
    except Exception:  # ingestion succeeded; the schedule is retried on the next call after a minute
        log.exception("could not check the periodic API jobs")
