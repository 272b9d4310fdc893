from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent
from enforcement.models import Action, EnforcementRule, Statement
from tests.console.reviewing import make_verdict
from tests.enforcement.helpers import approve
from tests.factories import make_policy

pytestmark = pytest.mark.django_db


def test_the_item_page_loads_the_enforcement_fragment(moderator, moderator_client,
                                                      django_capture_on_commit_callbacks):
    verdict = make_verdict()
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    page = moderator_client.get(f"/items/{verdict.item_id}/").content.decode()
    assert f'hx-get="/enforcement/items/{verdict.item_id}/"' in page
    fragment = moderator_client.get(f"/enforcement/items/{verdict.item_id}/", headers={"HX-Request": "true"})
    text = fragment.content.decode()
    assert fragment.status_code == 200
    assert str(Statement.objects.get().puid) in text
    assert "Remove the content" in text and "Links to a shop." in text


def test_a_moderator_edits_the_action_on_the_fragment(moderator, moderator_client,
                                                      django_capture_on_commit_callbacks):
    verdict = make_verdict()
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    action = Action.objects.get()
    response = moderator_client.post(f"/enforcement/actions/{action.pk}/",
                                     {"action": "age_gate", "duration_days": "", "facts": "Adult shop links.",
                                      "decision_ground": "incompatible_content", "legal_ground": ""},
                                     headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Age-gate the content" in response.content.decode()
    action.refresh_from_db()
    assert action.action == "age_gate"
    assert Statement.objects.get().facts == "Adult shop links."
    assert AuditEvent.objects.filter(action="enforcement.action_edited", actor_id=moderator.pk).exists()


def test_policy_writers_may_not_edit_actions_and_nobody_may_read_them(writer_client, nobody_client, moderator,
                                                                       django_capture_on_commit_callbacks):
    verdict = make_verdict()
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    action = Action.objects.get()
    assert writer_client.post(f"/enforcement/actions/{action.pk}/", {"action": "none"}).status_code == 403
    assert nobody_client.get(f"/enforcement/items/{verdict.item_id}/").status_code == 403


def test_a_policy_writer_sets_a_rule_on_the_policys_enforcement_page(writer_client, moderator_client):
    version = make_policy()
    page = writer_client.get(f"/enforcement/policies/{version.policy.slug}/")
    assert page.status_code == 200 and "<code>1</code>" in page.content.decode()
    response = writer_client.post(f"/enforcement/policies/{version.policy.slug}/",
                                  {"code": "1", "action": "label", "duration_days": "", "category": ""})
    assert response.status_code == 302
    assert EnforcementRule.objects.get(policy=version.policy, code="1").action == "label"
    refused = moderator_client.post(f"/enforcement/policies/{version.policy.slug}/",
                                    {"code": "1", "action": "remove"})
    assert refused.status_code == 403
    assert EnforcementRule.objects.get().action == "label"


def test_the_policy_page_links_to_its_enforcement_rules(writer_client):
    version = make_policy()
    page = writer_client.get(version.policy.get_absolute_url()).content.decode()
    assert f"/enforcement/policies/{version.policy.slug}/" in page


def test_admins_download_the_export_and_moderators_cannot(admin_client_, moderator_client, moderator,
                                                          django_capture_on_commit_callbacks):
    verdict = make_verdict()
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    day = Statement.objects.get().application_date.isoformat()
    response = admin_client_.get("/enforcement/export/", {"since": day})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    [batch] = json.loads(response.content)
    assert [s["puid"] for s in batch["statements"]] == [str(Statement.objects.get().puid)]
    assert admin_client_.get("/enforcement/export/").status_code == 200  # the form
    assert moderator_client.get("/enforcement/export/", {"since": day}).status_code == 403
