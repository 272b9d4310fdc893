"""The reasoner pipeline: claim a batch of queued classifications, run it on the engine, store verdicts.

The database is the queue. A claim is one statement (UPDATE ... WHERE id = ANY(SELECT ... FOR UPDATE
SKIP LOCKED) RETURNING), so any number of workers share the queue without handing out a row twice;
each claimed row carries a lease, and `sweep_stale` re-queues rows whose worker died. Results are
written in one transaction per batch, guarded by "still running and still mine", so a worker that
lost its lease never overwrites the work of the one that took over.

`Pipeline` holds the steps; `run_once` runs them once (tests, one-off use); `Worker` is the loop of
`manage.py safeguard_worker`, which overlaps the database work of neighbouring batches with the
engine's work on the current one, so a GPU waits on the database only for a final top-up claim.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import django_rq
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

import safeguard
from api import jobs as api_jobs
from console import broadcast, dispatch
from console.models import AuditEvent, Classification, ClassificationStatus, Item, Stage
from policies_app.models import PolicyVersion

log = logging.getLogger(__name__)

QUEUED = ClassificationStatus.QUEUED.value
RUNNING = ClassificationStatus.RUNNING.value
DONE = ClassificationStatus.DONE.value
FAILED = ClassificationStatus.FAILED.value
TOO_LONG = ClassificationStatus.TOO_LONG.value

OBJECT_TYPE = Classification._meta.label_lower
IDLE_WAIT_S = 3.0  # an idle worker re-checks the database this often, so a lost wake-up strands nothing
SWEEP_EVERY_S = 30.0
WEBHOOKS_OWED_MAX = 500_000  # about three hours of one GPU's verdicts; beyond that the oldest are logged and dropped


def needs_human(verdict: safeguard.Verdict) -> bool:
    """Whether a moderator must look at a read verdict: any violation, no answer, or low confidence."""
    return (
        verdict.violation is None
        or verdict.violation is True
        or (verdict.confidence is not None and verdict.confidence < 0.5)
    )


def retry_delay_s(attempts: int) -> int:
    """How long a classification waits after its `attempts`-th engine failure before it is tried again."""
    return 2**attempts


def new_worker_id() -> str:
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(3)}"


# --- what moves through the pipeline ------------------------------------------------------------


@dataclass(slots=True)
class Claimed:
    """One classification this worker holds, with what is needed to prompt for it."""

    id: int
    version_id: int
    attempts: int
    kind: str
    content: str
    turns: Any
    item_repr: str


@dataclass(slots=True)
class Outcome:
    """The new state of one claimed classification; the fields are the columns `_write` sets."""

    id: int
    action: str  # the audit action, "classification.<what happened>"
    repr: str
    attempts: int
    status: str
    worker: str
    label: str = ""
    violation: bool | None = None
    category: str = ""
    rule_ids: list[str] = field(default_factory=list)
    confidence: float | None = None
    rationale: str = ""
    reasoning: str = ""
    raw_output: str = ""
    error: str = ""
    model_name: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    needs_review: bool = False
    lease_expires_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(slots=True)
class Batch:
    """A claimed batch: requests for the engine (aligned with `sent`) and outcomes already known."""

    sent: list[Claimed] = field(default_factory=list)
    requests: list[safeguard.Request] = field(default_factory=list)
    ready: list[Outcome] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sent) + len(self.ready)

    def extend(self, other: Batch) -> None:
        self.sent += other.sent
        self.requests += other.requests
        self.ready += other.ready


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


# --- SQL: kept raw because these statements are the hot path and need RETURNING ---------------

_CLAIM_SQL = """
WITH claimed AS (
    UPDATE {c} AS c
    SET status = 'running', worker = %(worker)s, started_at = %(now)s, lease_expires_at = %(lease)s,
        attempts = c.attempts + 1
    WHERE c.id = ANY(ARRAY(
        SELECT q.id FROM {c} AS q
        WHERE q.status = 'queued' AND q.stage = %(stage)s
          AND (q.lease_expires_at IS NULL OR q.lease_expires_at <= %(now)s) {only}
        ORDER BY q.created_at, q.id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED))
    RETURNING c.id, c.item_id, c.policy_version_id, c.attempts)
SELECT claimed.id, claimed.policy_version_id, claimed.attempts, i.id, i.kind, i.content, i.turns,
       i.source, i.external_id
FROM claimed JOIN {i} AS i ON i.id = claimed.item_id
ORDER BY claimed.id
"""

_WRITE_COLUMNS = (
    ("status", "text"),
    ("worker", "text"),
    ("label", "text"),
    ("violation", "boolean"),
    ("category", "text"),
    ("rule_ids", "jsonb"),
    ("confidence", "float8"),
    ("rationale", "text"),
    ("reasoning", "text"),
    ("raw_output", "text"),
    ("error", "text"),
    ("model_name", "text"),
    ("prompt_tokens", "int4"),
    ("completion_tokens", "int4"),
    ("latency_ms", "float8"),
    ("needs_review", "boolean"),
    ("lease_expires_at", "timestamptz"),
    ("finished_at", "timestamptz"),
)
_AUDIT_INSERT = (
    "INSERT INTO {a} (actor_id, actor_name, action, object_type, object_id, object_repr, before, after, created_at)"
)

# A batch's rows travel as one JSON array (json.dumps encodes it in C) rather than as hundreds of
# placeholders that the ORM and psycopg quote one by one: that quoting was most of the write time.
_AUDIT_SQL = _AUDIT_INSERT + """
SELECT NULL, %(actor)s, %(action)s, %(object_type)s, e.id::text, e.repr, e.before, e.after, %(now)s
FROM jsonb_to_recordset(%(rows)s::jsonb) AS e(id bigint, repr text, before jsonb, after jsonb)
ORDER BY e.id
"""

# One statement stores a batch and audits it. The WHERE clause is the guard: a row the sweeper
# re-queued (or another worker now holds) is not "running and mine", so it is neither written nor
# audited, and the ids that come back are exactly the rows written.
_WRITE_SQL = """
WITH v AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
    AS v(id bigint, {typed}, action text, repr text, after jsonb)),
written AS (
    UPDATE {c} AS c SET {assignments}
    FROM v
    WHERE c.id = v.id AND c.status = 'running' AND c.worker = %(worker)s
    RETURNING c.id)
""" + _AUDIT_INSERT + """
SELECT NULL, %(actor)s, v.action, %(object_type)s, v.id::text, v.repr, '{"status": "running"}'::jsonb, v.after,
       %(now)s
FROM v JOIN written ON written.id = v.id
ORDER BY v.id
RETURNING object_id
"""

_SWEEP_SQL = """
WITH stale AS (
    SELECT id, worker FROM {c}
    WHERE status = 'running' AND lease_expires_at < %(now)s
    FOR UPDATE SKIP LOCKED)
UPDATE {c} AS c
SET status = CASE WHEN c.attempts >= %(attempts)s THEN 'failed' ELSE 'queued' END,
    worker = CASE WHEN c.attempts >= %(attempts)s THEN stale.worker ELSE '' END,
    lease_expires_at = NULL,
    finished_at = CASE WHEN c.attempts >= %(attempts)s THEN %(now)s::timestamptz END,
    needs_review = c.needs_review OR c.attempts >= %(attempts)s,
    error = CASE WHEN c.attempts >= %(attempts)s
        THEN 'the worker running it stopped answering ' || c.attempts || ' times (lease expired)'
        ELSE c.error END
FROM stale
WHERE c.id = stale.id
RETURNING c.id, c.status, c.attempts, stale.worker
"""


def _sql(template: str) -> str:
    return (
        template.replace("{c}", Classification._meta.db_table)
        .replace("{i}", Item._meta.db_table)
        .replace("{a}", AuditEvent._meta.db_table)
        .replace("{typed}", ", ".join(f"{name} {kind}" for name, kind in _WRITE_COLUMNS))
        .replace("{assignments}", ", ".join(f"{name} = v.{name}" for name, _ in _WRITE_COLUMNS))
    )


CLAIM_SQL = _sql(_CLAIM_SQL.replace("{only}", ""))
CLAIM_IDS_SQL = _sql(_CLAIM_SQL.replace("{only}", "AND q.id = ANY(%(ids)s)"))
AUDIT_SQL = _sql(_AUDIT_SQL)
WRITE_SQL = _sql(_WRITE_SQL)
SWEEP_SQL = _sql(_SWEEP_SQL)


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=_json_default)


# --- the steps ------------------------------------------------------------------------------


class Pipeline:
    """Claim, prompt, run, read and store, for one worker. Every step adds its time to `timings`."""

    def __init__(self, engine: safeguard.Engine, worker_id: str = "", *, batch_size: int | None = None) -> None:
        self.engine = engine
        self.worker_id = (worker_id or new_worker_id())[:120]
        self.actor_name = f"system:{self.worker_id}"
        self.batch_size = batch_size or settings.SAFEGUARD_BATCH_SIZE
        self.max_tokens = settings.SAFEGUARD_MAX_TOKENS
        self.prompt_limit = settings.SAFEGUARD_CONTEXT_TOKENS - settings.SAFEGUARD_MAX_TOKENS
        self.attempts = settings.SAFEGUARD_ATTEMPTS
        self.lease = timedelta(seconds=settings.SAFEGUARD_LEASE_S)
        self.timings: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        # Verdict ids whose decision webhooks could not be handed to RQ yet (Redis away): retried with
        # the next batch's, so a short Redis outage delays a client's webhook instead of losing it.
        self.webhooks_owed: list[int] = []

    # claim and render

    def claim(self, limit: int | None = None, *, now: datetime | None = None,
              ids: Sequence[int] | None = None) -> Batch:
        """Claim up to `limit` queued classifications (oldest first; only those in `ids` if given) and
        render their prompts."""
        now = now or timezone.now()
        limit = self.batch_size if limit is None else limit
        batch = Batch()
        if limit <= 0:
            return batch
        started = time.perf_counter()
        params = {"worker": self.worker_id, "now": now, "lease": now + self.lease, "stage": Stage.REASONER.value,
                  "limit": limit, "ids": list(ids or [])}
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(CLAIM_SQL if ids is None else CLAIM_IDS_SQL, params)
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
                with connection.cursor() as cursor:
                    cursor.execute(AUDIT_SQL, {"actor": self.actor_name, "action": "classification.started",
                                               "object_type": OBJECT_TYPE, "now": now, "rows": _json(audit)})
        self.timings["claim"] += time.perf_counter() - started
        if claimed:
            self._render(batch, claimed, now)
        return batch

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
                batch.ready.append(self._outcome(row, FAILED, now, error=f"could not build the prompt: {exc}",
                                                 needs_review=True, finished_at=now))
                continue
            if prompt.total_tokens > self.prompt_limit:
                batch.ready.append(
                    self._outcome(
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

    def _outcome(self, row: Claimed, status: str, now: datetime, **fields: Any) -> Outcome:
        fields.setdefault("worker", self.worker_id)
        return Outcome(id=row.id, action=f"classification.{status}", repr=self._repr(row, status),
                       attempts=row.attempts, status=status, **fields)

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
            return None, str(exc) or exc.__class__.__name__
        except Exception as exc:  # an engine bug must not kill the worker: the batch is retried
            log.exception("engine %s raised on a batch of %d", self.engine.name, len(batch.requests))
            return None, f"{exc.__class__.__name__}: {exc}"
        finally:
            self.timings["engine"] += time.perf_counter() - started
            self.counts["batches"] += 1
        if len(completions) != len(batch.requests):
            return None, f"the engine returned {len(completions)} completions for {len(batch.requests)} requests"
        if any(c.key != r.key for c, r in zip(completions, batch.requests, strict=True)):
            # The protocol promises request order; an engine that broke it is matched up by key instead.
            by_key = {c.key: c for c in completions}
            missing = "the engine returned no completion for this item"
            completions = [by_key.get(r.key) or safeguard.Completion(key=r.key, finish_reason="error", error=missing)
                           for r in batch.requests]
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
        started = time.perf_counter()
        outcomes = list(batch.ready)
        if completions is None:
            outcomes += [self._failure(row, error, now) for row in batch.sent]
        else:
            for row, request, completion in zip(batch.sent, batch.requests, completions, strict=True):
                outcomes.append(self._read(row, request, completion, now))
        self.timings["parse"] += time.perf_counter() - started
        return self.store(outcomes, now=now)

    def _read(self, row: Claimed, request: safeguard.Request, completion: safeguard.Completion,
              now: datetime) -> Outcome:
        try:
            verdict = safeguard.parse_completion(completion, request.policy)
        except Exception as exc:  # a parser bug makes an unreadable answer, never a lost one
            log.exception("classification %s: the parser raised", row.id)
            verdict = safeguard.Verdict(status="unparsable", raw_output=completion.text or "",
                                        error=f"the parser failed: {exc}")
        if verdict.status == FAILED:
            return self._failure(row, verdict.error, now)
        common: dict[str, Any] = {
            "reasoning": _clean(verdict.reasoning),
            "raw_output": _clean(verdict.raw_output),
            "model_name": (completion.model or self.engine.name)[:200],
            "prompt_tokens": completion.prompt_tokens or request.prompt.total_tokens,
            "completion_tokens": completion.completion_tokens,
            "latency_ms": completion.latency_s * 1000,
            "finished_at": now,
        }
        if verdict.status == DONE:
            return self._outcome(
                row, DONE, now,
                label=verdict.label[:60],
                violation=verdict.violation,
                category=verdict.category[:60],
                rule_ids=list(verdict.rule_ids),
                confidence=verdict.confidence,
                rationale=_clean(verdict.rationale),
                needs_review=needs_human(verdict),
                **common,
            )
        # unparsable or truncated: no verdict, never "safe"
        return self._outcome(row, verdict.status, now, error=_clean(verdict.error), needs_review=True, **common)

    def _failure(self, row: Claimed, error: str, now: datetime) -> Outcome:
        """An engine failure: back in the queue after a back-off, or failed once attempts run out."""
        error = _clean(error) or "the engine reported an error"
        if row.attempts < self.attempts:
            delay = retry_delay_s(row.attempts)
            outcome = self._outcome(
                row, QUEUED, now, worker="", lease_expires_at=now + timedelta(seconds=delay),
                error=f"attempt {row.attempts} of {self.attempts} failed, retrying in {delay} s: {error}",
            )
            outcome.action = "classification.retrying"
            return outcome
        return self._outcome(row, FAILED, now, needs_review=True, finished_at=now,
                             error=f"failed after {row.attempts} attempts: {error}")

    def store(self, outcomes: list[Outcome], *, now: datetime | None = None) -> list[int]:
        """Write outcomes and their audit events in one transaction, then tell the queue pages."""
        if not outcomes:
            return []
        now = now or timezone.now()
        started = time.perf_counter()
        try:
            written = self._store(outcomes, now)
        except DatabaseError:
            # One bad row must not strand the other 63: write them one by one to find it.
            log.exception("storing a batch of %d failed; storing row by row", len(outcomes))
            written = []
            for outcome in outcomes:
                try:
                    written += self._store([outcome], now)
                except DatabaseError as exc:
                    log.exception("classification %s: its result could not be stored", outcome.id)
                    written += self._store([self._unstorable(outcome, exc)], now)
        self.timings["write"] += time.perf_counter() - started
        self.counts["items"] += len(outcomes)
        return written

    def _unstorable(self, outcome: Outcome, exc: Exception) -> Outcome:
        return Outcome(id=outcome.id, action=f"classification.{FAILED}", repr=outcome.repr, attempts=outcome.attempts,
                       status=FAILED, worker=self.worker_id, needs_review=True, finished_at=outcome.finished_at,
                       model_name=outcome.model_name, error=f"the result could not be stored: {exc}"[:2000])

    def _store(self, outcomes: list[Outcome], now: datetime) -> list[int]:
        rows = []
        for o in outcomes:
            row = {name: getattr(o, name) for name, _ in _WRITE_COLUMNS}
            after = {"status": o.status, "attempts": o.attempts}
            if o.error:
                after["error"] = o.error
            row.update(id=o.id, action=o.action, repr=o.repr[:300], after=after)
            rows.append(row)
        params = {"rows": _json(rows), "worker": self.worker_id, "actor": self.actor_name,
                  "object_type": OBJECT_TYPE, "now": now}
        # One statement, so atomic by itself: the rows and their audit events are stored together.
        with connection.cursor() as cursor:
            cursor.execute(WRITE_SQL, params)
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

    def notify(self, ids: list[int]) -> None:
        started = time.perf_counter()
        try:
            broadcast.verdicts_stored(ids)
        except Exception:  # the verdicts are stored; a page that missed the news catches up on reload
            log.exception("could not broadcast %d stored verdicts", len(ids))
        owed = self.webhooks_owed + ids
        try:
            api_jobs.on_verdicts_stored(owed)  # decision webhooks for clients, delivered by the RQ worker
            self.webhooks_owed = []
        except Exception:  # the verdicts are stored and visible in the console; the webhooks wait
            self.webhooks_owed = owed[-WEBHOOKS_OWED_MAX:]
            log.exception("could not queue decision webhooks for %d stored verdicts; retrying with the next "
                          "batch (%d dropped over the cap)", len(owed), len(owed) - len(self.webhooks_owed))
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


# --- the sweeper ----------------------------------------------------------------------------


def sweep_stale(now: datetime | None = None) -> int:
    """Re-queue running classifications whose lease ran out (their worker died or hung).

    A row whose attempts are used up fails instead (needs review), so an item that kills its worker
    every time cannot loop forever. Returns how many rows were swept.
    """
    now = now or timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(SWEEP_SQL, {"now": now, "attempts": settings.SAFEGUARD_ATTEMPTS})
            rows = cursor.fetchall()
        if not rows:
            return 0
        # Sweeps are rare, so the audit trail gets the full str() of each row.
        reprs = {
            c.pk: str(c)[:300]
            for c in Classification.objects.filter(id__in=[row[0] for row in rows]).select_related(
                "item", "policy_version__policy"
            )
        }
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(
                    actor=None,
                    actor_name="system:sweeper",
                    action="classification.requeued" if status == QUEUED else f"classification.{status}",
                    object_type=OBJECT_TYPE,
                    object_id=str(pk),
                    object_repr=reprs.get(pk, ""),
                    before={"status": RUNNING, "worker": worker},
                    after={"status": status, "attempts": attempts, "reason": "lease expired"},
                )
                for pk, status, attempts, worker in rows
            ]
        )
        if any(status == QUEUED for _, status, _, _ in rows):
            transaction.on_commit(dispatch.wake_reasoner)
    log.warning("swept %d classifications whose lease expired", len(rows))
    return len(rows)


# --- the long-lived worker --------------------------------------------------------------------


class Worker:
    """The loop of `manage.py safeguard_worker`: one engine, batches, overlapped with the database.

    The engine always runs in the calling (main) thread, where it was built; one helper thread does
    every database step in order: claiming and rendering the next batch, then reading and storing
    the previous one, all while the engine works. The next batch is topped up with whatever arrived
    the moment the engine is free, so batches fill under load without waiting out a timer.
    """

    def __init__(
        self,
        engine: safeguard.Engine,
        worker_id: str = "",
        *,
        batch_size: int | None = None,
        batch_wait_s: float | None = None,
        idle_wait_s: float = IDLE_WAIT_S,
        sweep_every_s: float = SWEEP_EVERY_S,
    ) -> None:
        self.pipeline = Pipeline(engine, worker_id, batch_size=batch_size)
        self.batch_wait_s = settings.SAFEGUARD_BATCH_WAIT_MS / 1000 if batch_wait_s is None else batch_wait_s
        self.idle_wait_s = idle_wait_s
        self.sweep_every_s = sweep_every_s
        self._stopping = threading.Event()
        self._engine_free = threading.Event()
        self._last_sweep = 0.0
        self._redis: Any = None

    @property
    def worker_id(self) -> str:
        return self.pipeline.worker_id

    def stop(self) -> None:
        """Finish the batches already claimed, then return from `serve` (safe from a signal handler)."""
        self._stopping.set()
        self._engine_free.set()

    def serve(self, *, burst: bool = False) -> None:
        """Work until stopped; with `burst`, return as soon as nothing is queued."""
        db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasoner-db")
        log.info("reasoner worker %s: engine %s, batches of %d", self.worker_id, self.pipeline.engine.name,
                 self.pipeline.batch_size)
        try:
            batch: Batch | None = None
            while True:
                if batch is None:
                    if self._stopping.is_set():
                        break
                    batch = self._on(db, self._first_batch, burst)
                    if batch is None:
                        if burst:
                            break
                        continue
                # While the engine runs this batch, the helper thread claims the next one.
                self._engine_free.clear()
                upcoming = None if self._stopping.is_set() else db.submit(self._next_batch)
                completions, error = self.pipeline.generate(batch)
                self._engine_free.set()
                db.submit(self._finish, batch, completions, error)
                batch = self._result(upcoming) if upcoming is not None else None
                if batch is not None and not len(batch):
                    batch = None
        finally:
            # A lambda, so `connection` resolves to the helper thread's own connection.
            db.submit(lambda: connection.close()).result()
            db.shutdown(wait=True)
            log.info("reasoner worker %s stopped", self.worker_id)

    def _on(self, db: ThreadPoolExecutor, fn: Callable[..., Batch | None], *args: Any) -> Batch | None:
        return self._result(db.submit(fn, *args))

    def _result(self, future: Future[Batch | None]) -> Batch | None:
        try:
            return future.result()
        except Exception:  # the database went away, say: log, pause, and try again
            log.exception("reasoner worker %s: claiming failed", self.worker_id)
            self._stopping.wait(1.0)
            return None

    def _finish(self, batch: Batch, completions: list[safeguard.Completion] | None, error: str) -> None:
        try:
            self.pipeline.finish(batch, completions, error)
        except Exception:  # the rows stay running; the sweeper re-queues them when the lease runs out
            log.exception("reasoner worker %s: storing a batch of %d failed", self.worker_id, len(batch))

    def _wake(self, timeout: float) -> bool:
        if self._redis is None:
            self._redis = django_rq.get_connection("reasoner")
        # Redis reads a timeout that rounds to 0 ms as "block forever".
        return self._redis.blpop([dispatch.WAKE_KEY], timeout=max(timeout, 0.01)) is not None

    def _maybe_sweep(self) -> None:
        if time.monotonic() - self._last_sweep >= self.sweep_every_s:
            self._last_sweep = time.monotonic()
            sweep_stale()

    def _first_batch(self, burst: bool) -> Batch | None:
        """With nothing in flight: claim, and if the batch is short wait briefly for it to fill."""
        close_old_connections()
        self._maybe_sweep()
        batch = self.pipeline.claim()
        if not len(batch):
            if not burst:
                self._wake(self.idle_wait_s)
            return None
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.pipeline.batch_size and not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._wake(left)
            batch.extend(self.pipeline.claim(self.pipeline.batch_size - len(batch)))
        return batch

    def _next_batch(self) -> Batch:
        """While the engine is busy: claim what is queued, then top up once the engine is free."""
        close_old_connections()
        self._maybe_sweep()
        batch = self.pipeline.claim()
        if len(batch) < self.pipeline.batch_size and not self._stopping.is_set():
            self._engine_free.wait()
            if not self._stopping.is_set():
                batch.extend(self.pipeline.claim(self.pipeline.batch_size - len(batch)))
        return batch
