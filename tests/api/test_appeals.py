from __future__ import annotations

import json

import pytest

from api import clients, deliveries, webhooks
from api.models import ApiClient, DeliveryStatus, WebhookDelivery
from audit.models import AuditEvent
from enforcement import appeals
from enforcement.models import Action, Appeal, Statement
from tests.api.helpers import JsonCaller, Receiver, run_jobs
from tests.console.reviewing import make_verdict
from tests.enforcement.helpers import approve

pytestmark = pytest.mark.django_db

COMPLAINT = {"external_id": "complaint-1", "reason": "It was a joke between friends"}


@pytest.fixture
def decided(acme, spam, moderator, django_capture_on_commit_callbacks) -> Action:
    """An item acme submitted, whose spam verdict the moderator approved (content removed)."""
    verdict = make_verdict(spam, source=acme[0].source, rationale="Links to a pill shop.")
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    return Action.objects.get(classification=verdict)


def _url(action: Action) -> str:
    return f"/api/v1/items/{action.item_id}/appeals"


def test_a_platform_files_an_appeal_once_and_reads_it_back(api, decided, spam, settings):
    first = api.post(_url(decided), {**COMPLAINT, "policy": spam.policy.slug})
    assert first.status_code == 201, first.json()
    body = first.json()
    appeal = Appeal.objects.get()
    assert body["id"] == appeal.pk and body["object"] == "appeal"
    assert (body["status"], body["complainant"], body["policy"], body["external_id"]) == (
        "open", "affected", spam.policy.slug, "complaint-1")
    assert body["due_at"] == appeal.due_at.isoformat().replace("+00:00", "Z")
    assert (appeal.due_at - appeal.received_at).days == settings.APPEAL_DEADLINE_DAYS
    assert appeal.filed_via == "api:Acme" and appeal.filed_by is None

    again = api.post(_url(decided), COMPLAINT)
    assert (again.status_code, again.json()) == (200, body)
    listed = api.get(_url(decided)).json()
    assert listed["object"] == "list" and listed["data"] == [body]
    assert AuditEvent.objects.filter(action="appeal.filed").count() == 1
    assert '"mo"' not in json.dumps(listed) and "reviewer" not in json.dumps(listed)  # names stay in the console


def test_reusing_an_external_id_for_another_complaint_is_a_409_naming_it(api, decided):
    api.post(_url(decided), COMPLAINT)
    response = api.post(_url(decided), {**COMPLAINT, "reason": "Another story"})
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == ("external_id", "appeal_conflict", "conflict_error")
    assert "complaint-1" in error["message"]
    second_open = api.post(_url(decided), {"external_id": "complaint-2", "reason": "Me too"})
    assert second_open.status_code == 409 and "already open" in second_open.json()["error"]["message"]
    assert Appeal.objects.count() == 1


@pytest.mark.parametrize(("body", "param"), [
    ({"reason": "unfair"}, "external_id"),
    ({"external_id": "c"}, "reason"),
    ({"external_id": "c", "reason": "  "}, "reason"),
    ({"external_id": "c", "reason": 12}, "reason"),
    ({"external_id": 7, "reason": "unfair"}, "external_id"),
    ({**COMPLAINT, "complainant": "bystander"}, "complainant"),
    ({**COMPLAINT, "policy": "no-such-policy"}, "policy"),
    ({**COMPLAINT, "outcome": "reversed"}, "outcome"),
])
def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(api, decided, body, param):
    response = api.post(_url(decided), body)
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["param"] == param
    assert not Appeal.objects.exists()


def test_a_body_that_is_not_a_json_object_is_refused(api, decided):
    assert api.post(_url(decided), None, raw=b"[1, 2]").status_code == 400
    assert api.post(_url(decided), None, raw=b"{not json").json()["error"]["code"] == "invalid_json"
    assert not Appeal.objects.exists()


def test_an_undecided_item_cannot_be_appealed_yet(api, acme, spam):
    verdict = make_verdict(spam, source=acme[0].source)  # awaiting review
    response = api.post(f"/api/v1/items/{verdict.item_id}/appeals", COMPLAINT)
    assert response.status_code == 400
    assert "no decided action" in response.json()["error"]["message"]
    assert not Appeal.objects.exists()


def test_a_client_sees_and_appeals_only_its_own_items(admin_user, api, decided, spam):
    _, token = clients.create_client(actor=admin_user, name="Other", source="other", default_policies=[spam.policy])
    other = JsonCaller(token)
    assert other.post(_url(decided), COMPLAINT).json()["error"]["code"] == "item_not_found"
    assert other.get(_url(decided)).status_code == 404
    assert not Appeal.objects.exists()


def test_no_api_call_decides_an_appeal(api, decided):
    api.post(_url(decided), COMPLAINT)
    for method in ("put", "patch", "delete"):
        response = getattr(api.client, method)(_url(decided), data=json.dumps({"status": "reversed"}),
                                               content_type="application/json",
                                               headers={"Authorization": f"Bearer {api.token}"})
        assert response.status_code == 405
    assert Appeal.objects.get().status == "open"


def test_an_upheld_appeal_is_told_with_the_statement_still_in_force(api, decided, second_moderator,
                                                                    django_capture_on_commit_callbacks):
    api.post(_url(decided), COMPLAINT)
    with django_capture_on_commit_callbacks(execute=True):
        appeal = appeals.decide_appeal(user=second_moderator, appeal_id=Appeal.objects.get().pk, outcome="upheld",
                                       reason="It advertises a shop")
    delivery = WebhookDelivery.objects.get(event="appeal.decided")
    told = delivery.payload["appeal"]
    assert (told["id"], told["status"], told["outcome_reason"]) == (appeal.pk, "upheld", "It advertises a shop")
    assert told["action"]["type"] == "remove"
    assert told["statement"]["puid"] == str(Statement.objects.get().puid)
    assert delivery.payload["item"]["decision"]["flagged"] is True
    assert deliveries.queue_appeal_delivery(appeal_id=appeal.pk) is None  # told once
    assert WebhookDelivery.objects.filter(event="item.decided").count() == 1  # the approval's own, not again


@pytest.mark.django_db(transaction=True)
def test_a_reversal_reaches_the_platform_signed_with_the_action_now_in_force(api, acme, decided, second_moderator):
    hook = Receiver([200])
    try:
        ApiClient.objects.filter(pk=acme[0].pk).update(webhook_url=hook.url)
        appeal_id = api.post(_url(decided), COMPLAINT).json()["id"]
        appeals.decide_appeal(user=second_moderator, appeal_id=appeal_id, outcome="reversed", label="0",
                              reason="The link is to a recipe site")  # commits: the signal fires
        run_jobs(lambda: WebhookDelivery.objects.filter(event="appeal.decided",
                                                        status=DeliveryStatus.DELIVERED).exists())
    finally:
        hook.close()
    [(headers, body)] = [(h, b) for h, b in hook.requests if json.loads(b)["event"] == "appeal.decided"]
    secret = ApiClient.objects.get(pk=acme[0].pk).webhook_secret
    assert webhooks.verify(secret, headers["x-webhook-timestamp"], body, headers["x-webhook-signature"])
    payload = json.loads(body)
    told = payload["appeal"]
    assert (told["id"], told["status"], told["external_id"]) == (appeal_id, "reversed", "complaint-1")
    assert told["outcome_reason"] == "The link is to a recipe site"
    assert (told["action"]["type"], told["action"]["decided_code"], told["action"]["violation"]) == ("none", "0",
                                                                                                     False)
    assert told["statement"] is None  # withdrawn: the content is no longer restricted
    assert payload["item"]["decision"]["flagged"] is False
    [policy] = payload["item"]["policies"]
    assert (policy["action"]["type"], policy["statement"]) == ("none", None)
    # The item's decision changed, so it is told as one too (after the approval's), with the same action.
    changed, approval = WebhookDelivery.objects.filter(event="item.decided").order_by("-id")
    assert approval.payload["item"]["decision"]["flagged"] is True
    assert changed.payload["item"]["policies"][0]["action"]["type"] == "none"
    listed = api.get(_url(decided)).json()["data"]
    assert [(a["status"], a["outcome_reason"]) for a in listed] == [("reversed", "The link is to a recipe site")]
