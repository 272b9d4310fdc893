from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from api import clients, deliveries, jobs, redis_client, routing, webhooks
from api.errors import ClientError
from api.models import ApiClient, DeliveryStatus, WebhookDelivery
from audit.models import AuditEvent
from console.models import Classification, Review
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.api.helpers import Receiver, run_jobs

ITEMS = "/api/v1/items"


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(statuses: list[int]) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _point_webhook_at(client: ApiClient, url: str) -> None:
    ApiClient.objects.filter(pk=client.pk).update(webhook_url=url)


def _their_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    """What a platform computes, independently of our code."""
    message = headers["x-webhook-timestamp"].encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# --- signing -----------------------------------------------------------------------------------------


def test_a_signature_verifies_only_for_the_same_secret_body_and_a_recent_time():
    body = b'{"event":"item.decided"}'
    now = int(time.time())
    signature = webhooks.sign("whsec_a", now, body)
    assert signature.startswith("sha256=")
    assert webhooks.verify("whsec_a", now, body, signature)
    assert not webhooks.verify("whsec_b", now, body, signature)
    assert not webhooks.verify("whsec_a", now, body + b" ", signature)
    assert not webhooks.verify("whsec_a", now - 3600, body, webhooks.sign("whsec_a", now - 3600, body))
    assert not webhooks.verify("whsec_a", "not a time", body, signature)


# --- deciding what to tell ----------------------------------------------------------------------------


def test_nothing_is_told_while_the_reasoner_works(api, acme):
    item_id = api.post(ITEMS, {"external_id": "w-1", "content": "hello"}).json()["id"]
    assert deliveries.queue_decision_delivery(item_id=item_id) is None
    assert not WebhookDelivery.objects.exists()


def test_a_decision_is_queued_once_and_a_changed_decision_again(api, acme, moderator,
                                                                django_capture_on_commit_callbacks):
    item_id = api.post(ITEMS, {"external_id": "w-2", "content": "hello"}).json()["id"]
    assert run_once(ScriptedEngine()) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        first = deliveries.queue_decision_delivery(item_id=item_id)
    assert len(callbacks) == 1  # the delivery job, enqueued on commit
    assert first.payload["item"]["decision"]["flagged"] is False
    assert first.payload["item"]["policies"][0]["decided_by"] == "reasoner"
    assert first.payload["id"] == f"whd_{first.pk}"
    assert deliveries.queue_decision_delivery(item_id=item_id) is None  # same outcome: told once
    classification = Classification.objects.get(item_id=item_id, stage="reasoner")
    Review.objects.create(classification=classification, decision="override", label="1", reason="it is spam",
                          reviewer=moderator)
    second = deliveries.queue_decision_delivery(item_id=item_id)
    assert second.payload["item"]["decision"] == {
        "flagged": True, "flagged_policies": ["spam"], "decided_at": second.payload["item"]["decision"]["decided_at"]}
    assert second.payload["item"]["policies"][0]["decided_by"] == "moderator"
    assert AuditEvent.objects.filter(action="webhook.queued").count() == 2


def test_clients_without_a_webhook_url_get_nothing(api, acme):
    ApiClient.objects.filter(pk=acme[0].pk).update(webhook_url="")
    item_id = api.post(ITEMS, {"content": "hello"}).json()["id"]
    run_once(ScriptedEngine())
    deliveries.on_item_decided(sender=None, item_ids=[item_id])
    assert not WebhookDelivery.objects.exists()


# --- delivering ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_verdict_reaches_the_platform_signed_after_retries_with_backoff(api, acme, receiver, settings):
    settings.WEBHOOK_BACKOFF_S = 1.0
    hook = receiver([500, 503, 200])
    _point_webhook_at(acme[0], hook.url)
    item_id = api.post(ITEMS, {"external_id": "w-3", "content": "see you at lunch"}).json()["id"]
    assert run_once(ScriptedEngine()) == 1
    # What the reasoner worker calls once its batch of verdicts has committed.
    deliveries.check_decisions_later(Classification.objects.filter(item_id=item_id).values_list("id", flat=True))

    started = time.monotonic()
    run_jobs(lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).exists(), timeout=30)
    elapsed = time.monotonic() - started

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 3, 200)
    assert delivery.next_attempt_at is None and delivery.delivered_at is not None
    assert len(hook.requests) == 3
    gaps = [later - earlier for earlier, later in zip(hook.times, hook.times[1:], strict=False)]
    assert gaps[0] >= 1.0 and gaps[1] >= 2.0  # the backoff: 1 s, then twice that
    assert elapsed >= 3.0
    secret = ApiClient.objects.get(pk=acme[0].pk).webhook_secret
    for headers, body in hook.requests:
        assert headers["x-webhook-signature"] == _their_signature(secret, headers, body)
        assert webhooks.verify(secret, headers["x-webhook-timestamp"], body, headers["x-webhook-signature"])
        assert headers["x-webhook-id"] == f"whd_{delivery.pk}"
        assert headers["content-type"] == "application/json"
    payload = json.loads(hook.requests[-1][1])
    assert payload["event"] == "item.decided"
    assert payload["item"]["id"] == item_id
    assert payload["item"]["external_id"] == "w-3"
    assert payload["item"]["decision"]["flagged"] is False
    actions = list(AuditEvent.objects.filter(object_type="api.webhookdelivery").order_by("id")
                   .values_list("action", flat=True))
    assert actions == ["webhook.queued", "webhook.retrying", "webhook.retrying", "webhook.delivered"]


def test_a_delivery_gives_up_after_the_last_attempt(api, acme, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    hook = receiver([500])
    _point_webhook_at(acme[0], hook.url)
    item_id = api.post(ITEMS, {"content": "hello"}).json()["id"]
    run_once(ScriptedEngine())
    delivery = deliveries.queue_decision_delivery(item_id=item_id)
    for expected in ("retrying", "retrying", "failed"):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        assert deliveries.attempt_delivery(delivery_id=delivery.pk).status == expected
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.response_code, delivery.error) == (3, 500, "HTTP 500")
    assert delivery.response_excerpt == "receiver is down"
    assert deliveries.attempt_delivery(delivery_id=delivery.pk) is None  # failed: nothing more to do


def test_backoff_doubles_and_is_capped(settings):
    settings.WEBHOOK_BACKOFF_S = 10
    settings.WEBHOOK_BACKOFF_MAX_S = 60
    assert [deliveries.backoff_s(n) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


def test_a_failed_attempt_records_the_next_attempt_time(api, acme, settings):
    settings.WEBHOOK_BACKOFF_S = 30
    _point_webhook_at(acme[0], "http://127.0.0.1:9/nothing-listens-here")
    item_id = api.post(ITEMS, {"content": "hello"}).json()["id"]
    run_once(ScriptedEngine())
    delivery = deliveries.queue_decision_delivery(item_id=item_id)
    before = timezone.now()
    delivery = deliveries.attempt_delivery(delivery_id=delivery.pk)
    assert delivery.status == "retrying"
    assert delivery.response_code is None
    assert "ConnectError" in delivery.error
    assert before + timedelta(seconds=29) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=31)
    # A copy of the job arriving early (the sweeper's) does not jump the queue.
    assert deliveries.attempt_delivery(delivery_id=delivery.pk) is None


def test_a_revoked_client_gets_no_more_deliveries(api, acme, admin_user):
    item_id = api.post(ITEMS, {"content": "hello"}).json()["id"]
    run_once(ScriptedEngine())
    delivery = deliveries.queue_decision_delivery(item_id=item_id)
    clients.revoke_client(actor=admin_user, client=acme[0])
    delivery = deliveries.attempt_delivery(delivery_id=delivery.pk)
    assert (delivery.status, delivery.error) == ("failed", "the client was revoked")


def test_an_admin_can_send_a_delivery_again(api, acme, admin_user, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    hook = receiver([500, 200])
    _point_webhook_at(acme[0], hook.url)
    item_id = api.post(ITEMS, {"content": "hello"}).json()["id"]
    run_once(ScriptedEngine())
    delivery = deliveries.queue_decision_delivery(item_id=item_id)
    assert deliveries.attempt_delivery(delivery_id=delivery.pk).status == "failed"
    deliveries.redeliver(actor=admin_user, delivery=delivery)
    assert deliveries.attempt_delivery(delivery_id=delivery.pk).status == "delivered"
    assert AuditEvent.objects.filter(action="webhook.redeliver", actor=admin_user).exists()


def test_the_sweeper_requeues_deliveries_whose_job_was_lost(api, acme, django_capture_on_commit_callbacks):
    item_id = api.post(ITEMS, {"content": "hello"}).json()["id"]
    run_once(ScriptedEngine())
    delivery = deliveries.queue_decision_delivery(item_id=item_id)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):  # django_rq enqueues when the transaction commits
        assert jobs.sweep_webhooks() == 1
    assert redis_client.queue("webhooks").count == 1


def test_a_confirmed_quality_check_tells_nothing_new_but_an_overturned_one_does(api, acme, trained_spam, admin_user,
                                                                                  moderator):
    spam, _ = trained_spam
    routing.set_routing_rule(actor=admin_user, version=spam, safe_below=1.0, violation_above=1.0, sample_rate=1.0,
                              violations_to_humans=False)
    state = api.post(ITEMS, {"content": "Thanks for your purchase, the warranty is attached."}).json()
    assert (state["status"], state["policies"][0]["route"]) == ("decided", "qc_sample")
    sample = Classification.objects.get(item_id=state["id"], stage="fast")
    assert sample.needs_review is True
    Review.objects.create(classification=sample, decision="approve", reviewer=moderator)
    assert deliveries.queue_decision_delivery(item_id=state["id"]) is None  # the platform knew already
    Review.objects.create(classification=sample, decision="override", label="1", reason="hidden upsell",
                          reviewer=moderator)
    delivery = deliveries.queue_decision_delivery(item_id=state["id"])
    assert delivery.payload["item"]["decision"]["flagged"] is True


# --- where webhooks may go ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/admin/", "http://localhost/hook", "http://[::1]/hook",
                                 "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data/",
                                 "http://192.168.0.5:9000/"])
@pytest.mark.django_db
def test_a_webhook_url_that_reaches_internal_addresses_is_refused_naming_the_field(admin_user, settings, url):
    settings.WEBHOOK_ALLOWED_HOSTS = []

    with pytest.raises(ClientError) as refused:
        clients.create_client(actor=admin_user, name="Sneaky", webhook_url=url)

    assert refused.value.field == "webhook_url"
    assert "loopback, private or link-local" in str(refused.value)
    assert not ApiClient.objects.filter(name="Sneaky").exists()


def test_a_delivery_to_an_internal_address_is_not_sent(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    receiver = Receiver([200])
    try:
        result = webhooks.post(receiver.url, {"hello": 1}, secret="s", delivery_id="whd_1")
    finally:
        receiver.close()

    assert (result.ok, result.status_code) == (False, None)
    assert result.error.startswith("not sent: the host 127.0.0.1 resolves to 127.0.0.1")
    assert receiver.requests == []


def test_an_allowed_internal_host_is_reached(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver = Receiver([200])
    try:
        result = webhooks.post(receiver.url, {"hello": 1}, secret="s", delivery_id="whd_2")
    finally:
        receiver.close()

    assert result.ok and len(receiver.requests) == 1
