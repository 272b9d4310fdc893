"""Evaluation runs: start one (a queued result per example, picked up by the reasoner's evaluation lane),
follow its progress, cancel it, and finish it with its metrics once the last result is stored.

Every run's changes are audited (evaluation_run.started / .cancelled / .finished); its results are
measurements and are not audited one by one.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, Exists, Max, Min, OuterRef
from django.utils import timezone

import safeguard
from audit.writer import record
from console import wakeup
from console.models import Classification
from evaluations import live
from evaluations.models import (
    EvaluationResult,
    EvaluationRun,
    Example,
    LabeledSet,
    ResultStatus,
    RunKind,
    RunStatus,
)
from evaluations.scoring import run_metrics
from policies_app.models import PolicyVersion

log = logging.getLogger(__name__)

SETTLED = [s for s in ResultStatus.values if s not in (ResultStatus.QUEUED, ResultStatus.RUNNING)]
RATE_WINDOW = timedelta(hours=1)  # the engine's measured rate comes from results this recent


class RunError(ValueError):
    """A run that cannot be started or changed; the message says why."""


def _snapshot(run: EvaluationRun) -> dict[str, Any]:
    return {"status": run.status, "labeled_set": run.labeled_set_id, "policy_version": run.policy_version_id,
            "total": run.total}


def measured_rate() -> float | None:
    """Reasoner results per second over the last hour (live and evaluation), or None if too few."""
    since = timezone.now() - RATE_WINDOW
    spans = []
    for model in (Classification, EvaluationResult):
        span = model.objects.filter(finished_at__gte=since, completion_tokens__isnull=False).aggregate(
            n=Count("id"), first=Min("finished_at"), last=Max("finished_at"))
        spans.append(span)
    n = sum(s["n"] for s in spans)
    firsts = [s["first"] for s in spans if s["first"]]
    lasts = [s["last"] for s in spans if s["last"]]
    if n < 20 or not firsts:
        return None
    seconds = (max(lasts) - min(firsts)).total_seconds()
    return n / seconds if seconds > 0 else None


def estimate(*, labeled_set: LabeledSet, version: PolicyVersion) -> dict[str, Any]:
    """What a run would cost before it starts: prompt tokens (rendered, exactly as the worker will),
    completion tokens (the policy's recent average, where there is one) and time at the measured rate."""
    spec = version.as_spec()
    prompt_tokens = 0
    too_long = 0
    limit = settings.SAFEGUARD_CONTEXT_TOKENS - settings.SAFEGUARD_MAX_TOKENS
    examples = labeled_set.examples.only("kind", "content", "turns")
    for example in examples.iterator(chunk_size=2000):
        tokens = safeguard.render_prompt(spec, example.as_content()).total_tokens
        prompt_tokens += tokens
        too_long += tokens > limit
    count = labeled_set.examples.count()
    recent = EvaluationResult.objects.filter(run__policy_version__policy=version.policy_id,
                                             completion_tokens__isnull=False)
    average = recent.aggregate(avg=Avg("completion_tokens"))["avg"] or Classification.objects.filter(
        policy_version__policy=version.policy_id, completion_tokens__isnull=False
    ).aggregate(avg=Avg("completion_tokens"))["avg"]
    rate = measured_rate()
    return {
        "examples": count,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": round(average * count) if average else None,
        "completion_tokens_per_example": round(average, 1) if average else None,
        "too_long": too_long,
        "rate_per_s": round(rate, 2) if rate else None,
        "seconds": round(count / rate, 1) if rate else None,
    }


def start_run(*, actor: Any, labeled_set: LabeledSet, version: PolicyVersion, note: str = "",
              actor_name: str = "") -> EvaluationRun:
    """Queue one result per example of the set for `version` (of the set's own policy: its labels are in
    that policy's scheme) and wake the workers."""
    if version.policy_id != labeled_set.policy_id:
        raise RunError(f"{labeled_set.name!r} is labelled for {labeled_set.policy}, not for {version.policy}")
    count = labeled_set.examples.count()
    if not count:
        raise RunError(f"{labeled_set.name!r} holds no examples yet")
    guess = estimate(labeled_set=labeled_set, version=version)
    with transaction.atomic():
        run = EvaluationRun.objects.create(labeled_set=labeled_set, policy_version=version, total=count,
                                           estimate=guess, note=note[:300], created_by=_user(actor))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {EvaluationResult._meta.db_table} (run_id, example_id, status, label, category, "
                "rule_ids, rationale, reasoning, raw_output, error, parse_quality, parse_notes, model_name, "
                "needs_review, attempts, worker, created_at) "
                "SELECT %s, e.id, 'queued', '', '', '[]', '', '', '', '', '', '[]', '', false, 0, '', %s "
                f"FROM {Example._meta.db_table} AS e WHERE e.labeled_set_id = %s ORDER BY e.id",
                [run.pk, run.created_at, labeled_set.pk],
            )
        record(actor=actor, actor_name=actor_name, action="evaluation_run.started", obj=run,
               after={**_snapshot(run), "estimate": guess})
        transaction.on_commit(wakeup.wake_reasoner, robust=True)
        transaction.on_commit(lambda: live.send_progress(run.pk), robust=True)
    return run


def cancel_run(*, actor: Any, run: EvaluationRun, actor_name: str = "") -> EvaluationRun:
    """Stop a running run: queued results are cancelled (results already running still finish), and the
    metrics cover what was classified."""
    with transaction.atomic():
        run = EvaluationRun.objects.select_for_update().get(pk=run.pk)
        if run.status != RunStatus.RUNNING:
            raise RunError(f"Run #{run.pk} is {run.get_status_display().lower()}, not running")
        cancelled = run.results.filter(status=ResultStatus.QUEUED).update(status=ResultStatus.CANCELLED)
        before = _snapshot(run)
        run.status = RunStatus.CANCELLED
        run.finished_at = timezone.now()
        run.metrics = run_metrics(run)
        run.save(update_fields=["status", "finished_at", "metrics"])
        record(actor=actor, actor_name=actor_name, action="evaluation_run.cancelled", obj=run, before=before,
               after={**_snapshot(run), "cancelled_results": cancelled})
        transaction.on_commit(lambda: live.send_progress(run.pk, final=True), robust=True)
    return run


def progress(run: EvaluationRun) -> dict[str, Any]:
    """Counts by status, the share settled, and the time left at this run's own pace so far."""
    counts = dict(run.results.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    settled = sum(counts.get(status, 0) for status in SETTLED)
    total = run.total or sum(counts.values())
    started = run.created_at
    elapsed = ((run.finished_at or timezone.now()) - started).total_seconds()
    eta = None
    if run.status == RunStatus.RUNNING and settled and elapsed > 0:
        eta = round((total - settled) / (settled / elapsed), 1)
    return {
        "run": run.pk,
        "status": run.status,
        "total": total,
        "settled": settled,
        "percent": round(100 * settled / total, 1) if total else 100.0,
        "counts": counts,
        "elapsed_s": round(elapsed, 1),
        "eta_s": eta,
    }


def finish_if_complete(run_id: int) -> bool:
    """Finish a running run whose every result is settled: its metrics, its audit event. Safe when two
    workers store the last results at once (the run row is locked and checked again)."""
    with transaction.atomic():
        run = EvaluationRun.objects.select_for_update().filter(pk=run_id, status=RunStatus.RUNNING).first()
        if run is None or run.results.filter(status__in=[ResultStatus.QUEUED, ResultStatus.RUNNING]).exists():
            return False
        before = _snapshot(run)
        run.status = RunStatus.DONE
        run.finished_at = timezone.now()
        run.metrics = run_metrics(run)
        run.save(update_fields=["status", "finished_at", "metrics"])
        record(actor=None, actor_name="system:evaluations", action="evaluation_run.finished", obj=run,
               before=before, after={**_snapshot(run), "accuracy": run.metrics.get("accuracy"),
                                     "recall": run.metrics.get("recall")})
    return True


def complete_runs(run_ids: list[int]) -> list[int]:
    """Which of these running labelled runs have nothing queued or running left: one query, as the
    workers ask it after every batch."""
    settling = EvaluationResult.objects.filter(run=OuterRef("pk"), status__in=[ResultStatus.QUEUED,
                                                                              ResultStatus.RUNNING])
    return list(EvaluationRun.objects.filter(pk__in=run_ids, status=RunStatus.RUNNING, kind=RunKind.LABELED)
                .exclude(Exists(settling)).values_list("pk", flat=True))


def on_results_stored(sender: Any, run_ids: list[int], **kwargs: Any) -> None:
    """Receiver of evaluations.signals.results_stored: finish the runs that are complete, push progress."""
    finished = set()
    for run_id in complete_runs(run_ids):
        try:
            if finish_if_complete(run_id):
                finished.add(run_id)
        except Exception:  # one run's metrics must not stop another's progress
            log.exception("evaluation run %s: finishing failed", run_id)
    for run_id in run_ids:
        live.send_progress(run_id, final=run_id in finished)


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None

