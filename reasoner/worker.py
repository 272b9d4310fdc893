"""The long-lived reasoner worker (`manage.py safeguard_worker`): one engine, loaded once, fed batches
while a helper thread does the database work of the neighbouring batches."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import django_rq
import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection

import safeguard
from console import wakeup
from reasoner.batch import EVALUATION, LIVE, Batch, Outcome
from reasoner.heartbeat import Heartbeat
from reasoner.pipeline import Pipeline
from reasoner.sweeper import sweep_stale

log = logging.getLogger("console.reasoner")  # the name it had before the reasoner became an app

IDLE_WAIT_S = 3.0  # an idle worker re-checks the database this often, so a lost wake-up strands nothing
STORE_PAUSE_MAX_S = 2.0  # while the database is away, a batch's store is retried at least this often


class Worker:
    """The loop of `manage.py safeguard_worker`: one engine, batches, overlapped with the database.

    The engine always runs in the calling (main) thread, where it was built; one helper thread does
    every database step in order: claiming and rendering the next batch, then reading and storing
    the previous one, all while the engine works. The next batch is topped up with whatever arrived
    the moment the engine is free, so batches fill under load without waiting out a timer.

    A heartbeat thread renews the leases of every row claimed and not yet stored. A batch whose store
    fails because the database is away keeps its results in memory and is stored again until the
    database answers (for up to two leases); only then is it released, so an outage does not make the
    engine run the same work twice.
    """

    def __init__(
        self,
        engine: safeguard.Engine,
        worker_id: str = "",
        *,
        batch_size: int | None = None,
        batch_wait_s: float | None = None,
        idle_wait_s: float = IDLE_WAIT_S,
        sweep_every_s: float | None = None,
        lanes: Sequence[str] = (LIVE, EVALUATION),
    ) -> None:
        self.pipeline = Pipeline(engine, worker_id, batch_size=batch_size, lanes=lanes)
        self.batch_wait_s = settings.SAFEGUARD_BATCH_WAIT_MS / 1000 if batch_wait_s is None else batch_wait_s
        self.idle_wait_s = idle_wait_s
        lease_s = float(settings.SAFEGUARD_LEASE_S)
        # A third of a lease for both: a dead worker's rows are re-queued within about 1.3 leases.
        self.sweep_every_s = lease_s / 3 if sweep_every_s is None else sweep_every_s
        # An idle worker sweeps each time it wakes, so it must wake at least as often as it sweeps.
        self.idle_wait_s = min(self.idle_wait_s, self.sweep_every_s)
        self.store_retry_s = 2 * lease_s
        self.heartbeat = Heartbeat(self.pipeline, every_s=lease_s / 3)
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
        log.info("reasoner worker %s: engine %s, batches of %d, lease %d s", self.worker_id,
                 self.pipeline.engine.name, self.pipeline.batch_size, settings.SAFEGUARD_LEASE_S)
        self.heartbeat.start()
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
            self.heartbeat.stop()
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
            outcomes = self.pipeline.read(batch, completions, error)
            self._store(batch, outcomes)
        finally:
            self.heartbeat.drop(batch.keys)

    def _store(self, batch: Batch, outcomes: list[Outcome]) -> None:
        """Store the outcomes, retrying while the database is away; release the batch if that fails."""
        deadline = time.monotonic() + self.store_retry_s
        pause = 0.25
        while True:
            try:
                self.pipeline.store(outcomes)
                return
            except (OperationalError, InterfaceError) as exc:
                close_old_connections()  # drops the broken connection, so the next try connects afresh
                if time.monotonic() + pause > deadline:
                    reason = f"its results could not be stored for {self.store_retry_s:.0f} s: {exc}"
                    break
                log.warning("reasoner worker %s: the database is away, storing a batch of %d again in %.1f s (%s)",
                            self.worker_id, len(batch), pause, exc)
                time.sleep(pause)
                pause = min(pause * 2, STORE_PAUSE_MAX_S)
            except Exception as exc:  # a bug, not an outage: retrying would not help
                log.exception("reasoner worker %s: storing a batch of %d failed", self.worker_id, len(batch))
                reason = f"its results could not be stored: {exc.__class__.__name__}: {exc}"
                break
        try:
            released = self.pipeline.release(batch, reason)
            log.warning("reasoner worker %s: released %d classifications (%s)", self.worker_id, len(released), reason)
        except Exception:  # still no database: the rows are no longer renewed, so the sweeper takes them
            log.exception("reasoner worker %s: releasing a batch of %d failed", self.worker_id, len(batch))

    def _wake(self, timeout: float) -> bool:
        """Wait up to `timeout` for a wake-up from Redis; while Redis is away, just wait (the database is
        the queue, so a lost wake-up only delays work by IDLE_WAIT_S)."""
        try:
            if self._redis is None:
                self._redis = django_rq.get_connection("reasoner")
            # Redis reads a timeout that rounds to 0 ms as "block forever".
            return self._redis.blpop([wakeup.WAKE_KEY], timeout=max(timeout, 0.01)) is not None
        except (redis.RedisError, OSError) as exc:
            log.warning("reasoner worker %s: Redis is away (%s); polling the database", self.worker_id, exc)
            self._redis = None
            self._stopping.wait(timeout)
            return False

    def _maybe_sweep(self) -> None:
        if time.monotonic() - self._last_sweep >= self.sweep_every_s:
            self._last_sweep = time.monotonic()
            sweep_stale()

    def _claim(self, limit: int | None = None) -> Batch:
        batch = self.pipeline.claim(limit)
        self.heartbeat.hold(batch.keys)
        return batch

    def _top_up(self, batch: Batch) -> bool:
        """Add what is queued to a batch already held; False (keep the batch as it is) on any failure, so
        a claimed batch is never dropped with its rows still running."""
        try:
            batch.extend(self._claim(self.pipeline.batch_size - len(batch)))
            return True
        except Exception:
            log.exception("reasoner worker %s: topping up a batch failed", self.worker_id)
            return False

    def _first_batch(self, burst: bool) -> Batch | None:
        """With nothing in flight: claim, and if the batch is short wait briefly for it to fill."""
        close_old_connections()
        self._maybe_sweep()
        batch = self._claim()
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
            if not self._top_up(batch):
                break
        return batch

    def _next_batch(self) -> Batch:
        """While the engine is busy: claim what is queued, then top up once the engine is free."""
        close_old_connections()
        self._maybe_sweep()
        batch = self._claim()
        if len(batch) < self.pipeline.batch_size and not self._stopping.is_set():
            self._engine_free.wait()
            if not self._stopping.is_set():
                self._top_up(batch)
        return batch
