"""POST /api/v1/erasures: a client erases the text of its own items, by id or by external id; a repeat
is answered with the first erasure; anything else is refused with the field named, erasing nothing."""

from __future__ import annotations

import pytest

from api import clients
from audit import chain
from console.models import Item
from privacy.models import Erasure
from privacy.redaction import marker
from tests.api.helpers import JsonCaller

pytestmark = pytest.mark.django_db

URL = "/api/v1/erasures"


@pytest.fixture
def submitted(api, spam) -> int:
    return api.post("/api/v1/items", {"external_id": "post-1", "content": "my phone is 555-0199",
                                      "metadata": {"author": "kim"}}).json()["id"]


def test_an_item_is_erased_by_its_id_and_a_repeat_answers_the_same_erasure(api, submitted):
    first = api.post(URL, {"item_id": submitted})
    again = api.post(URL, {"item_id": submitted})

    assert first.status_code == 201 and again.status_code == 200
    body = first.json()
    assert body == again.json()
    assert (body["object"], body["item_id"], body["external_id"]) == ("erasure", submitted, "post-1")
    assert body["requested_via"] == "api:Acme" and body["redacted"]["console.item.content"] == 1
    item = Item.objects.get(pk=submitted)
    assert (item.content, item.metadata) == (marker(), {"author": marker()})
    assert Erasure.objects.count() == 1
    assert chain.verify().ok


def test_an_item_is_erased_by_its_external_id(api, submitted):
    response = api.post(URL, {"external_id": "post-1"})

    assert response.status_code == 201 and response.json()["item_id"] == submitted
    assert Item.objects.get(pk=submitted).content == marker()


def test_another_clients_item_is_not_found_and_stays(api, admin_user, spam, submitted):
    _, token = clients.create_client(actor=admin_user, name="Other", default_policies=[spam.policy])
    other = JsonCaller(token)

    by_id = other.post(URL, {"item_id": submitted})
    by_external_id = other.post(URL, {"external_id": "post-1"})

    assert by_id.status_code == by_external_id.status_code == 404
    assert by_id.json()["error"]["code"] == "item_not_found"
    assert Item.objects.get(pk=submitted).content == "my phone is 555-0199"
    assert not Erasure.objects.exists()


@pytest.mark.parametrize(("body", "param"), [
    ({}, "item_id"),
    ({"item_id": "7"}, "item_id"),
    ({"item_id": True}, "item_id"),
    ({"item_id": 0}, "item_id"),
    ({"external_id": ""}, "external_id"),
    ({"external_id": 5}, "external_id"),
    ({"external_id": "x" * 201}, "external_id"),
    ({"item_id": 1, "external_id": "post-1"}, "external_id"),
    ({"item_id": 1, "reason": "gdpr"}, "reason"),
])
def test_a_bad_body_is_refused_naming_the_field(api, submitted, body, param):
    response = api.post(URL, body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert Item.objects.get(pk=submitted).content == "my phone is 555-0199"
    assert not Erasure.objects.exists()


def test_an_external_id_that_cannot_be_stored_is_refused_naming_it(api, submitted):
    response = api.post(URL, None, raw=b'{"external_id": "post\\u0000-1"}')
    error = response.json()["error"]
    assert (response.status_code, error["param"], error["code"]) == (400, "external_id", "invalid_character")
    assert not Erasure.objects.exists()


def test_a_body_that_is_not_an_object_is_refused(api, submitted):
    response = api.post(URL, ["post-1"])
    assert response.status_code == 400 and response.json()["error"]["code"] == "wrong_type"
