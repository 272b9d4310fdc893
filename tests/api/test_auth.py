from __future__ import annotations

from django.test import Client

from api import clients
from api.auth import hash_token
from api.models import ApiClient
from console.models import Item
from tests.api.helpers import JsonCaller

ITEMS = "/api/v1/items"


def test_it_refuses_a_request_without_a_token_with_401_json(api):
    response = api.post(ITEMS, {"content": "hi"}, token="")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_token"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_a_wrong_token(api):
    response = api.post(ITEMS, {"content": "hi"}, token="mc_not-a-real-token")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert Item.objects.count() == 0


def test_it_refuses_a_non_bearer_scheme(api):
    response = api.client.post(ITEMS, data="{}", content_type="application/json",
                               headers={"Authorization": f"Basic {api.token}"})
    assert response.status_code == 401


def test_it_refuses_a_revoked_token(api, acme, admin_user):
    clients.revoke_client(actor=admin_user, client=acme[0])
    response = api.post(ITEMS, {"content": "hi"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


def test_it_stores_only_a_hash_of_the_token(acme):
    client, token = acme
    stored = ApiClient.objects.get(pk=client.pk)
    assert stored.token_hash == hash_token(token)
    assert token not in {stored.token_hash, stored.token_prefix, stored.webhook_secret}
    assert token.startswith(stored.token_prefix)


def test_it_records_when_a_token_was_last_used(api, acme):
    assert acme[0].last_used_at is None
    api.get("/api/v1/policies")
    assert ApiClient.objects.get(pk=acme[0].pk).last_used_at is not None


def test_it_needs_no_session_or_csrf_token(api, spam):
    # A client that enforces CSRF like a browser does not matter: tokens replace cookies here.
    api.client = Client(enforce_csrf_checks=True)
    response = api.post(ITEMS, {"content": "hi"})
    assert response.status_code == 201


def test_it_limits_requests_per_token_per_minute_with_429(api, acme, admin_user, spam):
    clients.update_client(actor=admin_user, client=acme[0], default_policies=[spam.policy],
                           webhook_url="", rate_limit_per_minute=3)
    answers = [api.get("/api/v1/policies") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0]["X-RateLimit-Limit"] == "3"
    assert answers[2]["X-RateLimit-Remaining"] == "0"
    refused = answers[3]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Another token has its own budget.
    _, token = clients.create_client(actor=admin_user, name="Beta", default_policies=[spam.policy])
    assert JsonCaller(token).get("/api/v1/policies").status_code == 200


def test_a_rate_limited_request_changes_nothing(api, acme, admin_user, spam):
    clients.update_client(actor=admin_user, client=acme[0], default_policies=[spam.policy],
                           webhook_url="", rate_limit_per_minute=1)
    api.post(ITEMS, {"external_id": "a", "content": "hi"})
    response = api.post(ITEMS, {"external_id": "b", "content": "hi"})
    assert response.status_code == 429
    assert list(Item.objects.values_list("external_id", flat=True)) == ["a"]
