from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from api import deliveries, jobs, redis_client, schedule
from api.models import FirstPassModel, WebhookDelivery
from audit.models import ChainCheck
from console.models import Classification, Item
from privacy.redaction import marker
from reasoner.pipeline import Pipeline, run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.api.helpers import run_jobs
from tests.factories import make_item, make_policy


def _scheduled(name: str) -> list[str]:
    queue = redis_client.queue(name)
    return [queue.fetch_job(job_id).func_name for job_id in queue.scheduled_job_registry.get_job_ids()]


def test_ensure_scheduled_starts_each_periodic_chain_once(db, settings):
    settings.FIRST_PASS_RETRAIN_INTERVAL_S = 3600
    schedule.ensure_scheduled()
    queued = [job.func_name for job in redis_client.queue("default").jobs]
    assert sorted(queued) == ["api.jobs.scheduled_audit_verify", "api.jobs.scheduled_retention",
                              "api.jobs.scheduled_retrain", "api.jobs.scheduled_webhook_sweep"]
    schedule._last_ensured = 0.0
    schedule.ensure_scheduled()  # the chains are alive: nothing more
    assert len(redis_client.queue("default").jobs) == 4


def test_no_retrain_chain_runs_when_the_interval_is_zero(db, settings):
    settings.FIRST_PASS_RETRAIN_INTERVAL_S = 0
    settings.AUDIT_VERIFY_EVERY_S = 0
    settings.RETENTION_EVERY_S = 0
    schedule.ensure_scheduled()
    assert [job.func_name for job in redis_client.queue("default").jobs] == ["api.jobs.scheduled_webhook_sweep"]


def test_the_scheduled_audit_verification_records_its_result_and_schedules_its_next_run(db, settings):
    settings.AUDIT_VERIFY_EVERY_S = 3600
    make_policy()

    assert jobs.scheduled_audit_verify() is True

    assert ChainCheck.objects.get().ok
    assert _scheduled("default") == ["api.jobs.scheduled_audit_verify"]


def test_the_scheduled_retention_redacts_what_is_due_and_schedules_its_next_run(db, settings):
    settings.RETENTION_EVERY_S = 3600
    settings.RETENTION_CONTENT_DAYS = 3
    item = make_item(versions=[], content="an old post")  # no policy: nothing waits on it
    Item.objects.filter(pk=item.pk).update(created_at=timezone.now() - timedelta(days=4))

    assert jobs.scheduled_retention() == 1

    assert Item.objects.get(pk=item.pk).content == marker()
    assert _scheduled("default") == ["api.jobs.scheduled_retention"]


def test_the_scheduled_retrain_trains_and_schedules_its_next_run(trained_spam, settings):
    spam, first = trained_spam
    settings.FIRST_PASS_RETRAIN_INTERVAL_S = 600
    assert jobs.scheduled_retrain() == []  # the data did not change
    assert _scheduled("default") == ["api.jobs.scheduled_retrain"]
    assert jobs.retrain_first_pass(spam.policy_id, force=True) != []
    assert FirstPassModel.objects.filter(policy=spam.policy).count() == 2


@pytest.mark.django_db(transaction=True)
def test_stored_verdicts_become_webhook_deliveries_through_the_queue(api, acme):
    item_id = api.post("/api/v1/items", {"content": "hello"}).json()["id"]
    run_once(ScriptedEngine())  # the worker hands its stored verdicts on by itself
    [job] = redis_client.queue("webhooks").jobs
    assert job.func_name == "api.jobs.notify_decisions"
    assert job.args == (list(Classification.objects.filter(item_id=item_id).values_list("id", flat=True)),)
    run_jobs(lambda: WebhookDelivery.objects.filter(status="retrying").exists(), queues_=("webhooks",))
    delivery = WebhookDelivery.objects.get()
    assert delivery.item_id == item_id
    assert delivery.attempts == 1  # nothing listens at the fixture's URL: retried later


def test_handing_over_no_verdicts_enqueues_nothing(db):
    deliveries.check_decisions_later([])
    assert redis_client.queue("webhooks").count == 0


def test_webhooks_the_reasoner_could_not_hand_over_go_with_its_next_batch(
    db, monkeypatch, django_capture_on_commit_callbacks
):
    pipeline = Pipeline(ScriptedEngine(), "w1")
    hand_over = deliveries.check_decisions_later

    def redis_away(ids):
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(deliveries, "owed", [])
    monkeypatch.setattr(deliveries, "check_decisions_later", redis_away)
    pipeline.notify([11, 12])  # the reasoner's signal reaches the API's receiver, which cannot hand them over
    assert deliveries.owed == [11, 12]
    assert redis_client.queue("webhooks").count == 0

    monkeypatch.setattr(deliveries, "check_decisions_later", hand_over)
    with django_capture_on_commit_callbacks(execute=True):  # RQ enqueues when the transaction commits
        pipeline.notify([13])
    [job] = redis_client.queue("webhooks").jobs
    assert job.func_name == "api.jobs.notify_decisions"
    assert job.args == ([11, 12, 13],)
    assert deliveries.owed == []
