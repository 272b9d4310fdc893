"""The demo's accountability trail (demo/accountability.py): decided verdicts with statements, an open
appeal for the second moderator and an upheld one."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from enforcement.models import Appeal, AppealStatus, Statement

pytestmark = pytest.mark.django_db


def test_the_demo_has_an_open_appeal_for_the_second_moderator_and_an_upheld_one(settings):
    settings.SAFEGUARD_BACKEND = ""
    out = io.StringIO()
    call_command("seed_demo", stdout=out)

    appeals = {a.external_id: a for a in Appeal.objects.select_related("original_reviewer", "decided_by",
                                                                      "action")}
    assert "2 demo appeals filed" in out.getvalue()
    assert set(appeals) == {"demo-complaint-1", "demo-complaint-2"}
    waiting, upheld = appeals["demo-complaint-1"], appeals["demo-complaint-2"]
    assert (waiting.status, waiting.original_reviewer.username) == (AppealStatus.OPEN, "moderator")
    assert (upheld.status, upheld.decided_by.username) == (AppealStatus.UPHELD, "moderator2")
    for appeal in appeals.values():  # approved violations: each restricts, with its statement of reasons
        assert appeal.action.restricts
        assert Statement.objects.current().filter(action=appeal.action).exists()

    call_command("seed_demo", stdout=io.StringIO())
    assert Appeal.objects.count() == 2
