from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from console import decisions
from enforcement import actions, rules, transparency
from enforcement.models import Action, Statement
from tests.console.reviewing import make_verdict
from tests.enforcement.helpers import approve, override
from tests.factories import make_policy

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_a_restricting_decision_yields_an_action_and_a_statement_the_transparency_database_accepts(moderator):
    verdict = make_verdict(rule_ids=["SP2.a"], rationale="The post links to a shop selling pills.")
    decisions.approve(user=moderator, classification_id=verdict.pk, seen_review=0)  # commits: the signal fires

    action = Action.objects.get(classification=verdict)
    assert (action.action, action.violation, action.duration_days) == ("remove", True, None)
    statement = action.statement
    assert statement.facts == "The post links to a shop selling pills."
    assert statement.cited_rules == ["SP2.a"]
    assert verdict.policy_version.policy.name in statement.ground and "SP2.a" in statement.ground
    payload = transparency.submission(statement)
    assert transparency.problems(payload) == []
    for name in transparency.REQUIRED:
        assert payload[name] not in (None, "", [])
    assert payload["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_REMOVED"]
    assert payload["decision_ground"] == "DECISION_GROUND_INCOMPATIBLE_CONTENT"
    assert payload["automated_detection"] == "Yes"
    assert payload["automated_decision"] == "AUTOMATED_DECISION_PARTIALLY"
    assert payload["source_type"] == "SOURCE_VOLUNTARY"
    assert payload["category"] in transparency.CATEGORIES
    assert payload["content_type"] == ["CONTENT_TYPE_TEXT"]
    assert payload["puid"] == str(statement.puid)
    assert payload["application_date"] == timezone.localdate(action.decided_at).isoformat()
    assert payload["content_date"] == timezone.localdate(verdict.item.created_at).isoformat()
    assert len(payload["incompatible_content_ground"]) <= transparency.GROUND_MAX
    assert AuditEvent.objects.filter(action="enforcement.action_recorded", object_id=str(action.pk)).exists()


def test_an_approved_safe_verdict_yields_action_none_and_no_statement(moderator, django_capture_on_commit_callbacks):
    verdict = make_verdict(violation=False)
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    action = Action.objects.get(classification=verdict)
    assert action.action == "none"
    assert not Statement.objects.exists()


def test_an_override_takes_the_corrected_label_and_is_not_automated(moderator, django_capture_on_commit_callbacks):
    verdict = make_verdict(violation=False)
    override(django_capture_on_commit_callbacks, moderator, verdict, label="1")
    action = Action.objects.get(classification=verdict)
    assert (action.action, action.decided_code, action.violation) == ("remove", "1", True)
    assert action.statement.automated_decision == "not_automated"
    assert action.statement.automated_detection is False  # nothing automated flagged it
    assert action.statement.facts == "It advertises a shop with a link."
    assert transparency.problems(transparency.submission(action.statement)) == []


def test_an_escalation_records_no_action_until_the_final_decision(moderator, admin_user,
                                                                    django_capture_on_commit_callbacks):
    verdict = make_verdict()
    with django_capture_on_commit_callbacks(execute=True):
        escalation = decisions.escalate(user=moderator, classification_id=verdict.pk, seen_review=0, reason="unsure")
    assert not Action.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        decisions.approve(user=admin_user, classification_id=verdict.pk, seen_review=escalation.pk)
    assert Action.objects.get().action == "remove"


def test_a_policy_rule_chooses_the_action_and_its_duration(writer, moderator, django_capture_on_commit_callbacks):
    version = make_policy()
    rules.set_rule(user=writer, policy=version.policy, code="1", action="suspend_account", duration_days=7,
                   category="STATEMENT_CATEGORY_SCAMS_AND_FRAUD")
    event = AuditEvent.objects.get(action="enforcement.rule_set")
    assert event.after["action"] == "suspend_account" and event.actor_id == writer.pk
    verdict = make_verdict(version)
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    action = Action.objects.get(classification=verdict)
    assert (action.action, action.duration_days) == ("suspend_account", 7)
    payload = transparency.submission(action.statement)
    assert payload["decision_account"] == "DECISION_ACCOUNT_SUSPENDED"
    assert "decision_visibility" not in payload
    assert payload["end_date_account_restriction"] == (action.decided_at + timedelta(days=7)).date().isoformat()
    assert payload["category"] == "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"
    assert transparency.problems(payload) == []


def test_a_rule_refuses_an_unknown_action_or_category(writer):
    version = make_policy()
    with pytest.raises(rules.RuleError):
        rules.set_rule(user=writer, policy=version.policy, code="1", action="ban_forever")
    with pytest.raises(rules.RuleError):
        rules.set_rule(user=writer, policy=version.policy, code="1", action="remove", category="CATEGORY_MADE_UP")


def test_editing_the_action_and_the_facts_is_audited(moderator, django_capture_on_commit_callbacks):
    verdict = make_verdict()
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    action = Action.objects.get()
    actions.edit_action(user=moderator, action_id=action.pk, action="reduce_visibility", duration_days=30,
                        facts="Repeated shop links in a support thread.")
    statement = Statement.objects.get()
    assert statement.facts == "Repeated shop links in a support thread."
    assert statement.end_date == (action.decided_at + timedelta(days=30)).date()
    event = AuditEvent.objects.get(action="enforcement.action_edited")
    assert event.actor_id == moderator.pk
    assert event.before["action"] == "remove" and event.after["action"] == "reduce_visibility"
    assert event.before["facts"] == "Links to a shop." and event.after["facts"].startswith("Repeated")
    assert transparency.submission(statement)["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_DEMOTED"]

    actions.edit_action(user=moderator, action_id=action.pk, action="none")
    assert Statement.objects.current().count() == 0  # withdrawn, its puid never reused
    actions.edit_action(user=moderator, action_id=action.pk, action="remove")
    assert Statement.objects.current().get().puid == statement.puid


def test_illegal_content_needs_the_legal_ground_it_relies_on(moderator, django_capture_on_commit_callbacks):
    verdict = make_verdict()
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    action = Action.objects.get()
    with pytest.raises(actions.ActionError, match="legal ground"), transaction.atomic():
        actions.edit_action(user=moderator, action_id=action.pk, action="remove", decision_ground="illegal_content")
    actions.edit_action(user=moderator, action_id=action.pk, action="remove", decision_ground="illegal_content",
                        legal_ground="Unfair Commercial Practices Directive 2005/29/EC, Art. 5")
    payload = transparency.submission(Statement.objects.get())
    assert payload["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert payload["illegal_content_legal_ground"].startswith("Unfair Commercial")
    assert "incompatible_content_ground" not in payload
    assert transparency.problems(payload) == []


def test_a_notice_named_in_the_items_metadata_is_the_statements_source(moderator,
                                                                       django_capture_on_commit_callbacks):
    verdict = make_verdict(metadata={"source_type": "trusted_flagger"})
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    payload = transparency.submission(Statement.objects.get())
    assert payload["source_type"] == "SOURCE_TRUSTED_FLAGGER"


def test_facts_longer_than_the_database_allows_are_cut(moderator, django_capture_on_commit_callbacks):
    verdict = make_verdict(rationale="x" * 9000)
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    payload = transparency.submission(Statement.objects.get())
    assert len(payload["decision_facts"]) == transparency.FACTS_MAX
    assert len(payload["incompatible_content_explanation"]) == transparency.EXPLANATION_MAX
    assert transparency.problems(payload) == []


def test_the_validator_names_what_the_database_would_refuse():
    found = transparency.problems({"decision_visibility": ["DECISION_VISIBILITY_GONE"], "puid": "a b",
                                   "automated_decision": "AUTOMATED_DECISION_MAYBE", "decision_facts": "x" * 5001})
    assert "category is required" in found
    assert "decision_visibility 'DECISION_VISIBILITY_GONE' is not allowed" in found
    assert "automated_decision is not allowed" in found
    assert "decision_facts is longer than 5000" in found
    assert "puid may hold only letters, digits, - and _" in found


def test_recording_twice_keeps_one_action(moderator, django_capture_on_commit_callbacks):
    verdict = make_verdict()
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    actions.record_for_items([verdict.item_id])
    assert Action.objects.count() == 1 and Statement.objects.count() == 1
