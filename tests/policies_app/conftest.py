"""Policies with a few versions, and a client for any member of the shared cast (or nobody signed in)."""

from __future__ import annotations

import pytest
from django.test import Client

from policies_app import services
from policies_app.models import PolicyVersion
from tests.factories import POLICY_TEXT, make_policy


@pytest.fixture
def spam_policy(writer) -> PolicyVersion:
    """"Spam" with version 1 published and version 2 a draft; returns version 2."""
    v1 = make_policy(actor=writer, name="Spam")
    return services.save_version(
        actor=writer, policy=v1.policy, base_number=1, text=POLICY_TEXT + "\n- SP2.b Bulk messages.\n",
        label_scheme="binary", labels=None, output_format="binary", reasoning_effort="medium",
        change_note="Bulk messages",
    )


@pytest.fixture
def client_as(request, db):
    """Indirectly parametrized by moderator, writer, admin, nobody or anonymous."""
    if request.param == "anonymous":
        return Client()
    return request.getfixturevalue({"admin": "admin_client_"}.get(request.param, f"{request.param}_client"))
