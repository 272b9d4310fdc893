"""Appeals end to end in a real browser: daphne serving the ASGI app, PostgreSQL, Redis and its channel
layer, Debian's chromium driven by Playwright, the webhook jobs run as the webhook worker runs them, and
a real HTTP receiver standing in for the platform."""

from __future__ import annotations

import json
import os
import re
import urllib.request

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection

from accounts.roles import Role, set_roles
from api import clients
from api.models import DeliveryStatus, WebhookDelivery
from enforcement.models import Action, Appeal, Statement
from tests.api.helpers import Receiver, run_jobs
from tests.browser import live
from tests.browser.pages import Errors, signed_in
from tests.console.reviewing import make_verdict
from tests.factories import make_policy

# Playwright's sync API runs an event loop in this thread; the ORM calls the test makes in between are
# ordinary blocking calls, which Django's async-safety check would otherwise refuse.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000


@pytest.fixture(scope="module")
def console_url(django_db_setup, tmp_path_factory):
    # No reasoner worker: the verdict is stored through the reasoner's own pipeline by the test.
    with live.console_processes(database=connection.settings_dict, workdir=tmp_path_factory.mktemp("appeals"),
                                worker=False) as url:
        yield url


def _moderator(name: str):
    for role in Role:  # a transactional test empties the role groups the data migration made
        Group.objects.get_or_create(name=role.value)
    user = get_user_model().objects.create_user(username=name)
    set_roles(actor=None, user=user, roles={Role.MODERATOR})
    return user


def _post(url: str, token: str, body: dict) -> tuple[int, dict]:
    """POST JSON to the running server, as the platform would."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.load(response)


def test_an_appeal_arrives_live_and_a_second_moderator_reverses_it_and_the_platform_is_told(
        console_url, browser, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # the receiver's address; the deliveries run in this process
    hook = Receiver([200])
    mo, bea = _moderator("mo"), _moderator("bea")
    version = make_policy(name="Spam")
    client, token = live.call(clients.create_client, actor=None, name="Forum", default_policies=[version.policy],
                              webhook_url=hook.url)
    verdict = live.call(make_verdict, version, source=client.source, content="Cheap pills at shop.example",
                        rationale="Links to a pill shop.")
    first, second = signed_in(browser, console_url, mo, width=1280), signed_in(browser, console_url, bea, width=1280)
    errors = Errors()
    try:
        # mo decides in the browser; the statement of reasons shows on the item page.
        page = first.new_page()
        errors.watch(page)
        page.goto(f"{console_url}/items/{verdict.item_id}/")
        page.locator('#actions button[data-key="a"]').click()
        expect(page.locator(".messages")).to_contain_text("Approved the", timeout=WAIT_MS)
        page.goto(f"{console_url}/items/{verdict.item_id}/")
        statement = Statement.objects.get(action__classification=verdict)
        expect(page.locator("#enforcement-actions")).to_contain_text(str(statement.puid), timeout=WAIT_MS)
        expect(page.locator("#enforcement-actions")).to_contain_text("Remove the content")

        # bea has the appeals queue open; the platform's complaint appears there without a reload.
        queue = second.new_page()
        errors.watch(queue)
        queue.goto(f"{console_url}/appeals/")
        expect(queue.locator('#live-state[data-state="open"]')).to_be_visible(timeout=WAIT_MS)
        status, filed = _post(f"{console_url}/api/v1/items/{verdict.item_id}/appeals", token,
                              {"external_id": "complaint-7", "reason": "It is a recipe site, not a shop"})
        assert (status, filed["status"]) == (201, "open")
        row = queue.locator(f"#appeal-{filed['id']}")
        expect(row).to_contain_text("Cheap pills at shop.example", timeout=WAIT_MS)
        expect(row).to_contain_text("left")

        # mo may not decide it; bea opens it from the queue and reverses it.
        page.goto(f"{console_url}/appeals/{filed['id']}/")
        expect(page.locator("#decide-refused")).to_contain_text("You made the decision complained about")
        row.get_by_role("link", name=f"Appeal #{filed['id']}").click()
        queue.wait_for_url(re.compile(rf"/appeals/{filed['id']}/$"), timeout=WAIT_MS)
        expect(queue.locator("#complaint")).to_contain_text("It is a recipe site, not a shop")
        expect(queue.locator('#decide-form select[name="label"]')).to_have_value("0")
        queue.locator('#decide-form input[value="reversed"]').check()
        queue.locator('#decide-form textarea[name="reason"]').fill("The link goes to a cooking blog")
        queue.locator("#decide-form button[type=submit]").click()
        expect(queue.locator("#appeal-status")).to_have_text("Reversed", timeout=WAIT_MS)
        expect(queue.locator("#appeal-action")).to_contain_text("No action")
        assert Action.objects.get(classification=verdict).action == "none"
        assert Appeal.objects.get().decided_by == bea

        # The webhook worker's jobs tell the platform the outcome (run here: RQ's worker needs the main thread).
        run_jobs(lambda: WebhookDelivery.objects.filter(event="appeal.decided",
                                                        status=DeliveryStatus.DELIVERED).exists())
        [payload] = [json.loads(body) for _, body in hook.requests if json.loads(body)["event"] == "appeal.decided"]
        assert payload["appeal"]["id"] == filed["id"]
        assert (payload["appeal"]["status"], payload["appeal"]["outcome_reason"]) == (
            "reversed", "The link goes to a cooking blog")
        assert (payload["appeal"]["action"]["type"], payload["appeal"]["statement"]) == ("none", None)
        assert errors.fatal() == []
    finally:
        first.close()
        second.close()
        hook.close()
