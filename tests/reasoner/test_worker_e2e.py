"""The real `manage.py safeguard_worker` process against the test database, killed and restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from audit.models import AuditEvent
from console.models import Classification
from reasoner.sweeper import sweep_stale
from tests.browser import live
from tests.factories import make_item, make_policy

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(settings.BASE_DIR)


def _start_worker(log: Path, **env: str) -> subprocess.Popen:
    child_env = {**os.environ, "DATABASE_URL": live.database_url(connection.settings_dict),
                 "SAFEGUARD_BACKEND": "scripted", **env}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "safeguard_worker"], cwd=ROOT, env=child_env, stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_until(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting until {what}; worker log:\n{log.read_text()}")


def _stop(worker: subprocess.Popen) -> int:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        raise


def test_the_worker_process_classifies_queued_items_and_stops_cleanly_on_sigterm(tmp_path):
    version = make_policy()
    spam = make_item(versions=[version], content="free money, click here")
    safe = make_item(versions=[version], content="lunch at noon?")
    broken = make_item(versions=[version], content="hello #unparsable")
    log = tmp_path / "worker.log"
    worker = _start_worker(log)
    try:
        _wait_until(lambda: not Classification.objects.filter(status__in=["queued", "running"]).exists(),
                    60, "every classification is settled", log)
    finally:
        returncode = _stop(worker)

    assert returncode == 0, log.read_text()
    results = {c.item_id: c for c in Classification.objects.all()}
    assert (results[spam.pk].status, results[spam.pk].violation) == ("done", True)
    assert (results[safe.pk].status, results[safe.pk].violation) == ("done", False)
    assert (results[broken.pk].status, results[broken.pk].violation) == ("unparsable", None)
    assert "keyword rule matched free money" in results[spam.pk].reasoning
    assert "reasoner worker" in log.read_text() and "stopped" in log.read_text()


def test_work_of_a_killed_worker_is_swept_and_classified_exactly_once(tmp_path):
    version = make_policy()
    items = [make_item(versions=[version], content=f"message {n} #slow=0.1") for n in range(40)]
    log = tmp_path / "worker.log"
    first = _start_worker(log)
    try:
        _wait_until(lambda: Classification.objects.filter(status="running").count() == 40,
                    60, "the first worker holds the whole batch", log)
        time.sleep(0.5)  # inside engine.generate now: 40 items of 0.1 s each
    finally:
        first.kill()
        first.wait(timeout=20)

    assert Classification.objects.filter(status="running").count() == 40
    assert not AuditEvent.objects.filter(action="classification.done").exists()
    # The lease is 600 s; sweep as if it had run out.
    assert sweep_stale(now=timezone.now() + timedelta(seconds=settings.SAFEGUARD_LEASE_S + 1)) == 40

    second = _start_worker(log)
    try:
        _wait_until(lambda: Classification.objects.filter(status="done").count() == 40,
                    90, "the second worker classified everything", log)
    finally:
        assert _stop(second) == 0, log.read_text()

    classifications = Classification.objects.filter(item__in=items)
    assert classifications.count() == 40
    assert set(classifications.values_list("status", "attempts")) == {("done", 2)}
    per_classification = (
        AuditEvent.objects.filter(object_type="console.classification")
        .values("object_id", "action")
        .annotate(n=Count("id"))
    )
    counts: dict[str, dict[str, int]] = {}
    for row in per_classification:
        counts.setdefault(row["action"], {})[row["object_id"]] = row["n"]
    expected = {str(c.pk): 1 for c in classifications}
    assert counts["classification.done"] == expected
    assert counts["classification.requeued"] == expected
    assert counts["classification.started"] == dict.fromkeys(expected, 2)


def test_without_a_model_the_worker_says_so_once_idles_and_leaves_work_queued(tmp_path):
    classification = make_item(versions=[make_policy()]).classifications.get()
    log = tmp_path / "worker.log"
    worker = _start_worker(log, SAFEGUARD_BACKEND="")
    try:
        _wait_until(lambda: "No model is configured" in log.read_text(), 30, "the worker explains", log)
        time.sleep(0.5)
        assert worker.poll() is None
    finally:
        returncode = _stop(worker)

    assert returncode == 0
    assert log.read_text().count("No model is configured") == 1
    assert "SAFEGUARD_BACKEND=openai" in log.read_text()
    classification.refresh_from_db()
    assert (classification.status, classification.attempts) == ("queued", 0)
