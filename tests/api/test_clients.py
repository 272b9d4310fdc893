"""API clients: created with a token shown once, changed and revoked, every step audited."""

from __future__ import annotations

import pytest

from api import clients, errors
from api.auth import hash_token
from api.models import ApiClient
from audit.models import AuditEvent


def test_creating_a_client_returns_its_token_once_and_audits_without_it(admin_user, spam):
    client, token = clients.create_client(actor=admin_user, name="Big Forum", default_policies=[spam.policy],
                                           rate_limit_per_minute=100)
    assert client.source == "big-forum"
    assert client.token_hash == hash_token(token)
    assert client.webhook_secret.startswith("whsec_")
    event = AuditEvent.objects.get(action="api_client.created")
    assert event.actor == admin_user
    assert event.after["default_policies"] == ["spam"]
    assert token not in str(event.after) and client.webhook_secret not in str(event.after)


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"name": " "}, "name"), ({"name": "acme"}, "name"), ({"name": "Other", "source": "acme"}, "source"),
     ({"name": "Other", "source": "!!!"}, "source"), ({"name": "Other", "webhook_url": "ftp://x"}, "webhook_url"),
     ({"name": "Other", "rate_limit_per_minute": 0}, "rate_limit_per_minute")],
)
def test_client_creation_refuses_bad_fields_and_changes_nothing(acme, admin_user, fields, field):
    before = ApiClient.objects.count(), AuditEvent.objects.count()
    with pytest.raises(errors.ClientError) as refused:
        clients.create_client(actor=admin_user, **fields)
    assert refused.value.field == field
    assert (ApiClient.objects.count(), AuditEvent.objects.count()) == before


def test_changing_and_revoking_a_client_are_audited(acme, admin_user, other_policy):
    client, _ = acme
    clients.update_client(actor=admin_user, client=client, allowed_policies=[other_policy.policy],
                           default_policies=[other_policy.policy], webhook_url="https://example.org/hook",
                           rate_limit_per_minute=5)
    changed = AuditEvent.objects.get(action="api_client.changed")
    assert changed.before["default_policies"] == changed.before["allowed_policies"] == ["spam"]
    assert changed.after["default_policies"] == changed.after["allowed_policies"] == ["harassment"]
    clients.revoke_client(actor=admin_user, client=client)
    clients.revoke_client(actor=admin_user, client=client)  # a second revoke changes nothing
    assert AuditEvent.objects.filter(action="api_client.revoked").count() == 1
    assert ApiClient.objects.active().count() == 0
