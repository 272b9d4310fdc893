"""Webhook metrics: attempts counted by outcome and failure reason where they are made, and the
deliveries per status read from the database by the web app's /metrics."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from api import clients, deliveries
from api.models import ApiClient, WebhookDelivery
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.api.helpers import Receiver

ITEMS = "/api/v1/items"
ATTEMPTS = "console_webhook_delivery_attempts_total"
FAILURES = "console_webhook_delivery_failures_total"


@pytest.fixture
def hook():
    receiver = Receiver([500, 200])
    yield receiver
    receiver.close()


def _counts() -> dict[tuple[str, str], float]:
    labels = [(ATTEMPTS, "outcome", o) for o in ("delivered", "retrying", "failed")]
    labels += [(FAILURES, "reason", r) for r in ("http_status", "network", "refused", "client_gone")]
    return {(name, value): REGISTRY.get_sample_value(name, {label: value}) for name, label, value in labels}


def _decided_item(api) -> WebhookDelivery:
    item_id = api.post(ITEMS, {"content": "see you at lunch"}).json()["id"]
    assert run_once(ScriptedEngine()) == 1
    return deliveries.queue_decision_delivery(item_id=item_id)


def _attempt(delivery: WebhookDelivery) -> str:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    return deliveries.attempt_delivery(delivery_id=delivery.pk).status


def test_attempts_are_counted_by_outcome_and_failures_by_reason(api, acme, hook, settings, admin_user):
    ApiClient.objects.filter(pk=acme[0].pk).update(webhook_url=hook.url)
    before = _counts()

    retried_then_delivered = _decided_item(api)
    assert [_attempt(retried_then_delivered), _attempt(retried_then_delivered)] == ["retrying", "delivered"]
    settings.WEBHOOK_ALLOWED_HOSTS = []  # 127.0.0.1 is now refused before sending
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    refused = _decided_item(api)
    assert _attempt(refused) == "failed"
    revoked = _decided_item(api)
    clients.revoke_client(actor=admin_user, client=acme[0])
    assert _attempt(revoked) == "failed"

    after = _counts()
    added = {key: after[key] - before[key] for key in after}
    assert added == {
        (ATTEMPTS, "delivered"): 1, (ATTEMPTS, "retrying"): 1, (ATTEMPTS, "failed"): 2,
        (FAILURES, "http_status"): 1, (FAILURES, "network"): 0, (FAILURES, "refused"): 1,
        (FAILURES, "client_gone"): 1,
    }
    assert len(hook.requests) == 2


def test_the_web_metrics_show_deliveries_per_status_whoever_delivered(api, acme, hook):
    ApiClient.objects.filter(pk=acme[0].pk).update(webhook_url=hook.url)
    retrying = _decided_item(api)
    assert _attempt(retrying) == "retrying"
    _decided_item(api)  # pending

    response = Client().get("/metrics")

    assert response.status_code == 200
    [family] = [f for f in text_string_to_metric_families(response.content.decode())
                if f.name == "console_webhook_deliveries"]
    assert {s.labels["status"]: s.value for s in family.samples} == {
        "pending": 1, "retrying": 1, "delivered": 0, "failed": 0}
