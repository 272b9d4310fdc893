from __future__ import annotations

import pytest

from api import jobs, queues
from api.models import FirstPassModel, WebhookDelivery
from console import reasoner
from console.models import Classification
from safeguard.engines.scripted import ScriptedEngine
from tests.api.helpers import run_jobs


def _scheduled(name: str) -> list[str]:
    queue = queues.queue(name)
    return [queue.fetch_job(job_id).func_name for job_id in queue.scheduled_job_registry.get_job_ids()]


def test_ensure_scheduled_starts_each_periodic_chain_once(db, settings):
    settings.FIRST_PASS_RETRAIN_INTERVAL_S = 3600
    jobs.ensure_scheduled()
    queued = [job.func_name for job in queues.queue("default").jobs]
    assert sorted(queued) == ["api.jobs.scheduled_retrain", "api.jobs.scheduled_webhook_sweep"]
    jobs._last_ensured = 0.0
    jobs.ensure_scheduled()  # the chains are alive: nothing more
    assert len(queues.queue("default").jobs) == 2


def test_no_retrain_chain_runs_when_the_interval_is_zero(db, settings):
    settings.FIRST_PASS_RETRAIN_INTERVAL_S = 0
    jobs.ensure_scheduled()
    assert [job.func_name for job in queues.queue("default").jobs] == ["api.jobs.scheduled_webhook_sweep"]


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
    reasoner.run_once(ScriptedEngine())  # the worker hands its stored verdicts on by itself
    [job] = queues.queue("webhooks").jobs
    assert job.func_name == "api.jobs.notify_decisions"
    assert job.args == (list(Classification.objects.filter(item_id=item_id).values_list("id", flat=True)),)
    run_jobs(lambda: WebhookDelivery.objects.filter(status="retrying").exists(), queues_=("webhooks",))
    delivery = WebhookDelivery.objects.get()
    assert delivery.item_id == item_id
    assert delivery.attempts == 1  # nothing listens at the fixture's URL: retried later


def test_on_verdicts_stored_with_nothing_enqueues_nothing(db):
    jobs.on_verdicts_stored([])
    assert queues.queue("webhooks").count == 0


def test_webhooks_the_reasoner_could_not_hand_over_go_with_its_next_batch(
    db, monkeypatch, django_capture_on_commit_callbacks
):
    pipeline = reasoner.Pipeline(ScriptedEngine(), "w1")
    hand_over = jobs.on_verdicts_stored

    def redis_away(ids):
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(jobs, "on_verdicts_stored", redis_away)
    pipeline.notify([11, 12])
    assert pipeline.webhooks_owed == [11, 12]
    assert queues.queue("webhooks").count == 0

    monkeypatch.setattr(jobs, "on_verdicts_stored", hand_over)
    with django_capture_on_commit_callbacks(execute=True):  # RQ enqueues when the transaction commits
        pipeline.notify([13])
    [job] = queues.queue("webhooks").jobs
    assert job.func_name == "api.jobs.notify_decisions"
    assert job.args == ([11, 12, 13],)
    assert pipeline.webhooks_owed == []
