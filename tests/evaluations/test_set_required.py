"""The "required" flag of a labelled set: its audited service, the toggle on the set's page, and the
publish gate it then arms (evaluations.gate)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from evaluations import sets
from policies_app import services as policy_services
from policies_app.models import VersionStatus
from tests.evaluations.running import GIVEAWAY_ROWS, finished_run, giveaway_versions
from tests.factories import make_labeled_set, make_policy

pytestmark = pytest.mark.django_db(transaction=True)

def _toggle_url(labeled_set) -> str:
    return reverse("evaluations:set-required", args=[labeled_set.pk])


def _changes(labeled_set):
    return AuditEvent.objects.filter(action="labeled_set.required_changed", object_id=str(labeled_set.pk))


def test_marking_a_set_required_is_audited_with_before_and_after(writer):
    labeled_set = make_labeled_set(make_policy().policy, GIVEAWAY_ROWS)

    sets.set_required(actor=writer, labeled_set=labeled_set, required=True)

    labeled_set.refresh_from_db()
    assert labeled_set.required is True
    [event] = _changes(labeled_set)
    assert (event.before, event.after, event.actor_id) == ({"required": False}, {"required": True}, writer.pk)


def test_setting_the_flag_it_already_has_changes_and_audits_nothing():
    labeled_set = make_labeled_set(make_policy().policy, GIVEAWAY_ROWS)

    sets.set_required(actor=None, labeled_set=labeled_set, required=False)

    assert not _changes(labeled_set).exists()


def test_the_set_page_explains_the_toggle_with_the_configured_margin(writer_client, settings):
    settings.EVAL_PUBLISH_RECALL_MARGIN = 0.05
    labeled_set = make_labeled_set(make_policy().policy, GIVEAWAY_ROWS)

    body = writer_client.get(labeled_set.get_absolute_url()).content.decode()

    assert _toggle_url(labeled_set) in body and "Require it to publish" in body
    assert "drops more than 5 points below the published version's cannot be published" in body


def test_the_toggle_answers_htmx_with_its_own_part_of_the_page_and_is_audited(writer_client, writer):
    labeled_set = make_labeled_set(make_policy().policy, GIVEAWAY_ROWS)

    response = writer_client.post(_toggle_url(labeled_set), {"required": "1"}, HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<form id="set-required"') and "Stop requiring it" in body
    labeled_set.refresh_from_db()
    assert labeled_set.required is True
    assert _changes(labeled_set).get().actor_id == writer.pk


def test_the_toggle_without_htmx_redirects_to_the_set_with_a_message(writer_client):
    labeled_set = make_labeled_set(make_policy().policy, GIVEAWAY_ROWS)
    sets.set_required(actor=None, labeled_set=labeled_set, required=True)

    response = writer_client.post(_toggle_url(labeled_set), {"required": "0"}, follow=True)

    assert "is no longer required to publish" in response.content.decode()
    labeled_set.refresh_from_db()
    assert labeled_set.required is False


def test_the_toggle_is_refused_to_moderators_and_changes_nothing(moderator_client):
    labeled_set = make_labeled_set(make_policy().policy, GIVEAWAY_ROWS)

    assert moderator_client.post(_toggle_url(labeled_set), {"required": "1"}).status_code == 403

    labeled_set.refresh_from_db()
    assert labeled_set.required is False
    assert not _changes(labeled_set).exists()


def test_a_set_required_through_its_page_blocks_a_draft_that_recalls_less_until_it_is_released(writer_client):
    published, draft = giveaway_versions()
    labeled_set = make_labeled_set(published.policy, GIVEAWAY_ROWS, name="giveaways")
    writer_client.post(_toggle_url(labeled_set), {"required": "1"}, HTTP_HX_REQUEST="true")

    with pytest.raises(policy_services.PolicyError, match="no finished run on the required set"):
        policy_services.publish_version(actor=None, policy=draft.policy, version=draft)
    finished_run(labeled_set, published)
    finished_run(labeled_set, draft)
    with pytest.raises(policy_services.PolicyError, match="recalls 33.3% against 100.0%"):
        policy_services.publish_version(actor=None, policy=draft.policy, version=draft)
    draft.refresh_from_db()
    assert draft.status == VersionStatus.DRAFT

    writer_client.post(_toggle_url(labeled_set), {"required": "0"}, HTTP_HX_REQUEST="true")
    policy_services.publish_version(actor=None, policy=draft.policy, version=draft)

    draft.refresh_from_db()
    assert draft.status == VersionStatus.PUBLISHED
