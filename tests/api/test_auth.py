from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from api import clients, errors
from api.auth import hash_token
from api.models import ApiClient
from audit.models import AuditEvent
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


# --- expiry and new tokens -------------------------------------------------------------------------


def _expire(client: ApiClient, at: datetime | None) -> None:
    ApiClient.objects.filter(pk=client.pk).update(expires_at=at)


def test_it_refuses_an_expired_token_with_401_saying_when_it_expired(api, acme, spam):
    expired_at = timezone.now() - timedelta(hours=1)
    _expire(acme[0], expired_at)
    for response in (api.post(ITEMS, {"content": "hi"}), api.get("/api/v1/policies"),
                     api.post("/v1/moderations", {"input": "hi"})):
        assert response.status_code == 401
        error = response.json()["error"]
        assert (error["code"], error["type"]) == ("token_expired", "authentication_error")
        assert "expired" in error["message"]
        assert expired_at.isoformat().replace("+00:00", "Z") in error["message"]
        assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert Item.objects.count() == 0
    assert ApiClient.objects.get(pk=acme[0].pk).last_used_at is None


def test_a_token_works_until_it_expires(api, acme, spam):
    _expire(acme[0], timezone.now() + timedelta(minutes=5))
    assert api.post(ITEMS, {"content": "hi"}).status_code == 201


def test_a_token_without_an_expiry_never_expires(api, acme, spam):
    _expire(acme[0], None)
    assert api.post(ITEMS, {"content": "hi"}).status_code == 201


def test_a_new_token_expires_after_the_default_lifetime(admin_user, spam, settings):
    settings.API_TOKEN_DEFAULT_DAYS = 30
    client, _ = clients.create_client(actor=admin_user, name="Thirty")
    assert abs(client.expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=2)
    settings.API_TOKEN_DEFAULT_DAYS = 0
    forever, _ = clients.create_client(actor=admin_user, name="Forever")
    assert forever.expires_at is None
    chosen, _ = clients.create_client(actor=admin_user, name="Chosen", expires_at=None)
    assert chosen.expires_at is None


def test_a_new_token_revives_an_expired_client_and_the_old_one_stops_at_once(api, acme, admin_user, spam,
                                                                              settings):
    settings.API_TOKEN_DEFAULT_DAYS = 7
    client, old_token = acme
    _expire(client, timezone.now() - timedelta(days=1))
    client, new_token = clients.rotate_token(actor=admin_user, client=client)
    assert new_token != old_token
    assert client.token_hash == hash_token(new_token) and client.token_prefix == new_token[:11]
    assert client.expires_at - timezone.now() > timedelta(days=6)
    assert api.post(ITEMS, {"content": "hi"}).json()["error"]["code"] == "invalid_token"
    response = JsonCaller(new_token).post(ITEMS, {"content": "hi"})
    assert response.status_code == 201
    assert Item.objects.get().source == "acme"  # the same client, the same source
    event = AuditEvent.objects.get(action="api_client.token_rotated")
    assert (event.actor, event.before["token_prefix"], event.after["token_prefix"]) == (
        admin_user, old_token[:11], new_token[:11])
    assert new_token not in str(event.after) and old_token not in str(event.before)


def test_a_revoked_client_gets_no_new_token(acme, admin_user):
    clients.revoke_client(actor=admin_user, client=acme[0])
    with pytest.raises(errors.ClientError):
        clients.rotate_token(actor=admin_user, client=acme[0])
    assert AuditEvent.objects.filter(action="api_client.token_rotated").count() == 0


def test_an_expiry_in_the_past_is_refused_when_set(admin_user, acme, spam):
    past = timezone.now() - timedelta(days=1)
    with pytest.raises(errors.ClientError) as refused:
        clients.create_client(actor=admin_user, name="Late", expires_at=past)
    assert refused.value.field == "expires_at"
    with pytest.raises(errors.ClientError):
        clients.update_client(actor=admin_user, client=acme[0], expires_at=past, default_policies=[spam.policy],
                               webhook_url="", rate_limit_per_minute=None)


def test_an_expired_client_can_still_be_edited_without_touching_its_expiry(admin_user, acme, spam):
    past = (timezone.now() - timedelta(days=1)).replace(second=0, microsecond=0)
    _expire(acme[0], past)
    client = clients.update_client(actor=admin_user, client=acme[0], expires_at=past, default_policies=[spam.policy],
                                   webhook_url="", rate_limit_per_minute=7)
    assert (client.expires_at, client.rate_limit_per_minute) == (past, 7)
