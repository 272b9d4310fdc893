"""The live appeals queue's consumer, over the real Redis channel layer."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from enforcement import appeals
from enforcement.models import Action
from enforcement.routing import websocket_urlpatterns
from tests.console.reviewing import make_verdict
from tests.enforcement.helpers import approve

pytestmark = pytest.mark.django_db(transaction=True)

APP = URLRouter(websocket_urlpatterns)
WAIT_S = 5.0


def _page(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(APP, "/ws/appeals/")
    communicator.scope["user"] = user
    return communicator


@pytest.mark.parametrize("who", ["writer", "anonymous"])
def test_only_reviewers_open_the_live_appeals_queue(who, writer):
    user = writer if who == "writer" else AnonymousUser()

    async def scenario():
        page = _page(user)
        try:
            connected, _ = await page.connect(timeout=WAIT_S)
            return connected
        finally:
            await page.disconnect()

    assert async_to_sync(scenario)() is False


def test_an_appeal_filed_appears_on_an_open_queue_and_leaves_it_when_decided(moderator, second_moderator,
                                                                             django_capture_on_commit_callbacks):
    verdict = make_verdict(content="Cheap pills at shop.example")
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    action = Action.objects.get()

    async def scenario():
        page = _page(moderator)
        connected, _ = await page.connect(timeout=WAIT_S)
        assert connected
        try:
            appeal, _ = await database_sync_to_async(appeals.file_appeal)(
                item_id=action.item_id, external_id="c-1", reason="A joke", filed_via="api:Test")
            arrived = await page.receive_from(timeout=WAIT_S)
            await database_sync_to_async(appeals.decide_appeal)(user=second_moderator, appeal_id=appeal.pk,
                                                                outcome="upheld", reason="It is an ad")
            gone = await page.receive_from(timeout=WAIT_S)
            return appeal, arrived, gone
        finally:
            await page.disconnect()

    appeal, arrived, gone = async_to_sync(scenario)()
    assert arrived.startswith('<tbody hx-swap-oob="beforeend:#appeal-arrivals">')
    assert f'<tr id="appeal-{appeal.pk}" class="appeal-row fresh">' in arrived
    assert "Cheap pills at shop.example" in arrived and "left" in arrived
    assert gone == f'<tr id="appeal-{appeal.pk}" hx-swap-oob="delete"></tr>'
