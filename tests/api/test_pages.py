from __future__ import annotations

import pytest
from django.test import Client

from api import deliveries, redis_client
from api.auth import hash_token
from api.models import ApiClient, RoutingRule, WebhookDelivery
from audit.models import AuditEvent
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine

PAGES = ["/integrations/clients/", "/integrations/clients/new/", "/integrations/webhooks/",
         "/integrations/first-pass/"]


@pytest.mark.parametrize("client_as", ["moderator", "writer", "nobody"], indirect=True)
@pytest.mark.parametrize("url", PAGES)
def test_only_admins_see_the_integration_pages(client_as, url):
    assert client_as.get(url).status_code == 403


@pytest.mark.parametrize("url", PAGES)
def test_signed_out_visitors_are_sent_to_sign_in(db, url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.fixture
def client_as(request, db):
    return request.getfixturevalue({"admin": "admin_client_"}.get(request.param, f"{request.param}_client"))


def test_admins_find_the_pages_in_the_nav(admin_client_, moderator_client):
    assert b'href="/integrations/clients/"' in admin_client_.get("/integrations/clients/").content
    refused = moderator_client.get("/integrations/clients/")  # the 403 page has the nav too
    assert refused.status_code == 403
    assert b"/integrations/clients/" not in refused.content


def test_an_admin_creates_a_client_and_sees_its_token_once(admin_client_, admin_user, spam):
    response = admin_client_.post("/integrations/clients/new/", {
        "name": "Chat App", "scopes": ["submit", "read"], "allowed_policies": [spam.policy.pk],
        "default_policies": [spam.policy.pk], "webhook_url": "https://chat.example/hook",
        "rate_limit_per_minute": "120",
    })
    assert response.status_code == 201
    token = response.context["token"]
    client = ApiClient.objects.get(name="Chat App")
    assert token.encode() in response.content
    assert client.token_hash == hash_token(token)
    assert list(client.default_policies.all()) == [spam.policy]
    assert client.rate_limit == 120
    # Afterwards the token is nowhere to be seen again.
    assert token.encode() not in admin_client_.get(client.get_absolute_url()).content
    assert token.encode() not in admin_client_.get("/integrations/clients/").content


def test_client_creation_shows_the_services_refusal_beside_the_field(admin_client_, acme):
    response = admin_client_.post("/integrations/clients/new/", {"name": "Acme", "scopes": ["read"]})
    assert response.status_code == 200
    assert "already exists" in str(response.context["form"].errors["name"])
    assert ApiClient.objects.count() == 1


def test_an_admin_edits_and_revokes_a_client(admin_client_, acme, other_policy):
    client, _ = acme
    url = client.get_absolute_url()
    response = admin_client_.post(url, {"scopes": ["read"], "allowed_policies": [other_policy.policy.pk],
                                        "default_policies": [other_policy.policy.pk], "webhook_url": "",
                                        "rate_limit_per_minute": ""})
    assert response.status_code == 302
    client.refresh_from_db()
    assert (list(client.default_policies.all()), client.webhook_url) == ([other_policy.policy], "")
    response = admin_client_.post(f"{url}revoke/")
    assert response.status_code == 302
    assert ApiClient.objects.get(pk=client.pk).revoked_at is not None
    assert b"revoked" in admin_client_.get(url).content


def test_revoking_needs_a_post(admin_client_, acme):
    assert admin_client_.get(f"{acme[0].get_absolute_url()}revoke/").status_code == 405


@pytest.fixture
def delivery(api, acme):
    item_id = api.post("/api/v1/items", {"content": "hello"}).json()["id"]
    run_once(ScriptedEngine())
    delivery = deliveries.queue_decision_delivery(item_id=item_id)
    deliveries.attempt_delivery(delivery_id=delivery.pk)  # nothing listens at the fixture's URL
    return WebhookDelivery.objects.get(pk=delivery.pk)


def test_admins_read_the_delivery_log_and_filter_it(admin_client_, delivery):
    page = admin_client_.get("/integrations/webhooks/")
    assert page.status_code == 200
    assert list(page.context["page"]) == [delivery]
    assert b"Retrying" in page.content
    assert list(admin_client_.get("/integrations/webhooks/", {"status": "delivered"}).context["page"]) == []
    partial = admin_client_.get("/integrations/webhooks/", {"client": delivery.client_id},
                                headers={"HX-Request": "true"})
    assert b'id="delivery-table"' in partial.content
    assert b"<html" not in partial.content


def test_a_delivery_page_shows_its_attempts_and_can_send_it_again(admin_client_, admin_user, delivery,
                                                                    django_capture_on_commit_callbacks):
    page = admin_client_.get(delivery.get_absolute_url())
    assert page.status_code == 200
    assert b"ConnectError" in page.content
    assert b"item.decided" in page.content
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post(f"{delivery.get_absolute_url()}redeliver/")
    assert response.status_code == 302
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "pending"
    assert redis_client.queue("webhooks").count == 1
    assert AuditEvent.objects.filter(action="webhook.redeliver", actor=admin_user).exists()


def test_the_first_pass_page_shows_models_and_saves_thresholds(admin_client_, trained_spam):
    spam, model = trained_spam
    page = admin_client_.get("/integrations/first-pass/")
    assert page.status_code == 200
    assert f"Model #{model.pk}".encode() in page.content
    assert b"Site defaults" in page.content
    response = admin_client_.post(f"/integrations/first-pass/{spam.policy.slug}/routing/", {
        "safe_below": "0.3", "violation_above": "0.95", "sample_rate": "0.05", "violations_to_humans": "on"})
    assert response.status_code == 302
    rule = RoutingRule.objects.get(policy_version=spam)
    assert (rule.safe_below, rule.violation_above, rule.sample_rate, rule.violations_to_humans) == (0.3, 0.95,
                                                                                                   0.05, True)
    assert b"Set for this version" in admin_client_.get("/integrations/first-pass/").content


def test_disordered_thresholds_are_refused_with_a_message(admin_client_, spam):
    response = admin_client_.post(f"/integrations/first-pass/{spam.policy.slug}/routing/", {
        "safe_below": "0.9", "violation_above": "0.1", "sample_rate": "0"}, follow=True)
    assert not RoutingRule.objects.exists()
    assert "Thresholds must satisfy" in response.content.decode()


def test_retrain_now_queues_a_retraining(admin_client_, spam, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post(f"/integrations/first-pass/{spam.policy.slug}/retrain/")
    assert response.status_code == 302
    [job] = redis_client.queue("default").jobs
    assert (job.func_name, job.args) == ("api.jobs.retrain_first_pass", (spam.policy.pk, True))


def test_the_first_pass_page_says_why_a_threshold_was_not_applied(admin_client_, trained_spam):
    page = admin_client_.get("/integrations/first-pass/").content.decode()
    assert "not applied" in page
    assert "at least 100 held-out violations are needed" in page
    assert "Held-out recall per category" in page


def test_admins_pin_unpin_and_revert_the_routing_from_the_page(admin_client_, admin_user, spam):
    url = f"/integrations/first-pass/{spam.policy.slug}/routing/"
    admin_client_.post(url, {"safe_below": "0.3", "violation_above": "0.95", "sample_rate": "0.05"})
    admin_client_.post(url, {"safe_below": "0.4", "violation_above": "0.95", "sample_rate": "0.05"})
    page = admin_client_.get("/integrations/first-pass/").content.decode()
    assert "Unpin" in page and "Revert to close below 0.3000" in page
    admin_client_.post(f"{url}pin/", {"pinned": "0"})
    assert not RoutingRule.objects.get(policy_version=spam).pinned
    admin_client_.post(f"{url}revert/")
    rule = RoutingRule.objects.get(policy_version=spam)
    assert (rule.safe_below, rule.pinned) == (0.3, True)
    assert [e.action for e in AuditEvent.objects.filter(actor=admin_user, action__startswith="routing_rule.")
            .order_by("id")] == ["routing_rule.changed", "routing_rule.changed", "routing_rule.unpinned",
                                 "routing_rule.reverted"]


def test_reverting_a_version_without_a_rule_is_refused_with_a_message(admin_client_, spam):
    response = admin_client_.post(f"/integrations/first-pass/{spam.policy.slug}/routing/revert/", follow=True)
    assert response.status_code == 200
    assert "no earlier thresholds to go back to" in response.content.decode()
    assert not RoutingRule.objects.exists()
