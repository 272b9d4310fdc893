from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection

from api import clients, routing
from api.models import Route
from audit.models import AuditEvent
from console.models import Classification, Item
from policies_app import services as policy_services
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.api.helpers import JsonCaller, allow
from tests.factories import make_policy

ITEMS = "/api/v1/items"
BATCH = "/api/v1/items/batch"


def _counts() -> tuple[int, int, int, int]:
    return Item.objects.count(), Classification.objects.count(), Route.objects.count(), AuditEvent.objects.filter(
        action="item.created").count()


# --- the schema and the policy list ----------------------------------------------------------------


def test_it_serves_the_openapi_schema_without_a_token(db):
    response = JsonCaller("").get("/api/v1/schema.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.1")
    assert {"/api/v1/items", "/api/v1/items/batch", "/api/v1/items/{id}", "/v1/moderations"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "itemDecided" in schema["webhooks"]


def test_it_lists_the_clients_allowed_policies_and_marks_its_defaults(api, acme, spam, other_policy):
    make_policy(name="Not for Acme")
    allow(acme[0], other_policy.policy)
    response = api.get("/api/v1/policies")
    assert response.status_code == 200
    rows = {row["slug"]: row for row in response.json()["data"]}
    assert set(rows) == {"spam", "harassment"}
    assert rows["spam"]["default"] is True
    assert rows["harassment"]["default"] is False
    assert rows["spam"]["published_version"] == spam.number


# --- one item ----------------------------------------------------------------------------------------


def test_it_stores_one_item_and_queues_it_for_the_reasoner_on_a_cold_start(api, spam):
    response = api.post(ITEMS, {"external_id": "m-1", "content": "hello there", "metadata": {"user": 7}})
    assert response.status_code == 201
    state = response.json()
    assert state["created"] is True
    assert state["status"] == "pending"
    assert state["decision"] is None
    [policy] = state["policies"]
    assert (policy["policy"], policy["version"], policy["route"], policy["score"]) == ("spam", spam.number,
                                                                                       "reasoner", None)
    item = Item.objects.get(pk=state["id"])
    assert (item.source, item.external_id, item.metadata) == ("acme", "m-1", {"user": 7})
    assert Classification.objects.get(item=item).status == "queued"
    event = AuditEvent.objects.get(action="item.created", object_id=str(item.pk))
    assert event.actor_name == "api:acme"
    assert event.after["routes"] == {f"spam v{spam.number}": {"route": "reasoner", "score": None}}


def test_it_returns_the_stored_item_with_200_for_a_repeat_and_creates_nothing(api, spam):
    first = api.post(ITEMS, {"external_id": "m-1", "content": "hello there"})
    before = _counts()
    again = api.post(ITEMS, {"external_id": "m-1", "content": "something else entirely"})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["created"] is False
    assert _counts() == before


def test_it_stores_a_conversation(api, spam):
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    response = api.post(ITEMS, {"kind": "conversation", "external_id": "c-1", "turns": turns})
    assert response.status_code == 201
    assert Item.objects.get(pk=response.json()["id"]).turns == turns


def test_it_routes_under_the_policies_named_by_slug_or_name(api, acme, spam, other_policy):
    allow(acme[0], other_policy.policy)
    response = api.post(ITEMS, {"external_id": "m-2", "content": "hi", "policies": ["spam", "HARASSMENT"]})
    assert response.status_code == 201
    assert [p["policy"] for p in response.json()["policies"]] == ["harassment", "spam"]


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"content": "hi", "colour": "red"}, "colour", "unknown_field"),
        ({"content": 5}, "content", "wrong_type"),
        ({"content": "hi", "external_id": 12}, "external_id", "wrong_type"),
        ({"content": "hi", "metadata": [1]}, "metadata", "wrong_type"),
        ({"content": "hi", "policies": "spam"}, "policies", "wrong_type"),
        ({"content": "hi", "policies": [3]}, "policies[0]", "wrong_type"),
        ({"content": "hi", "policies": []}, "policies", "invalid_value"),
        ({"content": "hi", "kind": "poem"}, "kind", "invalid_value"),
        ({"content": "   "}, "content", "invalid_value"),
        ({"kind": "conversation", "turns": [{"role": "user"}]}, "turns[0]", "invalid_value"),
        ({"content": "hi", "source": "someone-else"}, "source", "wrong_source"),
        ({"content": "nul \x00 inside"}, "content", "invalid_character"),
        ({"content": "hi", "metadata": {"k": "\x00"}}, "metadata.k", "invalid_character"),
    ],
)
def test_it_refuses_bad_fields_with_400_naming_the_field(api, spam, body, param, code):
    before = _counts()
    response = api.post(ITEMS, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert param in error["message"]
    assert _counts() == before


def test_it_refuses_an_unknown_policy_with_404_naming_it(api, spam):
    response = api.post(ITEMS, {"content": "hi", "policies": ["spam", "nope"]})
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "policies[1]"
    assert "nope" in response.json()["error"]["message"]
    assert Item.objects.count() == 0


def test_it_refuses_a_policy_without_a_published_version_with_409(api, acme, spam):
    allow(acme[0], make_policy(name="Drafty", publish=False).policy)
    response = api.post(ITEMS, {"content": "hi", "policies": ["drafty"]})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "policy_not_published"


def test_it_refuses_invalid_json_with_400(api, spam):
    response = api.post(ITEMS, None, raw=b'{"content": "hi",')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"hello"', b'{"content": NaN}'])
def test_it_refuses_json_that_is_not_an_item_object(api, spam, raw):
    response = api.post(ITEMS, None, raw=raw)
    assert response.status_code == 400
    assert Item.objects.count() == 0


def test_it_refuses_other_content_types_with_415(api, spam):
    response = api.post(ITEMS, None, raw=b"content=hi", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_it_refuses_a_body_over_the_limit_with_413(api, spam, settings):
    settings.API_MAX_BODY_BYTES = 1000
    response = api.post(ITEMS, {"content": "x" * 2000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert Item.objects.count() == 0


def test_it_refuses_content_over_the_character_limit(api, spam, settings):
    settings.API_MAX_CONTENT_CHARS = 10
    response = api.post(ITEMS, {"content": "x" * 11})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "content"


def test_it_answers_a_wrong_method_with_405_json(api):
    response = api.get(ITEMS)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_it_uses_no_default_when_the_client_has_none(admin_user, spam):
    _, token = clients.create_client(actor=admin_user, name="Bare")
    response = JsonCaller(token).post(ITEMS, {"content": "hi"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_policies"


# --- batches -------------------------------------------------------------------------------------------


def test_it_stores_a_batch_in_order_and_reports_repeats(api, spam):
    api.post(ITEMS, {"external_id": "b-2", "content": "already here"})
    items = [{"external_id": f"b-{i}", "content": f"message {i}"} for i in range(1, 6)]
    items.append({"external_id": "b-1", "content": "the same id twice in one batch"})
    response = api.post(BATCH, {"items": items})
    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["existing"]) == (4, 2)
    assert [row["external_id"] for row in body["data"]] == ["b-1", "b-2", "b-3", "b-4", "b-5", "b-1"]
    assert [row["created"] for row in body["data"]] == [True, False, True, True, True, False]
    assert body["data"][0]["id"] == body["data"][5]["id"]
    assert Item.objects.count() == 5
    assert AuditEvent.objects.filter(action="item.created").count() == 5
    assert Classification.objects.filter(stage="reasoner", status="queued").count() == 5


def test_it_answers_200_when_every_item_of_a_batch_was_stored_before(api, spam):
    items = [{"external_id": "r-1", "content": "one"}, {"external_id": "r-2", "content": "two"}]
    api.post(BATCH, {"items": items})
    before = _counts()
    response = api.post(BATCH, {"items": items})
    assert response.status_code == 200
    assert response.json()["created"] == 0
    assert _counts() == before


def test_it_stores_items_without_external_ids_every_time(api, spam):
    response = api.post(BATCH, {"items": [{"content": "same"}, {"content": "same"}]})
    assert response.json()["created"] == 2
    assert Item.objects.count() == 2


def test_a_batch_with_one_bad_item_creates_nothing(api, spam):
    items = [{"external_id": f"x-{i}", "content": "fine"} for i in range(10)]
    items[7]["content"] = ["not", "a", "string"]
    response = api.post(BATCH, {"items": items})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "items[7].content"
    assert _counts() == (0, 0, 0, 0)


def test_a_batch_naming_an_unknown_policy_for_one_item_creates_nothing(api, spam):
    items = [{"content": "fine"}, {"content": "fine", "policies": ["ghost"]}]
    response = api.post(BATCH, {"items": items})
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "items[1].policies[0]"
    assert Item.objects.count() == 0


def test_it_refuses_a_batch_over_the_limit_with_400(api, spam, settings):
    settings.API_MAX_BATCH = 1000
    response = api.post(BATCH, {"items": [{"content": "x"}] * 1001})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "batch_too_large"
    assert Item.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [({}, "items"), ({"items": {}}, "items"), ({"items": []}, "items"), ({"items": [1]}, "items[0]"),
     ({"items": [{"content": "x"}], "extra": 1}, "extra"), ({"items": [{"content": "x", "bad": 1}]}, "items[0].bad"),
     ({"items": [{"content": "x"}], "policies": ["ghost"]}, "policies[0]")],
)
def test_it_refuses_malformed_batches_naming_the_field(api, spam, body, param):
    response = api.post(BATCH, body)
    assert response.status_code in (400, 404)
    assert response.json()["error"]["param"] == param
    assert Item.objects.count() == 0


def test_batch_wide_policies_apply_to_items_that_name_none(api, acme, spam, other_policy):
    allow(acme[0], other_policy.policy)
    items = [{"content": "a"}, {"content": "b", "policies": ["spam"]}]
    response = api.post(BATCH, {"items": items, "policies": ["harassment"]})
    assert [[p["policy"] for p in row["policies"]] for row in response.json()["data"]] == [["harassment"], ["spam"]]


# --- reading items --------------------------------------------------------------------------------------


def test_it_reads_an_item_by_id_and_by_external_id(api, spam):
    created = api.post(ITEMS, {"external_id": "ext/with slash", "content": "hello"}).json()
    by_id = api.get(f"{ITEMS}/{created['id']}")
    by_external = api.get(f"{ITEMS}/by-external-id/ext/with slash")
    assert by_id.status_code == by_external.status_code == 200
    assert by_id.json() == by_external.json()
    assert "created" not in by_id.json()
    assert by_id.json()["policies"][0]["verdicts"][0]["status"] == "queued"


def test_it_hides_other_clients_items(api, spam, admin_user):
    _, token = clients.create_client(actor=admin_user, name="Other", default_policies=[spam.policy])
    theirs = JsonCaller(token).post(ITEMS, {"external_id": "secret", "content": "hi"}).json()
    assert api.get(f"{ITEMS}/{theirs['id']}").status_code == 404
    assert api.get(f"{ITEMS}/by-external-id/secret").status_code == 404
    assert api.get(f"{ITEMS}/999999").json()["error"]["code"] == "item_not_found"


def test_it_refuses_a_bad_wait(api, spam, settings):
    settings.API_MAX_WAIT_S = 5
    assert api.post(f"{ITEMS}?wait=abc", {"content": "hi"}).json()["error"]["param"] == "wait"
    assert api.post(f"{ITEMS}?wait=6", {"content": "hi"}).status_code == 400
    assert Item.objects.count() == 0


def test_a_wait_returns_at_once_when_the_first_pass_decided(api, trained_spam, admin_user):
    spam, _ = trained_spam
    routing.set_routing_rule(actor=admin_user, version=spam, safe_below=0.5, violation_above=0.9, sample_rate=0,
                              violations_to_humans=False)
    started = time.monotonic()
    response = api.post(f"{ITEMS}?wait=5", {"content": "Confirmation of your purchase attached."})
    assert time.monotonic() - started < 2
    assert response.status_code == 201
    assert response.json()["status"] == "decided"
    assert response.json()["policies"][0]["decided_by"] == "first_pass"


def test_a_new_version_routes_new_items(api, spam, writer):
    v2 = policy_services.save_version(
        actor=writer, policy=spam.policy, base_number=spam.number, text=spam.text + "\n- SP2.b Bulk.\n",
        label_scheme="binary", labels=None, output_format="binary", reasoning_effort="medium", change_note="bulk",
    )
    policy_services.publish_version(actor=writer, policy=spam.policy, version=v2)
    response = api.post(ITEMS, {"content": "hi"})
    assert response.json()["policies"][0]["version"] == v2.number


def test_it_keeps_json_errors_readable_by_the_openai_sdk(api):
    body = json.loads(api.post(ITEMS, None, raw=b"{").content)
    assert set(body["error"]) == {"message", "type", "param", "code"}


@pytest.mark.django_db(transaction=True)
def test_a_wait_returns_the_reasoners_verdict_once_it_is_stored(api, spam, settings):
    settings.API_WAIT_POLL_S = 0.05
    done = threading.Event()

    def reasoner_worker() -> None:
        try:
            deadline = time.monotonic() + 10
            while not run_once(ScriptedEngine()) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=reasoner_worker, daemon=True)
    thread.start()
    started = time.monotonic()
    response = api.post(f"{ITEMS}?wait=10", {"external_id": "w-1", "content": "lunch at noon? #verdict=0"})
    assert done.wait(15)
    thread.join(5)
    assert time.monotonic() - started < 10
    state = response.json()
    assert (response.status_code, state["created"], state["status"]) == (201, True, "decided")
    assert (state["decision"]["flagged"], state["decision"]["flagged_policies"]) == (False, [])
    [policy] = state["policies"]
    assert (policy["decided_by"], policy["verdicts"][0]["stage"], policy["verdicts"][0]["status"]) == (
        "reasoner", "reasoner", "done")


def test_a_get_with_wait_gives_up_after_the_wait(api, spam):
    item_id = api.post(ITEMS, {"content": "nobody will classify this"}).json()["id"]
    started = time.monotonic()
    response = api.get(f"{ITEMS}/{item_id}", wait="0.3")
    assert 0.3 <= time.monotonic() - started < 3
    assert response.json()["status"] == "pending"


def test_a_conflicting_answer_is_reported_in_review_with_how_it_was_read_never_as_safe(api, spam):
    item_id = api.post(ITEMS, {"external_id": "c-1", "content": "hello #conflict"}).json()["id"]
    clean_id = api.post(ITEMS, {"external_id": "c-2", "content": "lunch at noon? #verdict=0"}).json()["id"]

    assert run_once(ScriptedEngine(), "w1") == 2

    conflicting = api.get(f"{ITEMS}/{item_id}").json()
    clean = api.get(f"{ITEMS}/{clean_id}").json()
    [verdict] = conflicting["policies"][0]["verdicts"]
    assert (conflicting["status"], verdict["status"], verdict["violation"], verdict["parse_quality"]) == (
        "in_review", "conflicting", None, "conflicting")
    assert clean["policies"][0]["verdicts"][0]["parse_quality"] == "clean"
    schema = api.get("/api/v1/schema.json").json()
    verdict_schema = schema["components"]["schemas"]["Verdict"]["properties"]
    assert "conflicting" in verdict_schema["status"]["enum"]
    assert "conflicting" in verdict_schema["parse_quality"]["enum"]
