from __future__ import annotations

import pytest

from api import clients, deliveries
from api.models import WebhookDelivery
from console import decisions
from enforcement.models import Statement
from tests.api.helpers import JsonCaller
from tests.console.reviewing import make_verdict
from tests.enforcement.helpers import approve, override
from tests.factories import make_policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(db):
    return make_policy(name="Shop spam")


@pytest.fixture
def platform(admin_user, version, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # the tests' receiver address
    client, token = clients.create_client(actor=admin_user, name="Platform A", source="platform-a",
                                          default_policies=[version.policy], webhook_url="http://127.0.0.1:9/hook")
    return client, token


def test_the_statements_endpoint_shows_the_action_and_its_statement(platform, version, moderator,
                                                                    django_capture_on_commit_callbacks):
    verdict = make_verdict(version, source="platform-a")
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    response = JsonCaller(platform[1]).get(f"/api/v1/items/{verdict.item_id}/statements")
    assert response.status_code == 200
    [entry] = response.json()["data"]
    assert (entry["policy"], entry["type"]) == (version.policy.slug, "remove")
    statement = entry["statement"]
    assert statement["puid"] == str(Statement.objects.get().puid)
    assert statement["restriction"] == {"type": "remove", "scope": "content", "duration_days": None,
                                        "end_date": None}
    assert statement["ground"]["policy_name"] == "Shop spam"
    assert statement["ground"]["rule_ids"] == ["SP2.a"]
    assert statement["automated_decision"] == "partially"
    assert statement["transparency_database"]["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_REMOVED"]
    text = response.content.decode()
    assert f'"{moderator.username}"' not in text and "reviewer" not in text


def test_the_statements_endpoint_needs_the_read_scope_and_the_clients_own_item(admin_user, platform, version,
                                                                              moderator,
                                                                              django_capture_on_commit_callbacks):
    verdict = make_verdict(version, source="platform-a")
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    _, submit_only = clients.create_client(actor=admin_user, name="Submitter", source="platform-a-2",
                                           scopes=["submit"], default_policies=[version.policy])
    refused = JsonCaller(submit_only).get(f"/api/v1/items/{verdict.item_id}/statements")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    _, other = clients.create_client(actor=admin_user, name="Other", source="platform-b",
                                     default_policies=[version.policy])
    assert JsonCaller(other).get(f"/api/v1/items/{verdict.item_id}/statements").status_code == 404
    assert JsonCaller("").get(f"/api/v1/items/{verdict.item_id}/statements").status_code == 401


def test_the_schema_describes_the_statements_endpoint(client):
    schema = client.get("/api/v1/schema.json").json()
    operation = schema["paths"]["/api/v1/items/{id}/statements"]["get"]
    assert operation["security"] == [{"bearer": ["read"]}]
    assert "Statement" in schema["components"]["schemas"]


def test_the_decision_webhook_carries_the_action_and_the_statement(platform, version, moderator,
                                                                   django_capture_on_commit_callbacks):
    verdict = make_verdict(version, violation=False, source="platform-a")
    override(django_capture_on_commit_callbacks, moderator, verdict, label="1")  # item_decided: queues a delivery
    delivery = WebhookDelivery.objects.get(item_id=verdict.item_id)
    [policy] = delivery.payload["item"]["policies"]
    assert policy["action"]["type"] == "remove"
    assert policy["statement"]["puid"] == str(Statement.objects.get().puid)
    assert policy["statement"]["automated_decision"] == "not_automated"
    assert policy["statement"]["transparency_database"]["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"


def test_a_webhook_built_before_the_enforcement_receiver_ran_still_carries_the_action(
        platform, version, moderator, django_capture_on_commit_callbacks):
    verdict = make_verdict(version, source="platform-a")
    with django_capture_on_commit_callbacks(execute=False):  # no receivers run: as if api's ran first
        decisions.approve(user=moderator, classification_id=verdict.pk, seen_review=0)
    delivery = deliveries.queue_decision_delivery(item_id=verdict.item_id)
    assert delivery.payload["item"]["policies"][0]["action"]["type"] == "remove"
    assert delivery.payload["item"]["policies"][0]["statement"] is not None
