"""The live run page's consumer, over the real Redis channel layer: progress pushed as the reasoner stores
results, the metrics once the run is over, and only to policy writers and admins."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group

from accounts.roles import Role, set_roles
from evaluations import live, runs
from evaluations.routing import websocket_urlpatterns
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.factories import make_labeled_set, make_policy

pytestmark = pytest.mark.django_db(transaction=True)

APP = URLRouter(websocket_urlpatterns)
WAIT_S = 5.0


def _user(username: str, *roles: Role):
    for role in Role:  # a transactional test empties the role groups the data migration made
        Group.objects.get_or_create(name=role.value)
    user = get_user_model().objects.create_user(username=username)
    set_roles(actor=None, user=user, roles=set(roles))
    return user


def _run(n: int = 4):
    version = make_policy()
    rows = [(f"free money {i}", "1") for i in range(n)]
    return runs.start_run(actor=None, labeled_set=make_labeled_set(version.policy, rows), version=version)


async def _until(communicator: WebsocketCommunicator, seen: list[str], condition: Callable[[str], bool]) -> str:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            message = await communicator.receive_from(timeout=max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        seen.append(message)
        if condition(message):
            return message
    raise AssertionError(f"nothing matching arrived within {WAIT_S} s; got {seen!r}")


def test_an_open_run_page_gets_its_progress_as_results_are_stored_and_the_metrics_at_the_end(monkeypatch):
    monkeypatch.setattr(live, "PUSH_EVERY_S", 0.0)  # every batch pushes (throttling: the test below)
    writer = _user("wendy", Role.POLICY_WRITER)
    run = _run(4)
    engine = ScriptedEngine()

    async def scenario():
        communicator = WebsocketCommunicator(APP, f"/ws/evaluations/runs/{run.pk}/")
        communicator.scope["user"] = writer
        seen: list[str] = []
        connected, _ = await communicator.connect(timeout=WAIT_S)
        assert connected
        try:
            first = await _until(communicator, seen, lambda html: 'id="run-progress"' in html)
            await database_sync_to_async(run_once)(engine, "w1", batch_size=2)
            half = await _until(communicator, seen, lambda html: "2 of 4" in html)
            await database_sync_to_async(run_once)(engine, "w1", batch_size=2)
            done = await _until(communicator, seen, lambda html: "4 of 4" in html)
            metrics = await _until(communicator, seen, lambda html: 'id="run-metrics"' in html)
            cancel = await _until(communicator, seen, lambda html: 'id="run-cancel"' in html)
            return first, half, done, metrics, cancel
        finally:
            await communicator.disconnect()

    first, half, done, metrics, cancel = async_to_sync(scenario)()

    assert 'data-percent="0.0"' in first and "0 of 4" in first  # caught up on connecting
    assert '<progress max="100" value="50.0"' in half and 'data-status="running"' in half
    assert "s left at this run&#x27;s pace" in half and "2 waiting" in half
    assert "Time left: unknown until the first results are stored" in first
    assert '<progress max="100" value="100.0"' in done and 'data-status="done"' in done
    assert "Recall" in metrics and "100.0%" in metrics
    assert f'hx-get="/evaluations/runs/{run.pk}/"' in metrics  # and the results list refreshes
    assert cancel == '<div id="run-cancel"></div>'


@pytest.mark.parametrize("who", ["moderator", "anonymous"])
def test_only_policy_writers_and_admins_can_follow_a_run(who):
    user = _user("mo", Role.MODERATOR) if who == "moderator" else AnonymousUser()
    run = _run(1)

    async def scenario():
        communicator = WebsocketCommunicator(APP, f"/ws/evaluations/runs/{run.pk}/")
        communicator.scope["user"] = user
        try:
            connected, _ = await communicator.connect(timeout=WAIT_S)
            return connected
        finally:
            await communicator.disconnect()

    assert async_to_sync(scenario)() is False


def test_an_admin_follows_a_run_but_not_one_that_does_not_exist():
    admin = _user("ada", Role.ADMIN)
    run = _run(1)

    async def scenario(path: str):
        communicator = WebsocketCommunicator(APP, path)
        communicator.scope["user"] = admin
        try:
            connected, _ = await communicator.connect(timeout=WAIT_S)
            return connected
        finally:
            await communicator.disconnect()

    assert async_to_sync(scenario)(f"/ws/evaluations/runs/{run.pk}/") is True
    assert async_to_sync(scenario)("/ws/evaluations/runs/987654/") is False


def test_progress_is_pushed_at_most_twice_a_second_per_run_but_always_when_the_run_ends(monkeypatch):
    monkeypatch.setattr(live, "_last_push", {})
    layer = get_channel_layer()

    async def listen() -> str:
        channel = await layer.new_channel()
        for run_id in (7, 8):
            await layer.group_add(live.run_group(run_id), channel)
        return channel

    async def received(channel: str) -> list[int]:
        runs_seen = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=1.0)
            except TimeoutError:
                return runs_seen
            runs_seen.append(message["run"])

    channel = async_to_sync(listen)()
    for _ in range(5):
        live.send_progress(7)
    live.send_progress(8)
    live.send_progress(7, final=True)

    assert async_to_sync(received)(channel) == [7, 8, 7]
