"""The real `manage.py safeguard_worker` process against the test database, killed and restarted."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from audit.models import AuditEvent
from console.models import Classification
from evaluations import runs
from reasoner.sweeper import sweep_stale
from tests.factories import make_item, make_labeled_set, make_policy
from tests.reasoner.processes import events_per_classification, start_worker, stop, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_worker_process_classifies_queued_items_and_stops_cleanly_on_sigterm(tmp_path):
    version = make_policy()
    spam = make_item(versions=[version], content="free money, click here")
    safe = make_item(versions=[version], content="lunch at noon?")
    broken = make_item(versions=[version], content="hello #unparsable")
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        wait_until(lambda: not Classification.objects.filter(status__in=["queued", "running"]).exists(),
                    60, "every classification is settled", log)
    finally:
        returncode = stop(worker)

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
    first = start_worker(log)
    try:
        wait_until(lambda: Classification.objects.filter(status="running").count() == 40,
                    60, "the first worker holds the whole batch", log)
        time.sleep(0.5)  # inside engine.generate now: 40 items of 0.1 s each
    finally:
        first.kill()
        first.wait(timeout=20)

    assert Classification.objects.filter(status="running").count() == 40
    assert not AuditEvent.objects.filter(action="classification.done").exists()
    # Sweep as if the lease had run out (test_faults.py lets it run out for real).
    assert sweep_stale(now=timezone.now() + timedelta(seconds=settings.SAFEGUARD_LEASE_S + 1)) == 40

    second = start_worker(log)
    try:
        wait_until(lambda: Classification.objects.filter(status="done").count() == 40,
                    90, "the second worker classified everything", log)
    finally:
        assert stop(second) == 0, log.read_text()

    classifications = Classification.objects.filter(item__in=items)
    assert classifications.count() == 40
    assert set(classifications.values_list("status", "attempts")) == {("done", 2)}
    counts = events_per_classification(c.pk for c in classifications)
    expected = {str(c.pk): 1 for c in classifications}
    assert counts["classification.done"] == expected
    assert counts["classification.requeued"] == expected
    assert counts["classification.started"] == dict.fromkeys(expected, 2)


def test_without_a_model_the_worker_says_so_once_idles_and_leaves_work_queued(tmp_path):
    classification = make_item(versions=[make_policy()]).classifications.get()
    log = tmp_path / "worker.log"
    worker = start_worker(log, SAFEGUARD_BACKEND="")
    try:
        wait_until(lambda: "No model is configured" in log.read_text(), 30, "the worker explains", log)
        time.sleep(0.5)
        assert worker.poll() is None
    finally:
        returncode = stop(worker)

    assert returncode == 0
    assert log.read_text().count("No model is configured") == 1
    assert "SAFEGUARD_BACKEND=openai" in log.read_text()
    classification.refresh_from_db()
    assert (classification.status, classification.attempts) == ("queued", 0)


def test_a_worker_kept_for_live_traffic_leaves_evaluation_runs_to_the_others(tmp_path):
    version = make_policy()
    run = runs.start_run(actor=None, labeled_set=make_labeled_set(version.policy, [("hello", "0"), ("see you", "0")]),
                         version=version)
    live = make_item(versions=[version], content="free money").classifications.get()
    log = tmp_path / "worker.log"
    worker = start_worker(log, "--lanes", "live")
    try:
        wait_until(lambda: Classification.objects.get(pk=live.pk).status == "done", 60, "the live item is done", log)
        time.sleep(1.0)
        assert set(run.results.values_list("status", flat=True)) == {"queued"}
    finally:
        assert stop(worker) == 0, log.read_text()
