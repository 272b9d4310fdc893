"""api.0002: clients that existed before scopes, expiry and allowed policies keep working."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from api.auth import hash_token
from api.models import ApiClient, Scope
from tests.api.helpers import JsonCaller
from tests.factories import make_policy

BEFORE = [("api", "0001_initial")]


def _migrate(targets=None):
    """Migrate the api app to `targets` (default: its newest migration, where the other tests need it)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    targets = targets or executor.loader.graph.leaf_nodes("api")
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_clients_from_before_scopes_keep_every_scope_no_expiry_and_every_existing_policy():
    spam, other = make_policy(name="Spam"), make_policy(name="Harassment")
    token = "mc_from-before-the-migration"
    old_apps = _migrate(BEFORE)
    try:
        OldClient = old_apps.get_model("api", "ApiClient")
        old = OldClient.objects.create(name="Old", source="old", token_prefix=token[:11], token_hash=hash_token(token),
                                       webhook_secret="whsec_x")
        old.default_policies.set([spam.policy_id])
    finally:
        _migrate()
    later = make_policy(name="Created later")

    client = ApiClient.objects.get(name="Old")
    # Every scope there was then; later ones (erase, which destroys text; appeals) only when an admin grants them.
    assert client.scopes == [Scope.SUBMIT, Scope.READ, Scope.MODERATIONS]
    assert client.expires_at is None
    assert set(client.allowed_policies.all()) == {spam.policy, other.policy}
    caller = JsonCaller(token)
    created = caller.post("/api/v1/items", {"external_id": "x", "content": "hi", "policies": ["harassment"]})
    assert created.status_code == 201
    assert caller.get(f"/api/v1/items/{created.json()['id']}").status_code == 200
    assert caller.post("/api/v1/items", {"content": "hi"}).status_code == 201  # its default, spam
    # A policy created after the migration is allowed only where an admin allows it.
    refused = caller.post("/api/v1/items", {"content": "hi", "policies": [later.policy.slug]})
    assert refused.json()["error"]["code"] == "policy_not_allowed"
