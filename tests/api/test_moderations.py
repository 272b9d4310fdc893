"""/v1/moderations through the official openai SDK against a real server (pytest-django's live_server)."""

from __future__ import annotations

import threading
import time

import openai
import pytest
from django.db import connection

from api import routing
from api.models import Route
from console.models import Item
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine

pytestmark = pytest.mark.django_db(transaction=True)

SAFE = "Your ticket to Mumbai is attached. Please review terms and conditions for making changes."
SPAM = "Today is your lucky day! You have won the jackpot, claim it by entering your bank details."


def _sdk(server, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=token, max_retries=0, timeout=30)


def _close_at(admin_user, version, threshold: float) -> None:
    routing.set_routing_rule(actor=admin_user, version=version, safe_below=threshold, violation_above=1.0,
                              sample_rate=0.0, violations_to_humans=False)


def test_the_openai_sdk_moderates_through_the_first_pass(server, acme, trained_spam, admin_user, settings):
    settings.API_MODERATION_WAIT_S = 0
    spam, _ = trained_spam
    _close_at(admin_user, spam, 0.5)
    with _sdk(server, acme[1]) as client:
        response = client.moderations.create(input=[SAFE, SPAM], model="omni-moderation-latest")
    assert response.id.startswith("modr-")
    assert response.model == "omni-moderation-latest"
    safe, spammy = response.results
    assert safe.flagged is False
    assert safe.categories.model_extra == {"spam": False}
    assert 0 <= safe.category_scores.model_extra["spam"] < 0.5
    assert safe.model_extra["status"] == "decided"
    # Not cleared yet (the reasoner has not answered): held, never passed silently.
    assert spammy.flagged is True
    assert spammy.categories.model_extra == {"spam": True}
    assert spammy.model_extra["status"] == "pending"
    items = Item.objects.filter(pk__in=[safe.model_extra["item_id"], spammy.model_extra["item_id"]])
    assert {i.source for i in items} == {"acme"}
    assert {i.metadata["via"] for i in items} == {"v1/moderations"}
    assert sorted(Route.objects.values_list("route", flat=True)) == ["closed", "reasoner"]


def test_the_openai_sdk_gets_the_reasoners_verdicts_when_it_answers_in_time(server, acme, spam, settings):
    settings.API_MODERATION_WAIT_S = 15
    settings.API_WAIT_POLL_S = 0.05
    done = threading.Event()

    def reasoner_worker() -> None:
        # A scripted reasoner working beside the server, as manage.py safeguard_worker would.
        try:
            settled, deadline = 0, time.monotonic() + 15
            while settled < 3 and time.monotonic() < deadline:
                settled += run_once(ScriptedEngine())
                time.sleep(0.05)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=reasoner_worker, daemon=True)
    thread.start()
    with _sdk(server, acme[1]) as client:
        response = client.moderations.create(input=["see you at lunch #verdict=0", "free money, click here",
                                                    "buy now #unparsable"])
    assert done.wait(20)
    thread.join(5)
    calm, spammy, unreadable = response.results
    assert (calm.flagged, calm.model_extra["status"]) == (False, "decided")
    assert calm.category_scores.model_extra["spam"] == 0.0
    # The scripted reasoner calls this spam; a violation goes to people, so it is held.
    assert (spammy.flagged, spammy.model_extra["status"]) == (True, "in_review")
    # No usable answer is never "safe".
    assert (unreadable.flagged, unreadable.model_extra["status"]) == (True, "in_review")


def test_a_cold_start_flags_everything_until_the_reasoner_clears_it(server, acme, spam, settings):
    settings.API_MODERATION_WAIT_S = 0
    with _sdk(server, acme[1]) as client:
        response = client.moderations.create(input="hello there")
    [result] = response.results
    assert result.flagged is True
    assert result.model_extra["status"] == "pending"
    assert Route.objects.get().route == "reasoner"


def test_the_openai_sdk_sees_our_errors(server, acme, spam):
    with _sdk(server, acme[1]) as client:
        with pytest.raises(openai.BadRequestError) as bad:
            client.moderations.create(input=["fine", 42])
        assert bad.value.body["param"] == "input[1]"
        assert "input[1]" in bad.value.message
    with _sdk(server, "mc_wrong") as client, pytest.raises(openai.AuthenticationError):
        client.moderations.create(input="hi")
    assert not Item.objects.exists()
