"""The admin pages: retention rules edited by admins (audited), erasures filed by item id or by source
and external id after a confirmation page."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from console.models import Item
from privacy.models import Erasure, RetentionRule
from privacy.redaction import marker
from tests.factories import make_item

pytestmark = pytest.mark.django_db

FILE_URL = "/admin/privacy/erasure/file/"


def test_an_admin_adds_a_retention_rule_and_it_is_audited(admin_client_):
    response = admin_client_.post("/admin/privacy/retentionrule/add/", {
        "source": "shop", "content_days": "30", "reasoning_days": "", "raw_output_days": "7"})

    assert response.status_code == 302
    rule = RetentionRule.objects.get()
    assert (rule.source, rule.content_days, rule.reasoning_days, rule.raw_output_days) == ("shop", 30, None, 7)
    event = AuditEvent.objects.get(action="retention_rule.created")
    assert event.after == {"source": "shop", "content_days": 30, "reasoning_days": None, "raw_output_days": 7}


def test_a_negative_number_of_days_is_refused_naming_the_field(admin_client_):
    response = admin_client_.post("/admin/privacy/retentionrule/add/", {"source": "shop", "content_days": "-1"})

    assert response.status_code == 200
    assert "content_days" in response.context["adminform"].form.errors
    assert not RetentionRule.objects.exists()


def test_people_who_are_not_admins_get_no_privacy_pages(moderator_client):
    for url in ("/admin/privacy/retentionrule/", FILE_URL):
        response = moderator_client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_an_erasure_is_confirmed_before_it_is_filed(admin_client_, admin_user):
    item = make_item(source="shop", external_id="post-9", content="call me on 555-0100")

    confirm = admin_client_.post(FILE_URL, {"source": "shop", "external_id": "post-9"})

    assert confirm.status_code == 200 and confirm.context["item"] == item
    assert b"call me on 555-0100" in confirm.content and b"cannot be undone" in confirm.content
    assert Item.objects.get(pk=item.pk).content == "call me on 555-0100"

    done = admin_client_.post(FILE_URL, {"item_id": item.pk, "confirm": "True"})

    erasure = Erasure.objects.get()
    assert done.status_code == 302 and done["Location"].endswith(f"/admin/privacy/erasure/{erasure.pk}/change/")
    assert (erasure.requested_by, erasure.requested_via) == (admin_user, admin_user.username)
    assert Item.objects.get(pk=item.pk).content == marker()
    assert admin_client_.get(done["Location"]).status_code == 200
    listing = admin_client_.get("/admin/privacy/erasure/")
    assert listing.status_code == 200 and b"File an erasure" in listing.content and b"post-9" in listing.content


@pytest.mark.parametrize(("data", "field"), [
    ({"item_id": "999999"}, "item_id"),
    ({"item_id": "abc"}, "item_id"),
    ({"external_id": "post-9"}, "source"),
    ({"source": "shop", "external_id": "nope"}, "external_id"),
])
def test_a_bad_erasure_request_names_the_field_and_erases_nothing(admin_client_, data, field):
    make_item(source="shop", external_id="post-9")

    response = admin_client_.post(FILE_URL, {**data, "confirm": "True"})

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Erasure.objects.exists()
