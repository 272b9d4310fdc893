"""Failed sign-ins are throttled per account and per address, on the console's form and the admin's."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password-123"


def _attempt(client: Client, url: str, username: str, password: str, address: str = "10.1.2.3"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize("url", [reverse("login"), reverse("admin:login")])
def test_five_failures_lock_the_account_even_with_the_right_password(url, settings):
    get_user_model().objects.create_user(username="mo", password=PASSWORD, is_staff=True)
    client = Client()

    failures = [_attempt(client, url, "mo", f"guess-{n}", address=f"10.0.0.{n}") for n in range(5)]
    locked = _attempt(client, url, "mo", PASSWORD, address="10.0.0.99")

    # The form again with its error, until the fifth failure, which locks.
    assert [r.status_code for r in failures] == [200, 200, 200, 200, 429]
    assert locked.status_code == 429
    assert b"Sign-in paused" in locked.content
    assert "_auth_user_id" not in client.session


def test_five_failures_from_one_address_lock_that_address_for_every_account():
    for name in ("ann", "ben"):
        get_user_model().objects.create_user(username=name, password=PASSWORD)
    client = Client()

    for n in range(5):
        _attempt(client, reverse("login"), f"nobody-{n}", "guess")
    from_there = _attempt(client, reverse("login"), "ann", PASSWORD)
    elsewhere = _attempt(Client(), reverse("login"), "ben", PASSWORD, address="10.9.9.9")

    assert from_there.status_code == 429
    assert elsewhere.status_code == 302


def test_a_successful_sign_in_resets_the_count():
    get_user_model().objects.create_user(username="mo", password=PASSWORD)
    client = Client()

    for n in range(4):
        _attempt(client, reverse("login"), "mo", f"guess-{n}")
    assert _attempt(client, reverse("login"), "mo", PASSWORD).status_code == 302
    client.logout()
    for n in range(4):
        _attempt(client, reverse("login"), "mo", f"again-{n}")

    assert _attempt(client, reverse("login"), "mo", PASSWORD).status_code == 302
