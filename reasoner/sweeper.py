"""The sweeper: re-queues classifications whose worker died or hung (their lease ran out, unrenewed by
the worker's heartbeat). Every worker runs it every third of a lease; `manage.py sweep_classifications`
runs it once."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.writer import Entry, record_many
from console import signals, wakeup
from console.models import Classification
from evaluations import signals as evaluation_signals
from reasoner import sql
from reasoner.pipeline import QUEUED, RUNNING

log = logging.getLogger("console.reasoner")  # the name it had before the reasoner became an app


def sweep_stale(now: datetime | None = None) -> int:
    """Re-queue running classifications whose lease ran out (their worker died or hung).

    A row whose attempts are used up fails instead (needs review), so an item that kills its worker
    every time cannot loop forever. Returns how many rows were swept.
    """
    now = now or timezone.now()
    return _sweep_live(now) + _sweep_evaluation(now)


def _sweep_evaluation(now: datetime) -> int:
    """The same for evaluation results (not audited row by row: their run is)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql.EVAL_SWEEP_SQL, {"now": now, "attempts": settings.SAFEGUARD_ATTEMPTS})
            rows = cursor.fetchall()
        if rows:
            run_ids = sorted({run_id for _, run_id in rows})
            # A result that failed for good may be its run's last: let the run see it.
            transaction.on_commit(lambda: signals.send(evaluation_signals.results_stored, sender=sweep_stale,
                                                       run_ids=run_ids))
            transaction.on_commit(wakeup.wake_reasoner)
            log.warning("swept %d evaluation results whose lease expired", len(rows))
    return len(rows)


def _sweep_live(now: datetime) -> int:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql.SWEEP_SQL, {"now": now, "attempts": settings.SAFEGUARD_ATTEMPTS})
            rows = cursor.fetchall()
        if not rows:
            return 0
        # Sweeps are rare, so the audit trail gets the full str() of each row.
        reprs = {
            c.pk: str(c)
            for c in Classification.objects.filter(id__in=[row[0] for row in rows]).select_related(
                "item", "policy_version__policy"
            )
        }
        record_many(actor=None, actor_name="system:sweeper", object_type=Classification, entries=[
            Entry(
                action="classification.requeued" if status == QUEUED else f"classification.{status}",
                object_id=str(pk),
                object_repr=reprs.get(pk, ""),
                before={"status": RUNNING, "worker": worker},
                after={"status": status, "attempts": attempts, "reason": "lease expired"},
            )
            for pk, status, attempts, worker in rows
        ])
        if any(status == QUEUED for _, status, _, _ in rows):
            transaction.on_commit(wakeup.wake_reasoner)
    log.warning("swept %d classifications whose lease expired", len(rows))
    return len(rows)
