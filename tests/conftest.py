"""The shared cast: one user per role, one with no role, and a signed-in client for each."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from accounts.roles import Role, set_roles

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _pages_without_collectstatic(settings, tmp_path):
    """Render pages in-process without a collectstatic run: with DEBUG off the manifest storage would
    refuse every {% static %}, and whitenoise warns about a missing STATIC_ROOT (warnings are errors).
    Servers started as subprocesses collect static files for real."""
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # The cast's passwords are never typed in-process; the default hasher costs about a second per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(username: str, roles: set[Role]):
    for role in roles:  # a transactional test empties the role groups the data migration made
        Group.objects.get_or_create(name=role.value)
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    set_roles(actor=None, user=user, roles=roles)
    return user


@pytest.fixture
def moderator(db):
    return _user("mo", {Role.MODERATOR})


@pytest.fixture
def second_moderator(db):
    """Another moderator: the one who may decide an appeal against `moderator`'s decision."""
    return _user("bea", {Role.MODERATOR})


@pytest.fixture
def writer(db):
    return _user("wendy", {Role.POLICY_WRITER})


@pytest.fixture
def admin_user(db):
    return _user("ada", {Role.ADMIN})


@pytest.fixture
def nobody(db):
    return _user("nora", set())


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def moderator_client(moderator) -> Client:
    return _client_for(moderator)


@pytest.fixture
def writer_client(writer) -> Client:
    return _client_for(writer)


@pytest.fixture
def admin_client_(admin_user) -> Client:
    return _client_for(admin_user)


@pytest.fixture
def nobody_client(nobody) -> Client:
    return _client_for(nobody)


@pytest.fixture
def role_client(request, moderator_client, writer_client, admin_client_, nobody_client) -> Client:
    """Indirectly parametrized by role name: moderator, writer, admin, nobody."""
    return {"moderator": moderator_client, "writer": writer_client, "admin": admin_client_,
            "nobody": nobody_client}[request.param]
