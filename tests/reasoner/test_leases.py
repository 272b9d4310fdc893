"""Leases: the heartbeat renews what a worker holds, a store that cannot happen releases the batch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from console.models import Classification
from reasoner.heartbeat import Heartbeat
from reasoner.pipeline import Pipeline
from reasoner.worker import Worker
from safeguard.engines.scripted import ScriptedEngine
from tests.factories import make_item, make_policy

pytestmark = pytest.mark.django_db


def _queued(n: int) -> list[Classification]:
    version = make_policy()
    return [make_item(versions=[version], content=f"message {k}").classifications.get() for k in range(n)]


def test_renewing_extends_the_lease_of_rows_still_running_and_held_by_this_worker(settings):
    settings.SAFEGUARD_LEASE_S = 30
    mine, taken = _queued(2)
    pipeline = Pipeline(ScriptedEngine(), "w1")
    claimed_at = timezone.now() - timedelta(seconds=20)
    pipeline.claim(now=claimed_at)
    Classification.objects.filter(pk=taken.pk).update(worker="w2")  # swept and taken by another worker

    now = timezone.now()
    assert pipeline.renew([("live", mine.pk), ("live", taken.pk)], now=now) == [("live", mine.pk)]

    mine.refresh_from_db()
    taken.refresh_from_db()
    assert mine.lease_expires_at == now + timedelta(seconds=30)
    assert taken.lease_expires_at == claimed_at + timedelta(seconds=30)


def test_a_row_running_longer_than_the_max_run_is_not_renewed(settings):
    settings.SAFEGUARD_MAX_RUN_S = 60
    [hung] = _queued(1)
    pipeline = Pipeline(ScriptedEngine(), "w1")
    pipeline.claim(now=timezone.now() - timedelta(seconds=61))

    assert pipeline.renew([("live", hung.pk)]) == []


def test_the_heartbeat_renews_held_rows_and_stops_holding_those_it_lost(settings):
    settings.SAFEGUARD_LEASE_S = 30
    kept, lost = _queued(2)
    pipeline = Pipeline(ScriptedEngine(), "w1")
    heartbeat = Heartbeat(pipeline, every_s=10)
    heartbeat.hold(pipeline.claim().keys)
    Classification.objects.filter(pk=lost.pk).update(status="queued", worker="")  # swept

    assert heartbeat.beat() is True

    assert heartbeat.held == {("live", kept.pk)}
    assert heartbeat.renewals == 1


def test_releasing_a_batch_requeues_its_rows_at_once_with_an_audit_event():
    first, second = _queued(2)
    pipeline = Pipeline(ScriptedEngine(), "w1")
    batch = pipeline.claim()

    released = pipeline.release(batch, "the database refused the write")
    assert sorted(released) == sorted([("live", first.pk), ("live", second.pk)])

    first.refresh_from_db()
    assert (first.status, first.worker, first.lease_expires_at) == ("queued", "", None)
    event = AuditEvent.objects.get(action="classification.released", object_id=str(first.pk))
    assert event.actor_name == "system:w1"
    assert event.after == {"status": "queued", "reason": "the database refused the write"}


def test_a_store_that_fails_for_a_reason_other_than_an_outage_releases_the_batch_at_once(monkeypatch):
    [classification] = _queued(1)
    worker = Worker(ScriptedEngine(), "w1")
    batch = worker._claim()
    completions, error = worker.pipeline.generate(batch)

    def broken_store(outcomes, **kwargs):
        raise ValueError("a bug in the store")

    monkeypatch.setattr(worker.pipeline, "store", broken_store)
    worker._finish(batch, completions, error)

    classification.refresh_from_db()
    assert (classification.status, classification.worker) == ("queued", "")
    assert worker.heartbeat.held == set()
    event = AuditEvent.objects.get(action="classification.released", object_id=str(classification.pk))
    assert "ValueError: a bug in the store" in event.after["reason"]
