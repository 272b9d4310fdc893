"""Console admins manage accounts in Django's admin, but never privileges or other admins."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts.roles import Role, set_roles

pytestmark = pytest.mark.django_db

User = get_user_model()


def _change(client, user, **fields):
    url = reverse("admin:auth_user_change", args=[user.pk])
    data = {"username": user.username, "first_name": "", "last_name": "", "email": "", "is_active": "on",
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00", "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00", **fields}
    return client.post(url, data)


def test_a_console_admin_cannot_make_anyone_a_superuser_or_hand_out_permissions(admin_client_, moderator):
    response = _change(admin_client_, moderator, is_superuser="on", is_staff="on")

    moderator.refresh_from_db()
    assert response.status_code in (200, 302)
    assert (moderator.is_superuser, moderator.is_staff) == (False, False)


def test_a_console_admin_cannot_change_or_reset_another_admins_password(admin_client_, admin_user):
    other = User.objects.create_user(username="otto", password="first-password-1234")
    set_roles(actor=None, user=other, roles={Role.ADMIN})
    password_url = reverse("admin:auth_user_password_change", args=[other.pk])

    page = admin_client_.get(reverse("admin:auth_user_change", args=[other.pk]))
    reset = admin_client_.post(password_url, {"password1": "taken-over-9876", "password2": "taken-over-9876",
                                              "usable_password": "true"})

    other.refresh_from_db()
    # The page is at most a read-only view: nothing on it can be saved.
    assert page.status_code in (200, 403)
    assert b'name="_save"' not in page.content
    assert reset.status_code == 403
    assert other.check_password("first-password-1234")


def test_a_console_admin_still_manages_ordinary_accounts(admin_client_, moderator):
    response = _change(admin_client_, moderator, email="mo@example.org")

    moderator.refresh_from_db()
    assert response.status_code == 302
    assert moderator.email == "mo@example.org"


def test_a_superuser_may_grant_superuser_status(moderator):
    root = User.objects.create_superuser(username="root", password="root-password-1234")
    client = Client()
    client.force_login(root)
    response = _change(client, moderator, is_superuser="on", is_staff="on")

    moderator.refresh_from_db()
    assert response.status_code == 302
    assert moderator.is_superuser
