"""The review console in a real browser: daphne serving the ASGI app, the reasoner worker on the scripted
engine, PostgreSQL and Redis, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.request

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection

from accounts.roles import Role, set_roles
from api import clients, routing, training
from console import claims, decisions
from console.models import Classification, Review
from safeguard import firstpass
from tests.browser import live
from tests.browser.pages import Errors, signed_in
from tests.console.reviewing import make_verdict
from tests.factories import make_item, make_policy

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make in between are
# ordinary blocking calls, which Django's async-safety check would otherwise refuse.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-browser-test-password"
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def console_url(django_db_setup, tmp_path_factory):
    with live.console_processes(database=connection.settings_dict,
                                workdir=tmp_path_factory.mktemp("console")) as url:
        yield url


@pytest.fixture
def cast(settings):
    """mo (signs in with a password, hashed the way the server checks it), bob and ada (signed in by cookie)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    for role in Role:  # a transactional test empties the role groups the data migration made
        Group.objects.get_or_create(name=role.value)
    users = {}
    for name, role in (("mo", Role.MODERATOR), ("bob", Role.MODERATOR), ("ada", Role.ADMIN)):
        user = get_user_model().objects.create_user(username=name, password=PASSWORD if name == "mo" else None)
        set_roles(actor=None, user=user, roles={role})
        users[name] = user
    return users


def _live(page) -> None:
    expect(page.locator('#live-state[data-state="open"]')).to_be_visible(timeout=WAIT_MS)


def test_a_moderator_sees_an_item_arrive_opens_it_and_overrides_it_by_keyboard(console_url, browser, cast):
    version = make_policy(name="Spam")
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors = Errors(page)
    try:
        page.goto(f"{console_url}/accounts/login/?next=/items/")
        page.fill('input[name="username"]', "mo")
        page.fill('input[name="password"]', PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/items/$"), timeout=WAIT_MS)
        _live(page)

        # An item arrives; the real worker classifies it; its row appears without a reload.
        item = live.call(make_item, versions=[version], source="forum", content="Buy now at spam.example #verdict=1")
        classification = item.classifications.get()
        row = page.locator(f"#row-{classification.pk}")
        expect(row).to_contain_text("Buy now at spam.example", timeout=WAIT_MS)
        expect(page.locator('#queue-counts [data-queue="all"] .count')).to_have_text("1")

        # Keyboard only from here: select the row, open it, read the reasoning, override it.
        page.keyboard.press("j")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(rf"/items/{item.pk}/"), timeout=WAIT_MS)
        expect(page.locator("#reasoning pre.reasoning")).to_contain_text("directive #verdict=1")
        expect(page.locator("#claim-banner")).to_contain_text("You are reviewing this item")
        page.keyboard.press("r")
        expect(page.locator("#reasoning pre.reasoning")).to_be_hidden()
        page.keyboard.press("r")
        expect(page.locator("#reasoning pre.reasoning")).to_be_visible()
        page.keyboard.press("o")
        label = page.locator('#override-panel select[name="label"]')
        expect(label).to_be_focused()
        page.keyboard.press("0")  # picks "0 · no violation"
        expect(label).to_have_value("0")
        page.keyboard.press("Tab")
        page.keyboard.type("A quote, not an ad")
        page.keyboard.press("Enter")
        expect(page.locator(".messages")).to_contain_text("Overrode (now 0)", timeout=WAIT_MS)

        review = Review.objects.get()
        assert (review.decision, review.label, review.reason, review.reviewer.username) == (
            "override", "0", "A quote, not an ad", "mo"
        )
        assert Classification.objects.get(pk=classification.pk).review_status == "decided"

        page.goto(f"{console_url}/dashboard/")
        stats = page.locator(f"#version-{version.pk}")
        expect(stats).to_contain_text("1 decided · 1 overridden")
        expect(stats).to_contain_text("a quote, not an ad")
        expect(stats).to_contain_text("0%")  # none of the model's verdicts approved
        assert errors.fatal() == []
    finally:
        context.close()


def _post_item(console_url: str, token: str, body: dict) -> dict:
    """POST /api/v1/items to the running server, as a platform would."""
    request = urllib.request.Request(f"{console_url}/api/v1/items", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_an_item_the_first_pass_sends_to_people_appears_on_an_open_queue_without_a_reload(console_url, browser,
                                                                                          cast):
    version = make_policy(name="Forum spam")
    examples = [firstpass.LabeledText(f"Buy cheap pills now at shop{i}.example, limited offer", True)
                for i in range(15)]
    examples += [firstpass.LabeledText(f"Thanks for the notes from meeting {i}, see you on Tuesday", False)
                 for i in range(15)]
    live.call(training.import_labeled_examples, actor=None, actor_name="system:test", policy=version.policy,
         examples=examples, dataset="browser-test")
    assert live.call(training.retrain_first_pass, policy=version.policy) is not None
    # Every score goes to people: nothing is closed unread, nothing waits for the reasoner.
    live.call(routing.set_routing_rule, actor=None, version=version, safe_below=0.0, violation_above=0.0,
         sample_rate=0.0, violations_to_humans=True)
    _, token = live.call(clients.create_client, actor=None, name="Forum", default_policies=[version.policy])
    context = signed_in(browser, console_url, cast["mo"])
    try:
        page = context.new_page()
        errors = Errors(page)
        page.goto(f"{console_url}/items/")
        _live(page)
        expect(page.locator('#queue-counts [data-queue="all"] .count')).to_have_text("0")

        state = _post_item(console_url, token, {"external_id": "post-1", "content": "Buy cheap pills at spam.example"})
        assert [p["route"] for p in state["policies"]] == ["human"]
        [classification] = Classification.objects.filter(item_id=state["id"])
        assert (classification.stage, classification.status) == ("fast", "done")

        # No reasoner ran and no page was reloaded: the ingestion's own broadcast brought the row.
        expect(page.locator(f"#row-{classification.pk}")).to_contain_text("Buy cheap pills", timeout=WAIT_MS)
        expect(page.locator('#queue-counts [data-queue="all"] .count')).to_have_text("1")
        assert errors.fatal() == []
    finally:
        context.close()


def test_a_policy_writer_sees_how_answers_were_read_and_opens_the_conflicting_ones(console_url, browser, cast):
    version = make_policy(name="Support requests", label_scheme="valid_invalid", labels=["VALID", "INVALID"],
                          output_format="label", text="Is this a support request? Answer (VALID or INVALID):")
    _, token = live.call(clients.create_client, actor=None, name="Helpdesk", default_policies=[version.policy])
    # The real path: the API stores the items, the console's reasoner worker reads the scripted answers.
    for n, content in enumerate(["#conflict", "#echo #verdict=1", "my parcel never came"]):
        _post_item(console_url, token, {"external_id": f"q-{n}", "content": content})
    context = signed_in(browser, console_url, cast["ada"])
    try:
        page = context.new_page()
        errors = Errors(page)
        # The share table arrives by htmx after the page; reload until the worker has read all three answers.
        row = page.locator(f"#quality-{version.pk}")
        for _ in range(60):
            page.goto(f"{console_url}/policies/{version.policy.slug}/")
            page.wait_for_selector("#answer-quality table", timeout=WAIT_MS)
            if row.count() and row.locator("td").nth(1).inner_text().strip() == "3":
                break
            page.wait_for_timeout(500)
        expect(row.locator(".q-conflicting a")).to_contain_text("33.3%", timeout=WAIT_MS)
        row.locator(".q-conflicting a").click()
        expect(page.locator("h1")).to_contain_text("Conflicting answers")
        expect(page.locator("table.grid")).to_contain_text("conflicting labels")
        assert errors.fatal() == []
    finally:
        context.close()


def test_a_second_moderator_sees_the_claim_live_and_cannot_decide(console_url, browser, cast):
    verdict = live.call(make_verdict, content="Limited offer, click here", source="shop")
    mine, theirs = signed_in(browser, console_url, cast["mo"]), signed_in(browser, console_url, cast["bob"])
    try:
        bob = theirs.new_page()
        errors = Errors(bob)
        bob.goto(f"{console_url}/items/")
        _live(bob)
        expect(bob.locator(f"#row-{verdict.pk} .claim")).to_have_text("")

        mo = mine.new_page()
        mo.goto(f"{console_url}/items/{verdict.item_id}/")
        expect(mo.locator("#claim-banner")).to_contain_text("You are reviewing this item")
        # bob's queue shows the claim as it happens
        expect(bob.locator(f"#row-{verdict.pk} .claim")).to_have_text(re.compile(r"^mo · \d\d:\d\d$"),
                                                                      timeout=WAIT_MS)

        bob.goto(f"{console_url}/items/{verdict.item_id}/")
        expect(bob.locator("#claim-banner")).to_contain_text("mo is reviewing this item")
        approve = bob.locator('#actions button[data-key="a"]')
        expect(approve).to_be_disabled()
        bob.keyboard.press("a")
        expect(bob.locator("#live-toast")).to_contain_text("mo is reviewing this item")
        _live(mo)
        expect(mo.locator("#viewers")).to_contain_text("Also viewing: bob", timeout=WAIT_MS)
        expect(bob.locator("#viewers")).to_contain_text("Also viewing: mo", timeout=WAIT_MS)

        assert errors.fatal() == []
        # Even a hand-made request cannot decide it.
        status = bob.evaluate(
            """async (url) => {
                const token = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
                const response = await fetch(url, {method: "POST", headers: {"X-CSRFToken": token},
                                                   body: new URLSearchParams({seen: "0"})});
                return response.status;
            }""",
            f"/reviews/{verdict.pk}/approve/",
        )
        assert status == 409
        assert not Review.objects.exists()

        # mo decides with one key; bob's open page shows it at once.
        mo.keyboard.press("a")
        expect(mo.locator(".messages")).to_contain_text("Approved the", timeout=WAIT_MS)
        expect(bob.locator("#live-toast")).to_contain_text("mo approved a verdict on this item", timeout=WAIT_MS)
        expect(bob.locator("#actions")).to_contain_text("Approved by mo")
        assert list(Review.objects.values_list("decision", "reviewer__username")) == [("approve", "mo")]
    finally:
        mine.close()
        theirs.close()


def _screenshot_data(cast):
    """A morning's queue: verdicts of each kind, a conversation, a claimed item, some decisions."""
    spam = make_policy(name="Spam and scams")
    harassment = make_policy(name="Harassment")
    rows = [
        make_verdict(spam, content="Claim your free crypto now at bit.ly/xyz", source="forum", confidence=0.93),
        make_verdict(harassment, kind="conversation", source="chat", rule_ids=["SP2.a"], confidence=0.71,
                     turns=[{"role": "user", "content": "you are pathetic, log off"},
                            {"role": "assistant", "content": "I'd rather keep this respectful."}]),
        make_verdict(spam, status="unparsable", content="hmm, is this allowed?", source="api"),
        make_verdict(spam, stage="fast", violation=False, confidence=0.04, content="Lunch at noon?", source="chat"),
        make_verdict(spam, violation=False, confidence=0.42, content="My shop opens Monday", source="forum"),
    ]
    for n in range(6):
        decided = make_verdict(spam, content=f"earlier message {n}")
        if n < 4:
            decisions.approve(user=cast["bob"], classification_id=decided.pk, seen_review=0)
        else:
            decisions.override(user=cast["bob"], classification_id=decided.pk, seen_review=0, label="0",
                              reason="Quoting a scam to warn others", misapplied_rule="SP2.a")
    claims.claim_item(user=cast["bob"], item_id=rows[4].item_id)
    return rows


def test_the_review_pages_render_for_the_readme(console_url, browser, cast, tmp_path):
    """The queue, an item and the dashboard render whole, without console errors (screenshots kept in
    the test's temporary folder; the README's are of the demo data)."""
    rows = live.call(_screenshot_data, cast)
    folder = tmp_path
    context = signed_in(browser, console_url, cast["ada"])
    try:
        page = context.new_page()
        errors = Errors(page)
        page.goto(f"{console_url}/items/")
        _live(page)
        page.keyboard.press("j")
        page.screenshot(path=folder / "queue.png")
        page.goto(f"{console_url}/items/{rows[0].item_id}/")
        expect(page.locator("mark.rule.cited")).to_have_count(1)
        page.screenshot(path=folder / "item.png")
        page.goto(f"{console_url}/dashboard/")
        expect(page.locator(".version-stats")).to_have_count(1)
        page.screenshot(path=folder / "dashboard.png", full_page=True)
        assert errors.fatal() == []
    finally:
        context.close()
    assert all((folder / name).stat().st_size > 10_000 for name in ("queue.png", "item.png", "dashboard.png"))
    assert shutil.which("chromium")
