"""A client classifies only under its allowed policies: naming any other (on submit, in a batch, as
/v1/moderations' model, or through the configured moderation policies) is a JSON 403 naming it, and
nothing is stored. An empty allowed set allows no policy."""

from __future__ import annotations

import pytest

from api import clients, errors
from api.models import Route
from audit.models import AuditEvent
from console.models import Item
from tests.api.helpers import JsonCaller, allow
from tests.factories import make_policy

ITEMS = "/api/v1/items"
BATCH = "/api/v1/items/batch"
MODERATIONS = "/v1/moderations"


@pytest.fixture(autouse=True)
def _moderations_answer_at_once(settings):
    settings.API_MODERATION_WAIT_S = 0


def _stored() -> tuple[int, int, int]:
    return Item.objects.count(), Route.objects.count(), AuditEvent.objects.filter(action="item.created").count()


def _refusal(response, policy: str, param: str | None) -> None:
    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["code"], error["type"], error["param"]) == ("policy_not_allowed", "permission_error", param)
    assert repr(policy) in error["message"]


def test_submitting_under_a_policy_the_client_may_not_use_is_a_403_naming_it_and_stores_nothing(api, spam,
                                                                                                  other_policy):
    response = api.post(ITEMS, {"content": "hi", "policies": ["spam", "Harassment"]})
    _refusal(response, "harassment", "policies[1]")
    assert _stored() == (0, 0, 0)


def test_a_batch_naming_a_policy_the_client_may_not_use_stores_nothing(api, spam, other_policy):
    items = [{"content": "fine"}, {"content": "fine", "policies": ["harassment"]}]
    _refusal(api.post(BATCH, {"items": items}), "harassment", "items[1].policies[0]")
    _refusal(api.post(BATCH, {"items": [{"content": "a"}], "policies": ["harassment"]}), "harassment",
             "policies[0]")
    assert _stored() == (0, 0, 0)


def test_a_policy_once_allowed_can_be_used(api, acme, spam, other_policy):
    allow(acme[0], other_policy.policy)
    response = api.post(ITEMS, {"content": "hi", "policies": ["harassment"]})
    assert response.status_code == 201
    assert [p["policy"] for p in response.json()["policies"]] == ["harassment"]


def test_an_unpublished_policy_the_client_may_not_use_is_a_403_not_a_409(api, spam):
    make_policy(name="Drafty", publish=False)
    _refusal(api.post(ITEMS, {"content": "hi", "policies": ["drafty"]}), "drafty", "policies[0]")


def test_a_policy_that_does_not_exist_is_still_a_404(api, spam):
    assert api.post(ITEMS, {"content": "hi", "policies": ["ghost"]}).json()["error"]["code"] == "unknown_policy"


def test_a_client_with_no_allowed_policies_may_classify_under_none(admin_user, spam):
    client, token = clients.create_client(actor=admin_user, name="Empty", allowed_policies=[])
    assert list(client.allowed_policies.all()) == []
    caller = JsonCaller(token)
    _refusal(caller.post(ITEMS, {"content": "hi", "policies": ["spam"]}), "spam", "policies[0]")
    _refusal(caller.post(MODERATIONS, {"input": "hi", "model": "spam"}), "spam", "model")
    assert caller.post(ITEMS, {"content": "hi"}).json()["error"]["code"] == "no_policies"
    assert caller.get("/api/v1/policies").json()["data"] == []
    assert _stored() == (0, 0, 0)


def test_a_client_made_without_naming_allowed_policies_is_allowed_its_defaults(admin_user, spam, other_policy):
    client, _ = clients.create_client(actor=admin_user, name="Defaults", default_policies=[spam.policy])
    assert list(client.allowed_policies.all()) == [spam.policy]


def test_default_policies_must_be_allowed(admin_user, acme, spam, other_policy):
    with pytest.raises(errors.ClientError) as refused:
        clients.create_client(actor=admin_user, name="Odd", allowed_policies=[other_policy.policy],
                              default_policies=[spam.policy])
    assert refused.value.field == "default_policies"
    with pytest.raises(errors.ClientError):
        clients.update_client(actor=admin_user, client=acme[0], allowed_policies=[other_policy.policy],
                              default_policies=[spam.policy], webhook_url="", rate_limit_per_minute=None)
    assert list(acme[0].allowed_policies.all()) == [spam.policy]


def test_moderations_classify_under_the_policy_named_as_the_model(api, acme, spam, other_policy):
    allow(acme[0], other_policy.policy)
    response = api.post(MODERATIONS, {"input": ["hello"], "model": "harassment"})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "harassment"
    assert set(body["results"][0]["categories"]) == {"harassment"}


def test_moderations_naming_a_policy_the_client_may_not_use_are_a_403_and_store_nothing(api, spam, other_policy):
    _refusal(api.post(MODERATIONS, {"input": ["hello", "there"], "model": "Harassment"}), "harassment", "model")
    assert _stored() == (0, 0, 0)


def test_moderations_with_a_model_that_names_no_policy_use_the_clients_defaults(api, spam, other_policy):
    response = api.post(MODERATIONS, {"input": "hello", "model": "omni-moderation-latest"})
    assert response.status_code == 200
    assert response.json()["model"] == "omni-moderation-latest"
    assert set(response.json()["results"][0]["categories"]) == {"spam"}


def test_configured_moderation_policies_the_client_may_not_use_are_a_403(api, spam, other_policy, settings):
    settings.API_MODERATION_POLICIES = ["harassment"]
    _refusal(api.post(MODERATIONS, {"input": "hello"}), "harassment", "policies[0]")
    assert _stored() == (0, 0, 0)
    settings.API_MODERATION_POLICIES = ["nowhere"]  # the operator's mistake stays a 503
    assert api.post(MODERATIONS, {"input": "hello"}).status_code == 503


def test_an_allowed_policy_removed_later_is_refused_from_then_on(api, acme, admin_user, spam, other_policy):
    allow(acme[0], other_policy.policy)
    assert api.post(ITEMS, {"content": "hi", "policies": ["harassment"]}).status_code == 201
    clients.update_client(actor=admin_user, client=acme[0], allowed_policies=[spam.policy],
                          default_policies=[spam.policy], webhook_url="", rate_limit_per_minute=None)
    _refusal(api.post(ITEMS, {"content": "again", "policies": ["harassment"]}), "harassment", "policies[0]")
    # Reading what it submitted earlier still works: reads are limited to the client's own items.
    assert api.get(f"{ITEMS}/{Item.objects.get().pk}").status_code == 200
