"""The heartbeat: a thread of the reasoner worker that renews the leases of the classifications it holds.

Leases are short (SAFEGUARD_LEASE_S, 30 s by default) so that the work of a worker that died is taken
over within a minute; a live worker keeps its rows by renewing them every third of a lease, for as long
as the engine works on them (bounded by SAFEGUARD_MAX_RUN_S, so a hung engine does not hold them forever).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from django.db import close_old_connections, connection

from reasoner.pipeline import Pipeline

log = logging.getLogger("console.reasoner")

RETRY_S = 1.0  # after a failed renewal (the database is away), try again this soon


class Heartbeat:
    """Holds the ids a worker has claimed and not yet settled, and renews their leases in its own thread
    (with its own database connection, so a long store or claim never delays a renewal)."""

    def __init__(self, pipeline: Pipeline, every_s: float) -> None:
        self.pipeline = pipeline
        self.every_s = every_s
        self._held: set[tuple[str, int]] = set()  # (lane, id): see reasoner.pipeline.Claimed.key
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewals = 0  # rows renewed, for tests and the log
        self.failures = 0  # renewals that failed (the database was away)

    def hold(self, keys: Iterable[tuple[str, int]]) -> None:
        with self._lock:
            self._held.update(keys)

    def drop(self, keys: Iterable[tuple[str, int]]) -> None:
        with self._lock:
            self._held.difference_update(keys)

    @property
    def held(self) -> set[tuple[str, int]]:
        with self._lock:
            return set(self._held)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reasoner-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        wait = self.every_s
        try:
            while not self._stopping.wait(wait):
                wait = self.every_s if self.beat() else RETRY_S
        finally:
            connection.close()

    def beat(self) -> bool:
        """Renew once; False when the database could not be reached (the caller retries sooner)."""
        keys = self.held
        if not keys:
            return True
        try:
            renewed = set(self.pipeline.renew(sorted(keys)))
        except Exception:
            self.failures += 1
            close_old_connections()  # drops a broken connection, so the next beat connects afresh
            log.warning("reasoner worker %s: could not renew the leases of %d classifications", self.pipeline.worker_id,
                        len(keys), exc_info=True)
            return False
        self.renewals += len(renewed)
        lost = keys - renewed
        if lost:
            # Stored since the snapshot (the usual case), or swept after an outage outlasted the lease, or
            # running past SAFEGUARD_MAX_RUN_S: whoever holds them now wins, and the store says so when it
            # drops this worker's results for them.
            self.drop(lost)
            log.debug("reasoner worker %s: %d rows no longer renewed", self.pipeline.worker_id, len(lost))
        return True
