"""Publishing with evidence: the publish page shows runs on the policy's labelled sets, and a required set
blocks a draft that recalls less than the published version (an admin may publish anyway, audited)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from policies_app import services as policy_services
from policies_app.models import VersionStatus
from tests.evaluations.running import GIVEAWAY_ROWS, finished_run, giveaway_versions
from tests.factories import make_labeled_set

pytestmark = pytest.mark.django_db(transaction=True)

def _required_set(policy):
    labeled_set = make_labeled_set(policy, GIVEAWAY_ROWS, name="giveaways")
    labeled_set.required = True
    labeled_set.save(update_fields=["required"])
    return labeled_set


def test_a_required_set_blocks_a_draft_that_recalls_less_than_the_published_version():
    published, draft = giveaway_versions()
    labeled_set = _required_set(published.policy)
    assert finished_run(labeled_set, published).metrics["recall"] == 1.0
    assert finished_run(labeled_set, draft).metrics["recall"] == round(1 / 3, 4)

    with pytest.raises(policy_services.PolicyError, match="recalls 33.3% against 100.0%"):
        policy_services.publish_version(actor=None, policy=draft.policy, version=draft)

    draft.refresh_from_db()
    assert draft.status == VersionStatus.DRAFT


def test_a_required_set_without_a_run_of_the_draft_blocks_it():
    published, draft = giveaway_versions()
    _required_set(published.policy)

    with pytest.raises(policy_services.PolicyError, match="no finished run on the required set"):
        policy_services.publish_version(actor=None, policy=draft.policy, version=draft)


def test_an_admin_publishes_over_the_block_with_a_reason_and_the_override_is_audited(admin_user):
    published, draft = giveaway_versions()
    _required_set(published.policy)

    policy_services.publish_version(actor=admin_user, policy=draft.policy, version=draft,
                                    override_reason="legal asked for the old rule to go today")

    draft.refresh_from_db()
    assert draft.status == VersionStatus.PUBLISHED
    event = AuditEvent.objects.get(action="policy_version.publish_gate_overridden", object_id=str(draft.pk))
    assert event.after["reason"] == "legal asked for the old rule to go today"
    assert "no finished run on the required set 'giveaways'" in event.after["blocked_by"][0]


def test_a_policy_writer_cannot_override_the_block(writer):
    published, draft = giveaway_versions()
    _required_set(published.policy)

    with pytest.raises(policy_services.PolicyError, match="Only an admin"):
        policy_services.publish_version(actor=writer, policy=draft.policy, version=draft, override_reason="now")


def test_a_set_that_is_not_required_shows_evidence_and_blocks_nothing(writer_client):
    published, draft = giveaway_versions()
    labeled_set = make_labeled_set(published.policy, GIVEAWAY_ROWS, name="giveaways")
    finished_run(labeled_set, published)
    finished_run(labeled_set, draft)
    url = reverse("policies:publish", args=[draft.policy.slug, draft.number])

    page = writer_client.get(url)

    assert page.status_code == 200
    body = page.content.decode()
    assert "giveaways" in body and "Blocks:" not in body and "Publish version 2" in body
    assert writer_client.post(url, {"version": draft.pk}).status_code == 302
    draft.refresh_from_db()
    assert draft.status == VersionStatus.PUBLISHED


def test_the_publish_page_names_what_blocks_and_offers_admins_the_override(writer_client, admin_client_):
    published, draft = giveaway_versions()
    _required_set(published.policy)
    url = reverse("policies:publish", args=[draft.policy.slug, draft.number])

    assert "Blocks: v2 has no finished run" in writer_client.get(url).content.decode()
    assert "Publish anyway" not in writer_client.get(url).content.decode()
    assert "Publish anyway" in admin_client_.get(url).content.decode()
