"""The reasoner pipeline: claim a batch of queued classifications, render their prompts, run them on the
engine, read the completions into verdicts and store them (`Pipeline`); `run_once` runs the steps
once, in this thread (tests, the demo answers, one-off use).

Each claimed row carries a lease, and `reasoner.sweeper` re-queues rows whose worker died. Results are
written in one statement per batch (`reasoner.sql`), guarded by "still running and still mine", so a
worker that lost its lease never overwrites the work of the one that took over. Once a batch has
committed, `console.signals.verdicts_stored` tells whoever listens (open pages, the API's webhooks).

Where a Verdict becomes columns: `Pipeline._read` turns each parsed `safeguard.Verdict` into an
`Outcome`, whose fields are exactly the columns `reasoner.sql.WRITE_COLUMNS` writes.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

import safeguard
from audit.writer import sql_params
from console import signals
from console.bulk_insert import dumps
from console.models import Classification, ClassificationStatus, Item, Stage
from evaluations import signals as evaluation_signals
from policies_app.models import PolicyVersion
from reasoner import metrics, sql
from reasoner.batch import EVALUATION, LIVE, Batch, Claimed, Outcome

log = logging.getLogger("console.reasoner")  # the name it had before the reasoner became an app

QUEUED = ClassificationStatus.QUEUED.value
RUNNING = ClassificationStatus.RUNNING.value
DONE = ClassificationStatus.DONE.value
FAILED = ClassificationStatus.FAILED.value
TOO_LONG = ClassificationStatus.TOO_LONG.value



def needs_human(verdict: safeguard.Verdict) -> bool:
    """Whether a moderator must look at a read verdict: any violation, no answer, or low confidence."""
    return (
        verdict.violation is None
        or verdict.violation is True
        or (verdict.confidence is not None and verdict.confidence < 0.5)
    )


def verdict_fields(verdict: safeguard.Verdict) -> dict[str, Any]:
    """The columns a read verdict sets (status included): the one place a Verdict becomes a row's
    verdict, used by the pipeline and by re-reading stored answers (reasoner.rereading)."""
    fields: dict[str, Any] = {
        "status": verdict.status,
        "parse_quality": verdict.quality,
        "parse_notes": [_clean(note) for note in verdict.notes],
        "needs_review": needs_human(verdict),
        "label": "",
        "violation": None,
        "category": "",
        "rule_ids": [],
        "confidence": None,
        "rationale": "",
        "error": "",
    }
    if verdict.status == DONE:
        fields.update(
            label=verdict.label[:60],
            violation=verdict.violation,
            category=verdict.category[:60],
            rule_ids=list(verdict.rule_ids),
            confidence=verdict.confidence,
            rationale=_clean(verdict.rationale),
        )
    else:
        # unparsable, conflicting or truncated: no verdict, never "safe"; `error` says why
        fields["error"] = _clean(verdict.error)
    return fields


def retry_delay_s(attempts: int) -> int:
    """How long a classification waits after its `attempts`-th engine failure before it is tried again."""
    return 2**attempts


def new_worker_id() -> str:
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(3)}"


# PolicyVersion content never changes once saved (a trigger enforces it), so its spec is cached by id.
_specs: dict[int, tuple[safeguard.PolicySpec, str]] = {}


def _load_specs(version_ids: set[int]) -> None:
    missing = version_ids - _specs.keys()
    if missing:
        for version in PolicyVersion.objects.filter(id__in=missing).select_related("policy"):
            _specs[version.id] = (version.as_spec(), str(version))


def _clean(text: str | None) -> str:
    # PostgreSQL text cannot hold NUL; one such character must not sink a whole batch's write.
    return text.replace("\x00", "") if text else ""


class Pipeline:
    """Claim, prompt, run, read and store, for one worker. Every step adds its time to `timings`."""

    def __init__(self, engine: safeguard.Engine, worker_id: str = "", *, batch_size: int | None = None,
                 lanes: Sequence[str] = (LIVE, EVALUATION)) -> None:
        self.engine = engine
        self.lanes = tuple(lanes)
        self.worker_id = (worker_id or new_worker_id())[:120]
        self.actor_name = f"system:{self.worker_id}"
        self.batch_size = batch_size or settings.SAFEGUARD_BATCH_SIZE
        self.max_tokens = settings.SAFEGUARD_MAX_TOKENS
        self.prompt_limit = settings.SAFEGUARD_CONTEXT_TOKENS - settings.SAFEGUARD_MAX_TOKENS
        self.attempts = settings.SAFEGUARD_ATTEMPTS
        self.lease = timedelta(seconds=settings.SAFEGUARD_LEASE_S)
        self.eval_batch_size = settings.SAFEGUARD_EVAL_BATCH_SIZE
        self.live_quiet_s = settings.SAFEGUARD_EVAL_QUIET_S
        self._live_seen = time.monotonic()  # when live rows were last claimed: assume traffic at first
        self.timings: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    # claim and render

    def claim(self, limit: int | None = None, *, now: datetime | None = None,
              ids: Sequence[int] | None = None) -> Batch:
        """Claim up to `limit` queued classifications (oldest first; only those in `ids` if given) and
        render their prompts. Room left once no live work is queued goes to evaluation results."""
        now = now or timezone.now()
        limit = self.batch_size if limit is None else limit
        batch = Batch()
        if limit <= 0:
            return batch
        started = time.perf_counter()
        with transaction.atomic():
            claimed = self._claim_live(now, limit, ids) if LIVE in self.lanes else []
            if claimed:
                self._live_seen = time.monotonic()
            if ids is None and EVALUATION in self.lanes:
                room = limit - len(claimed)
                if LIVE in self.lanes and time.monotonic() - self._live_seen < self.live_quiet_s:
                    # Live traffic is flowing: a live item that arrives meanwhile waits for a short batch.
                    room = min(room, self.eval_batch_size)
                if room > 0:
                    claimed += self._claim_evaluation(now, room)
        self.timings["claim"] += time.perf_counter() - started
        if claimed:
            self._render(batch, claimed, now)
        return batch

    def _claim_live(self, now: datetime, limit: int, ids: Sequence[int] | None) -> list[Claimed]:
        params = {"worker": self.worker_id, "now": now, "lease": now + self.lease, "stage": Stage.REASONER.value,
                  "limit": limit, "ids": list(ids or [])}
        with connection.cursor() as cursor:
            cursor.execute(sql.CLAIM_SQL if ids is None else sql.CLAIM_IDS_SQL, params)
            rows = cursor.fetchall()
        claimed = [
            Claimed(id=pk, version_id=version_id, attempts=attempts, kind=kind, content=text,
                    turns=json.loads(turns) if isinstance(turns, str) else turns,
                    item_repr=f"{source}:{external_id or item_id}")
            for pk, version_id, attempts, item_id, kind, text, turns, source, external_id in rows
        ]
        if claimed:
            _load_specs({row.version_id for row in claimed})
            audit = [
                {"id": row.id, "repr": self._repr(row, RUNNING)[:300], "before": {"status": QUEUED},
                 "after": {"status": RUNNING, "attempts": row.attempts, "worker": self.worker_id}}
                for row in claimed
            ]
            params = {**sql_params(actor=None, actor_name=self.actor_name, object_type=Classification, at=now),
                      "action": "classification.started", "rows": dumps(audit)}
            with connection.cursor() as cursor:
                cursor.execute(sql.AUDIT_SQL, params)
        return claimed

    def _claim_evaluation(self, now: datetime, limit: int) -> list[Claimed]:
        # Not audited row by row: an evaluation result is a measurement, not a moderation state; its
        # run is audited when it starts, is cancelled and finishes (evaluations.runs).
        params = {"worker": self.worker_id, "now": now, "lease": now + self.lease, "limit": limit}
        with connection.cursor() as cursor:
            cursor.execute(sql.EVAL_CLAIM_SQL, params)
            rows = cursor.fetchall()
        claimed = [
            Claimed(id=pk, version_id=version_id, attempts=attempts, kind=kind, content=text,
                    turns=json.loads(turns) if isinstance(turns, str) else turns,
                    item_repr=f"run {run_id}:{subject_id}", lane=EVALUATION)
            for pk, version_id, attempts, subject_id, kind, text, turns, run_id in rows
        ]
        _load_specs({row.version_id for row in claimed})
        return claimed

    def _repr(self, row: Claimed, status: str) -> str:
        # What str(classification) says, without loading the item and version rows again.
        return f"{row.item_repr} × {_specs[row.version_id][1]} [{Stage.REASONER.value}] {status}"

    def _render(self, batch: Batch, claimed: list[Claimed], now: datetime) -> None:
        started = time.perf_counter()
        for row in claimed:
            spec = _specs[row.version_id][0]
            try:
                # Claimed has the fields as_content reads; building an Item per row would cost more
                # than rendering its prompt (model __init__ sends signals).
                content = Item.as_content(row)  # type: ignore[arg-type]
                prompt = safeguard.render_prompt(spec, content)
            except Exception as exc:  # a row that cannot even be prompted is shown to people, not retried
                log.exception("classification %s: could not build its prompt", row.id)
                batch.ready.append(self.outcome(row, FAILED, now, error=f"could not build the prompt: {exc}",
                                                 needs_review=True, finished_at=now))
                continue
            if prompt.total_tokens > self.prompt_limit:
                batch.ready.append(
                    self.outcome(
                        row, TOO_LONG, now, prompt_tokens=prompt.total_tokens, needs_review=True, finished_at=now,
                        error=(
                            f"The prompt is {prompt.total_tokens:,} tokens (policy {prompt.policy_tokens:,}, "
                            f"content {prompt.content_tokens:,}); the model's context holds "
                            f"{self.prompt_limit + self.max_tokens:,} with {self.max_tokens:,} kept for the "
                            f"answer, so at most {self.prompt_limit:,} fit"
                        ),
                    )
                )
                continue
            batch.sent.append(row)
            batch.requests.append(
                safeguard.Request(key=str(row.id), policy=spec, content=content, prompt=prompt,
                                  max_tokens=self.max_tokens)
            )
        self.timings["render"] += time.perf_counter() - started

    def outcome(self, row: Claimed, status: str, now: datetime, **fields: Any) -> Outcome:
        """The new state of a claimed row: `fields` are Outcome's (the columns `store` writes)."""
        fields.setdefault("worker", self.worker_id)
        return Outcome(id=row.id, action=f"classification.{status}", repr=self._repr(row, status),
                       attempts=row.attempts, status=status, lane=row.lane, **fields)

    # run

    def generate(self, batch: Batch) -> tuple[list[safeguard.Completion] | None, str]:
        """The engine's completions for the batch, or None and why the whole batch failed."""
        if not batch.requests:
            return [], ""
        started = time.perf_counter()
        try:
            completions = self.engine.generate(batch.requests)
        except safeguard.EngineError as exc:
            log.warning("engine %s failed a batch of %d: %s", self.engine.name, len(batch.requests), exc)
            metrics.ERRORS.labels("engine_error").inc()
            return None, str(exc) or exc.__class__.__name__
        except Exception as exc:  # an engine bug must not kill the worker: the batch is retried
            log.exception("engine %s raised on a batch of %d", self.engine.name, len(batch.requests))
            metrics.ERRORS.labels("exception").inc()
            return None, f"{exc.__class__.__name__}: {exc}"
        finally:
            elapsed = time.perf_counter() - started
            self.timings["engine"] += elapsed
            self.counts["batches"] += 1
            metrics.observe_batch(elapsed, len(batch.requests))
        if len(completions) != len(batch.requests):
            metrics.ERRORS.labels("mismatch").inc()
            return None, f"the engine returned {len(completions)} completions for {len(batch.requests)} requests"
        if any(c.key != r.key for c, r in zip(completions, batch.requests, strict=True)):
            # The protocol promises request order; an engine that broke it is matched up by key instead.
            by_key = {c.key: c for c in completions}
            missing = "the engine returned no completion for this item"
            completions = [by_key.get(r.key) or safeguard.Completion(key=r.key, finish_reason="error", error=missing)
                           for r in batch.requests]
        metrics.observe_completions(batch.requests, completions)
        return completions, ""

    # read and store

    def finish(
        self,
        batch: Batch,
        completions: Sequence[safeguard.Completion] | None,
        error: str = "",
        *,
        now: datetime | None = None,
    ) -> list[int]:
        """Read the completions and store every outcome of the batch; the ids written come back."""
        now = now or timezone.now()
        return self.store(self.read(batch, completions, error, now=now), now=now)

    def read(
        self,
        batch: Batch,
        completions: Sequence[safeguard.Completion] | None,
        error: str = "",
        *,
        now: datetime | None = None,
    ) -> list[Outcome]:
        """Every outcome of the batch: the completions read into verdicts, or the batch's failure."""
        now = now or timezone.now()
        started = time.perf_counter()
        outcomes = list(batch.ready)
        if completions is None:
            outcomes += [self._failure(row, error, now) for row in batch.sent]
        else:
            for row, request, completion in zip(batch.sent, batch.requests, completions, strict=True):
                outcomes.append(self._read(row, request, completion, now))
        self.timings["parse"] += time.perf_counter() - started
        return outcomes

    def _read(self, row: Claimed, request: safeguard.Request, completion: safeguard.Completion,
              now: datetime) -> Outcome:
        try:
            verdict = safeguard.parse_completion(completion, request.policy)
        except Exception as exc:  # a parser bug makes an unreadable answer, never a lost one
            log.exception("classification %s: the parser raised", row.id)
            verdict = safeguard.Verdict(status="unparsable", raw_output=completion.text or "",
                                        error=f"the parser failed: {exc}", quality="unparsable")
        if verdict.status == FAILED:
            return self._failure(row, verdict.error, now)
        fields = verdict_fields(verdict)
        return self.outcome(
            row, fields.pop("status"), now,
            reasoning=_clean(verdict.reasoning),
            raw_output=_clean(verdict.raw_output),
            model_name=(completion.model or self.engine.name)[:200],
            prompt_tokens=completion.prompt_tokens or request.prompt.total_tokens,
            completion_tokens=completion.completion_tokens,
            latency_ms=completion.latency_s * 1000,
            finished_at=now,
            **fields,
        )

    def _failure(self, row: Claimed, error: str, now: datetime) -> Outcome:
        """An engine failure: back in the queue after a back-off, or failed once attempts run out."""
        error = _clean(error) or "the engine reported an error"
        if row.attempts < self.attempts:
            delay = retry_delay_s(row.attempts)
            outcome = self.outcome(
                row, QUEUED, now, worker="", lease_expires_at=now + timedelta(seconds=delay),
                error=f"attempt {row.attempts} of {self.attempts} failed, retrying in {delay} s: {error}",
            )
            outcome.action = "classification.retrying"
            return outcome
        return self.outcome(row, FAILED, now, needs_review=True, finished_at=now,
                             error=f"failed after {row.attempts} attempts: {error}")

    def store(self, outcomes: list[Outcome], *, now: datetime | None = None) -> list[int]:
        """Write outcomes and their audit events in one transaction, then tell the queue pages."""
        if not outcomes:
            return []
        now = now or timezone.now()
        started = time.perf_counter()
        try:
            written = self._store(outcomes, now)
        except (OperationalError, InterfaceError):
            # The database is away (restarting, unreachable), not one bad row: the caller retries the
            # whole batch, and writing rows one by one now would only mark good results as unstorable.
            raise
        except DatabaseError:
            # One bad row must not strand the other 63: write them one by one to find it.
            log.exception("storing a batch of %d failed; storing row by row", len(outcomes))
            written = []
            for outcome in outcomes:
                try:
                    written += self._store([outcome], now)
                except (OperationalError, InterfaceError):
                    raise
                except DatabaseError as exc:
                    log.exception("classification %s: its result could not be stored", outcome.id)
                    written += self._store([self._unstorable(outcome, exc)], now)
        self.timings["write"] += time.perf_counter() - started
        self.counts["items"] += len(outcomes)
        return written

    def _unstorable(self, outcome: Outcome, exc: Exception) -> Outcome:
        return Outcome(id=outcome.id, action=f"classification.{FAILED}", repr=outcome.repr, attempts=outcome.attempts,
                       status=FAILED, worker=self.worker_id, needs_review=True, finished_at=outcome.finished_at,
                       model_name=outcome.model_name, error=f"the result could not be stored: {exc}"[:2000],
                       lane=outcome.lane)

    def _store(self, outcomes: list[Outcome], now: datetime) -> list[int]:
        live = [o for o in outcomes if o.lane == LIVE]
        evaluation = [o for o in outcomes if o.lane == EVALUATION]
        with transaction.atomic():
            return self._store_live(live, now) + self._store_evaluation(evaluation)

    def _store_evaluation(self, outcomes: list[Outcome]) -> list[int]:
        if not outcomes:
            return []
        rows = [{"id": o.id, **{name: getattr(o, name) for name, _ in sql.WRITE_COLUMNS}} for o in outcomes]
        with connection.cursor() as cursor:
            cursor.execute(sql.EVAL_WRITE_SQL, {"rows": dumps(rows), "worker": self.worker_id})
            written = cursor.fetchall()
        run_ids = sorted({run_id for _, run_id in written})
        if run_ids:
            transaction.on_commit(lambda: signals.send(evaluation_signals.results_stored, sender=Pipeline,
                                                       run_ids=run_ids))
        return [int(pk) for pk, _ in written]

    def _store_live(self, outcomes: list[Outcome], now: datetime) -> list[int]:
        if not outcomes:
            return []
        rows = []
        for o in outcomes:
            row = {name: getattr(o, name) for name, _ in sql.WRITE_COLUMNS}
            after = {"status": o.status, "attempts": o.attempts}
            if o.parse_quality:
                after["parse_quality"] = o.parse_quality
            if o.error:
                after["error"] = o.error
            row.update(id=o.id, action=o.action, repr=o.repr[:300], after=after)
            rows.append(row)
        params = {**sql_params(actor=None, actor_name=self.actor_name, object_type=Classification, at=now),
                  "rows": dumps(rows), "worker": self.worker_id}
        # One statement, so atomic by itself: the rows and their audit events are stored together.
        with connection.cursor() as cursor:
            cursor.execute(sql.WRITE_SQL, params)
            written = {int(pk) for (pk,) in cursor.fetchall()}
        if len(written) != len(outcomes):
            lost = sorted(o.id for o in outcomes if o.id not in written)
            log.warning(
                "worker %s no longer holds classifications %s (lease expired and re-queued, or taken "
                "over): their results were dropped, the current holder's stand", self.worker_id, lost,
            )
        ids = [o.id for o in outcomes if o.id in written]
        if ids:
            transaction.on_commit(lambda: self.notify(ids))
        return ids

    # leases

    def renew(self, keys: Sequence[tuple[str, int]], *, now: datetime | None = None) -> list[tuple[str, int]]:
        """Extend the lease of these (lane, id) rows, where they are still running and ours and not hung
        (running longer than SAFEGUARD_MAX_RUN_S); the keys renewed come back."""
        now = now or timezone.now()
        params = {"worker": self.worker_id, "lease": now + self.lease,
                  "oldest": now - timedelta(seconds=settings.SAFEGUARD_MAX_RUN_S)}
        renewed: list[tuple[str, int]] = []
        for lane, statement in ((LIVE, sql.RENEW_SQL), (EVALUATION, sql.EVAL_RENEW_SQL)):
            ids = [pk for key_lane, pk in keys if key_lane == lane]
            if ids:
                with connection.cursor() as cursor:
                    cursor.execute(statement, {**params, "ids": ids})
                    renewed += [(lane, pk) for (pk,) in cursor.fetchall()]
        return renewed

    def release(self, batch: Batch, reason: str, *, now: datetime | None = None) -> list[tuple[str, int]]:
        """Put a batch's rows that are still ours back in the queue at once (live ones audited with
        `reason`); the (lane, id) keys released come back."""
        now = now or timezone.now()
        held = [(row.key, self._repr(row, QUEUED)) for row in batch.sent] + [(o.key, o.repr) for o in batch.ready]
        after = {"status": QUEUED, "reason": _clean(reason)[:500]}
        live = [{"id": pk, "repr": text[:300], "after": after} for (lane, pk), text in held if lane == LIVE]
        evaluation = [pk for (lane, pk), _ in held if lane == EVALUATION]
        released: list[tuple[str, int]] = []
        with transaction.atomic(), connection.cursor() as cursor:
            if live:
                params = {**sql_params(actor=None, actor_name=self.actor_name, object_type=Classification, at=now),
                          "rows": dumps(live), "worker": self.worker_id}
                cursor.execute(sql.RELEASE_SQL, params)
                released += [(LIVE, int(pk)) for (pk,) in cursor.fetchall()]
            if evaluation:
                cursor.execute(sql.EVAL_RELEASE_SQL, {"ids": evaluation, "worker": self.worker_id})
                released += [(EVALUATION, int(pk)) for (pk,) in cursor.fetchall()]
        return released

    def notify(self, ids: list[int]) -> None:
        """Tell the layers that listen (open pages, the API's webhooks) that these results are stored."""
        started = time.perf_counter()
        signals.send(signals.verdicts_stored, sender=Pipeline, classification_ids=ids)
        self.timings["notify"] += time.perf_counter() - started


def run_once(engine: safeguard.Engine, worker_id: str = "", *, now: datetime | None = None,
             batch_size: int | None = None) -> int:
    """Claim one batch, run it and store it, in this thread; how many classifications it settled."""
    pipeline = Pipeline(engine, worker_id, batch_size=batch_size)
    batch = pipeline.claim(now=now)
    if not len(batch):
        return 0
    completions, error = pipeline.generate(batch)
    pipeline.finish(batch, completions, error, now=now)
    return len(batch)
