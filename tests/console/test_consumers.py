"""The live queue and item pages' consumers, over the real Redis channel layer: one test per pushed event."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group
from django.db import transaction

from accounts.roles import Role, set_roles
from console import claims, comments, decisions, queues
from console.models import Classification
from console.routing import websocket_urlpatterns
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.console.reviewing import make_verdict
from tests.factories import make_item, make_policy

pytestmark = pytest.mark.django_db(transaction=True)

APP = URLRouter(websocket_urlpatterns)
WAIT_S = 5.0


def _user(username: str, *roles: Role):
    # A transactional test empties every table after it, the role groups of the data migration too.
    for role in Role:
        Group.objects.get_or_create(name=role.value)
    user = get_user_model().objects.create_user(username=username)
    set_roles(actor=None, user=user, roles=set(roles))
    return user


@pytest.fixture(autouse=True)
def _fresh_counts():
    # Counts are shared by the pages of a process per message; each test starts without them.
    queues._cached.clear()


class Page:
    """An open page: a connected communicator that collects what the server pushes."""

    def __init__(self, path: str, user: Any) -> None:
        self.communicator = WebsocketCommunicator(APP, path)
        self.communicator.scope["user"] = user
        self.received: list[str] = []

    async def open(self) -> bool:
        connected, _ = await self.communicator.connect(timeout=WAIT_S)
        return connected

    async def until(self, condition: Callable[[str], bool]) -> str:
        """The first message pushed (from now) that satisfies `condition`; fails after WAIT_S."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                message = await self.communicator.receive_from(timeout=max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                break
            self.received.append(message)
            if condition(message):
                return message
        raise AssertionError(f"nothing matching arrived within {WAIT_S} s; got {self.received!r}")

    @property
    def everything(self) -> str:
        """All that arrived so far, one frame after another."""
        return "".join(self.received)

    async def close(self) -> None:
        await self.communicator.disconnect()


def run(scenario: Callable[[], Any]) -> Any:
    return async_to_sync(scenario)()


def db(function: Callable[..., Any]) -> Callable[..., Any]:
    return database_sync_to_async(function)


@pytest.mark.parametrize("who", ["writer", "anonymous"])
@pytest.mark.parametrize("kind", ["queue", "item"])
def test_only_reviewers_can_open_a_live_page(who, kind):
    user = _user("wendy", Role.POLICY_WRITER) if who == "writer" else AnonymousUser()
    path = "/ws/queue/" if kind == "queue" else f"/ws/items/{make_verdict().item_id}/"

    async def scenario():
        page = Page(path, user)
        try:
            return await page.open()
        finally:
            await page.close()

    assert run(scenario) is False


def test_a_live_page_of_an_unknown_item_is_refused():
    moderator = _user("mo", Role.MODERATOR)

    async def scenario():
        page = Page("/ws/items/987654/", moderator)
        try:
            return await page.open()
        finally:
            await page.close()

    assert run(scenario) is False


def test_a_verdict_arriving_updates_an_open_item_page():
    moderator = _user("mo", Role.MODERATOR)
    item = make_item(versions=[make_policy()], content="free money #verdict=1")

    async def scenario():
        page = Page(f"/ws/items/{item.pk}/", moderator)
        assert await page.open()
        try:
            await db(run_once)(ScriptedEngine(), "w1")
            verdict = await page.until(lambda html: 'id="verdict"' in html)
            await page.until(lambda html: 'id="live-toast"' in html)
            return verdict
        finally:
            await page.close()

    html = run(scenario)
    assert "directive #verdict=1" in html and 'id="approve-form"' in html
    assert 'data-key="a" disabled' not in html


def test_a_new_item_sent_straight_to_people_appears_on_open_queue_pages():
    moderator = _user("mo", Role.MODERATOR)
    version = make_policy()

    def arrive() -> Classification:
        # What the API's first pass does for a confident violation it routes to people.
        with transaction.atomic():
            item = make_item(versions=[], content="free money, click here")
            return Classification.objects.create(item=item, policy_version=version, stage="fast", status="done",
                                                 label="1", violation=True, confidence=0.97, needs_review=True)

    async def scenario():
        page = Page("/ws/queue/", moderator)
        assert await page.open()
        try:
            row = await db(arrive)()
            html = await page.until(lambda html: f'id="row-{row.pk}"' in html)
            counts = await page.until(lambda html: 'id="queue-counts"' in html)
            return row, html, counts
        finally:
            await page.close()

    row, html, counts = run(scenario)
    assert html.startswith('<tbody hx-swap-oob="beforeend:#queue-arrivals"><tr id="row-')
    assert "free money, click here" in html
    assert 'data-queue="review">Verdicts to review <span class="count">1</span>' in counts


def test_a_stored_verdict_appears_on_open_queue_pages_that_match_it():
    moderator = _user("mo", Role.MODERATOR)
    spam, other = make_policy(name="Spam"), make_policy(name="Other")
    item = make_item(versions=[spam], content="buy now #verdict=1")
    classification = item.classifications.get()

    async def scenario():
        everything = Page("/ws/queue/", moderator)
        elsewhere = Page(f"/ws/queue/?policy={other.policy.slug}", moderator)
        assert await everything.open() and await elsewhere.open()
        try:
            # The real reasoner pipeline stores the verdict and broadcasts it on commit.
            await db(run_once)(ScriptedEngine(), "w1")
            shown = await everything.until(lambda html: f'id="row-{classification.pk}"' in html)
            counts = await elsewhere.until(lambda html: 'id="queue-counts"' in html)
            return shown, counts
        finally:
            await everything.close()
            await elsewhere.close()

    shown, counts = run(scenario)
    assert "buy now #verdict=1" in shown and 'class="pill bad">1</span>' in shown
    assert f'id="row-{classification.pk}"' not in counts  # filtered out: only the counts change
    assert 'data-queue="all">All open <span class="count">1</span>' in counts


def test_a_claim_shows_on_open_queue_and_item_pages():
    moderator, bob = _user("mo", Role.MODERATOR), _user("bob", Role.MODERATOR)
    verdict = make_verdict()

    async def scenario():
        queue = Page("/ws/queue/", moderator)
        item = Page(f"/ws/items/{verdict.item_id}/", moderator)
        assert await queue.open() and await item.open()
        try:
            await db(claims.claim_item)(user=bob, item_id=verdict.item_id)
            badge = await queue.until(lambda html: "claim-item-" in html)
            banner = await item.until(lambda html: 'id="claim-banner"' in html)
            return badge, banner
        finally:
            await queue.close()
            await item.close()

    badge, banner = run(scenario)
    assert badge.startswith(f'<span hx-swap-oob="outerHTML:.claim-item-{verdict.item_id}" class="claim')
    assert ">bob · " in badge
    assert "<b>bob</b> is reviewing this item" in banner
    assert 'data-key="a" disabled' in banner  # the actions re-render: mo can no longer decide


def test_a_decision_removes_the_row_and_updates_the_item_page():
    moderator, bob = _user("mo", Role.MODERATOR), _user("bob", Role.MODERATOR)
    version = make_policy()
    verdict, _other = make_verdict(version), make_verdict(version)

    async def scenario():
        queue = Page("/ws/queue/", moderator)
        item = Page(f"/ws/items/{verdict.item_id}/?c={verdict.pk}", moderator)
        assert await queue.open() and await item.open()
        try:
            await db(decisions.approve)(user=bob, classification_id=verdict.pk, seen_review=0)
            removed = await queue.until(lambda html: "delete" in html)
            counts = await queue.until(lambda html: 'id="queue-counts"' in html)
            await item.until(lambda html: 'id="live-toast"' in html)
            return removed, counts, item.everything
        finally:
            await queue.close()
            await item.close()

    removed, counts, updated = run(scenario)
    assert removed == f'<tr id="row-{verdict.pk}" hx-swap-oob="delete"></tr>'
    assert 'data-queue="all">All open <span class="count">1</span>' in counts
    assert "bob approved a verdict on this item" in updated
    assert "Approved by bob" in updated and 'id="history"' in updated


def test_an_item_page_shows_who_else_is_viewing_it():
    moderator, bob = _user("mo", Role.MODERATOR), _user("bob", Role.MODERATOR)
    verdict = make_verdict()
    path = f"/ws/items/{verdict.item_id}/"

    async def scenario():
        mine = Page(path, moderator)
        assert await mine.open()
        try:
            theirs = Page(path, bob)
            assert await theirs.open()
            joined = await mine.until(lambda html: "<b>bob</b>" in html)
            greeted = await theirs.until(lambda html: "<b>mo</b>" in html)
            await theirs.close()
            left = await mine.until(lambda html: 'id="viewers"' in html and "bob" not in html)
            return joined, greeted, left
        finally:
            await mine.close()

    joined, greeted, left = run(scenario)
    assert joined.startswith('<span id="viewers"') and "Also viewing: <b>bob</b>" in joined
    assert "Also viewing: <b>mo</b>" in greeted
    assert "Also viewing" not in left


def test_a_comment_appears_on_the_item_pages():
    moderator, bob = _user("mo", Role.MODERATOR), _user("bob", Role.MODERATOR)
    verdict = make_verdict()

    async def scenario():
        item = Page(f"/ws/items/{verdict.item_id}/", moderator)
        assert await item.open()
        try:
            await db(comments.add_comment)(user=bob, item_id=verdict.item_id, text="Same sender as #12")
            return await item.until(lambda html: "Same sender as #12" in html)
        finally:
            await item.close()

    assert "<b>bob</b> commented: Same sender as #12" in run(scenario)
