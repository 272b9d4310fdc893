from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from console.models import Classification
from reasoner.pipeline import Pipeline, needs_human, run_once
from reasoner.sweeper import sweep_stale
from reasoner.worker import Worker
from safeguard import EngineError, Verdict
from safeguard.engines.scripted import ScriptedEngine
from tests.factories import make_item, make_policy

pytestmark = pytest.mark.django_db


class Recording:
    """The scripted engine, remembering the size of every batch it was given."""

    def __init__(self, inner=None):
        self.inner = inner or ScriptedEngine()
        self.name = self.inner.name
        self.batches: list[int] = []

    def generate(self, requests):
        self.batches.append(len(requests))
        return self.inner.generate(requests)


class Broken:
    name = "broken-engine"

    def generate(self, requests):
        raise EngineError("the GPU fell off the bus")


def _classification(content: str, version=None) -> Classification:
    return make_item(versions=[version or make_policy()], content=content).classifications.get()


def _actions(classification: Classification) -> list[str]:
    events = AuditEvent.objects.filter(object_type="console.classification", object_id=str(classification.pk))
    return list(events.order_by("id").values_list("action", flat=True))


def test_it_stores_verdicts_with_the_models_reasoning():
    version = make_policy()
    spam = _classification("buy now, limited offer", version)
    fine = _classification("see you at lunch", version)

    assert run_once(ScriptedEngine(), "w1") == 2

    spam.refresh_from_db()
    fine.refresh_from_db()
    assert (spam.status, spam.violation, spam.label, spam.needs_review) == ("done", True, "1", True)
    assert (fine.status, fine.violation, fine.label, fine.needs_review) == ("done", False, "0", False)
    assert "keyword rule matched buy now" in spam.reasoning
    assert spam.raw_output.startswith("<|channel|>analysis<|message|>")
    assert spam.model_name == "scripted-test-engine"
    assert spam.prompt_tokens > 0 and spam.completion_tokens > 0 and spam.latency_ms >= 0
    assert (spam.attempts, spam.worker, spam.lease_expires_at) == (1, "w1", None)
    assert spam.started_at <= spam.finished_at
    assert _actions(spam) == ["classification.started", "classification.done"]
    done = AuditEvent.objects.get(object_id=str(spam.pk), action="classification.done")
    assert done.actor is None and done.actor_name == "system:w1"
    assert done.before == {"status": "running"}
    assert done.after == {"status": "done", "attempts": 1, "parse_quality": "clean"}


@pytest.mark.parametrize(
    ("directive", "status"),
    [("#unparsable", "unparsable"), ("#truncate", "truncated"), ("#empty", "unparsable")],
)
def test_it_never_takes_an_unreadable_answer_for_safe(directive, status):
    classification = _classification(f"hello {directive}")

    run_once(ScriptedEngine(), "w1")

    classification.refresh_from_db()
    assert classification.status == status
    assert classification.violation is None
    assert classification.needs_review is True
    assert classification.raw_output and classification.error
    assert _actions(classification)[-1] == f"classification.{status}"


def test_it_retries_an_engine_error_after_a_back_off_then_fails_it(settings):
    settings.SAFEGUARD_ATTEMPTS = 3
    classification = _classification("hello #error")
    now = timezone.now()

    run_once(ScriptedEngine(), "w1", now=now)
    classification.refresh_from_db()
    assert (classification.status, classification.attempts, classification.worker) == ("queued", 1, "")
    assert classification.lease_expires_at == now + timedelta(seconds=2)
    assert "attempt 1 of 3 failed" in classification.error

    assert run_once(ScriptedEngine(), "w1", now=now + timedelta(seconds=1)) == 0
    run_once(ScriptedEngine(), "w1", now=now + timedelta(seconds=3))
    run_once(ScriptedEngine(), "w1", now=now + timedelta(seconds=60))

    classification.refresh_from_db()
    assert (classification.status, classification.attempts, classification.violation) == ("failed", 3, None)
    assert classification.needs_review is True
    assert "failed after 3 attempts: scripted error (#error)" in classification.error
    assert _actions(classification) == [
        "classification.started", "classification.retrying",
        "classification.started", "classification.retrying",
        "classification.started", "classification.failed",
    ]


def test_it_puts_a_whole_batch_back_when_the_engine_fails_and_fails_it_when_attempts_run_out(settings):
    version = make_policy()
    first, second = _classification("one", version), _classification("two", version)

    run_once(Broken(), "w1")
    assert set(Classification.objects.values_list("status", "attempts")) == {("queued", 1)}
    assert "the GPU fell off the bus" in Classification.objects.get(pk=first.pk).error

    settings.SAFEGUARD_ATTEMPTS = 2
    run_once(Broken(), "w1", now=timezone.now() + timedelta(minutes=1))
    for classification in (first, second):
        classification.refresh_from_db()
        assert (classification.status, classification.needs_review) == ("failed", True)
        assert classification.error == "failed after 2 attempts: the GPU fell off the bus"


def test_it_does_not_send_a_prompt_longer_than_the_context_allows(settings):
    settings.SAFEGUARD_CONTEXT_TOKENS = 300
    settings.SAFEGUARD_MAX_TOKENS = 200
    classification = _classification("word " * 150)
    engine = Recording()

    run_once(engine, "w1")

    classification.refresh_from_db()
    assert engine.batches == []
    assert (classification.status, classification.violation, classification.needs_review) == ("too_long", None, True)
    assert classification.prompt_tokens > 100
    assert f"The prompt is {classification.prompt_tokens:,} tokens" in classification.error
    assert "at most 100 fit" in classification.error
    assert _actions(classification) == ["classification.started", "classification.too_long"]


def test_it_runs_queued_work_in_batches_oldest_first(settings):
    settings.SAFEGUARD_BATCH_SIZE = 4
    version = make_policy()
    classifications = [_classification(f"message {n}", version) for n in range(10)]
    engine = Recording()

    while run_once(engine, "w1"):
        pass

    assert engine.batches == [4, 4, 2]
    assert set(Classification.objects.values_list("status", flat=True)) == {"done"}
    first_batch = AuditEvent.objects.filter(action="classification.started").order_by("id")[:4]
    assert [int(e.object_id) for e in first_batch] == [c.pk for c in classifications[:4]]


def test_it_classifies_each_policy_of_an_item_with_its_own_prompt():
    binary = make_policy()
    labelled = make_policy(output_format="label", label_scheme="valid_invalid")
    item = make_item(versions=[binary, labelled], content="free money here")

    run_once(ScriptedEngine(), "w1")

    labels = dict(item.classifications.values_list("policy_version_id", "label"))
    assert labels == {binary.pk: "1", labelled.pk: "INVALID"}


def test_it_classifies_a_conversation_from_its_turns():
    item = make_item(versions=[make_policy()], kind="conversation",
                     turns=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "free money!"}])

    run_once(ScriptedEngine(), "w1")

    classification = item.classifications.get()
    assert (classification.status, classification.violation) == ("done", True)
    assert "free money" in classification.reasoning


def test_it_does_not_write_over_a_classification_another_worker_now_holds():
    classification = _classification("buy now")
    pipeline = Pipeline(ScriptedEngine(), "w1")
    batch = pipeline.claim()
    # The lease ran out, the sweeper re-queued the row and another worker claimed it.
    Classification.objects.filter(pk=classification.pk).update(worker="w2")
    completions, error = pipeline.generate(batch)

    assert pipeline.finish(batch, completions, error) == []

    classification.refresh_from_db()
    assert (classification.status, classification.worker, classification.violation) == ("running", "w2", None)
    assert _actions(classification) == ["classification.started"]


def test_the_sweeper_requeues_expired_leases_and_leaves_live_ones(settings):
    settings.SAFEGUARD_LEASE_S = 60
    version = make_policy()
    stale, live = _classification("one", version), _classification("two", version)
    now = timezone.now()
    pipeline = Pipeline(ScriptedEngine(), "w1")
    pipeline.claim(now=now - timedelta(minutes=5))
    Classification.objects.filter(pk=live.pk).update(lease_expires_at=now + timedelta(minutes=5))

    assert sweep_stale(now=now) == 1

    stale.refresh_from_db()
    live.refresh_from_db()
    assert (stale.status, stale.worker, stale.lease_expires_at, stale.attempts) == ("queued", "", None, 1)
    assert (live.status, live.worker) == ("running", "w1")
    event = AuditEvent.objects.get(action="classification.requeued")
    assert event.object_id == str(stale.pk) and event.actor_name == "system:sweeper"
    assert event.before == {"status": "running", "worker": "w1"}
    assert sweep_stale(now=now) == 0


def test_the_sweeper_fails_work_that_lost_its_worker_on_every_attempt(settings):
    settings.SAFEGUARD_ATTEMPTS = 1
    classification = _classification("crashes the worker")
    Pipeline(ScriptedEngine(), "w1").claim(now=timezone.now() - timedelta(hours=1))

    assert sweep_stale() == 1

    classification.refresh_from_db()
    assert (classification.status, classification.needs_review) == ("failed", True)
    assert "stopped answering 1 times" in classification.error
    assert _actions(classification) == ["classification.started", "classification.failed"]


def test_the_sweep_command_sweeps_once_and_says_how_many(settings, capsys):
    classification = _classification("hello")
    long_ago = timezone.now() - timedelta(seconds=settings.SAFEGUARD_LEASE_S + 5)
    Pipeline(ScriptedEngine(), "w1").claim(now=long_ago)

    call_command("sweep_classifications")

    assert "Swept 1 classification with an expired lease" in capsys.readouterr().out
    classification.refresh_from_db()
    assert classification.status == "queued"


async def _receive(layer, channel):
    return await asyncio.wait_for(layer.receive(channel), timeout=5)


def test_it_tells_the_queue_pages_once_per_stored_batch(django_capture_on_commit_callbacks):
    version = make_policy()
    ids = [_classification(f"message {n}", version).pk for n in range(3)]
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("queue", channel)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run_once(ScriptedEngine(), "w1")
        message = async_to_sync(_receive)(layer, channel)
    finally:
        async_to_sync(layer.group_discard)("queue", channel)

    assert message == {"type": "verdicts.stored", "ids": ids}


@pytest.mark.parametrize(
    ("violation", "confidence", "expected"),
    [(True, 0.9, True), (None, None, True), (False, 0.2, True), (False, 0.9, False), (False, None, False)],
)
def test_a_verdict_needs_a_human_when_it_is_a_violation_missing_or_unsure(violation, confidence, expected):
    assert needs_human(Verdict(status="done", violation=violation, confidence=confidence)) is expected


@pytest.mark.django_db(transaction=True)
def test_the_worker_loop_fills_batches_and_drains_the_queue(settings):
    settings.SAFEGUARD_BATCH_SIZE = 4
    version = make_policy()
    for n in range(10):
        _classification(f"message {n}", version)
    engine = Recording()

    Worker(engine, "loop", batch_wait_s=0).serve(burst=True)

    assert engine.batches == [4, 4, 2]
    assert set(Classification.objects.values_list("status", "worker")) == {("done", "loop")}
    assert AuditEvent.objects.filter(action="classification.done").count() == 10


def test_it_stores_how_each_answer_was_read_and_sends_conflicts_to_people():
    version = make_policy(label_scheme="valid_invalid", labels=["VALID", "INVALID"], output_format="label",
                          text="Flag spam. Answer (VALID or INVALID): INVALID for spam, VALID otherwise.")
    echoed = _classification("#echo #verdict=1", version)
    conflict = _classification("#conflict", version)
    disagree = _classification("#disagree", version)
    clean = _classification("see you at lunch", version)

    assert run_once(ScriptedEngine(), "w1") == 4

    for c in (echoed, conflict, disagree, clean):
        c.refresh_from_db()
    assert (echoed.status, echoed.violation, echoed.parse_quality) == ("done", True, "recovered")
    assert "echoed label alternatives removed" in echoed.parse_notes
    assert (clean.status, clean.violation, clean.parse_quality, clean.parse_notes) == ("done", False, "clean", [])
    for c in (conflict, disagree):
        assert (c.status, c.violation, c.label, c.parse_quality) == ("conflicting", None, "", "conflicting")
        assert c.needs_review and c.queue == "no_verdict"
    assert conflict.error.startswith("conflicting labels")
    assert disagree.error.startswith("reasoning and answer disagree")
    audited = AuditEvent.objects.get(object_id=str(conflict.pk), action="classification.conflicting")
    assert audited.after["parse_quality"] == "conflicting"
