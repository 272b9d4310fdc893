"""Retraining applies its nested cross-validated threshold only when it is safe; admins pin and revert."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from api import errors, routing, training
from api.models import FirstPassModel, Route, RoutingRule
from audit.models import AuditEvent
from tests.api.helpers import submit_texts
from tests.factories import make_policy
from tests.safeguard.helpers import separable_examples


@pytest.fixture
def checkable(settings):
    """Settings under which 80 held-out violations are enough to check the recall."""
    settings.FIRST_PASS_RECALL_MIN_VIOLATIONS = 50
    settings.FIRST_PASS_CATEGORY_MIN_VIOLATIONS = 15
    return settings


def _retrain(version, examples) -> FirstPassModel:
    training.import_labeled_examples(actor=None, actor_name="system:test", policy=version.policy,
                                     examples=examples, dataset="synthetic.csv")
    model = training.retrain_first_pass(policy=version.policy, force=True)
    assert model is not None
    return model


def test_retraining_applies_a_threshold_that_holds_recall_on_held_out_folds(spam, checkable):
    model = _retrain(spam, separable_examples())
    proposal = model.metrics["cv"]["proposal"]
    assert proposal["apply"] and proposal["held_out_recall"] >= 0.95
    assert proposal["held_out_violations"] == 80 and len(proposal["folds"]) == 5
    rule = RoutingRule.objects.get(policy_version=spam)
    assert rule.safe_below == pytest.approx(proposal["threshold"], abs=1e-6)
    assert (rule.set_by, rule.pinned, rule.model_id) == ("retraining", False, model.pk)
    assert rule.previous == {"safe_below": 0.1, "violation_above": 0.9, "sample_rate": 0.02,
                             "violations_to_humans": False, "model_id": None}  # the site defaults before
    assert "meets the target 0.95" in rule.reason
    event = AuditEvent.objects.get(action="routing_rule.retrained")
    assert event.actor_name == "system:first-pass" and event.before is None
    assert event.after["safe_below"] == rule.safe_below and event.after["model_id"] == model.pk
    assert routing.thresholds_for([spam])[spam.id].safe_below == rule.safe_below


def test_a_refused_retraining_keeps_routing_with_the_model_the_threshold_was_chosen_for(spam, checkable, acme):
    applied = _retrain(spam, separable_examples())
    checkable.FIRST_PASS_RECALL_MIN_VIOLATIONS = 1000
    refused = _retrain(spam, separable_examples(seed=1))
    assert not refused.metrics["cv"]["proposal"]["apply"]
    rule = RoutingRule.objects.get(policy_version=spam)
    assert (rule.model_id, rule.safe_below) == (applied.pk, applied.metrics["cv"]["proposal"]["threshold"])
    submit_texts(acme[0], spam, ["winner prize free cash", "meeting lunch invoice"])
    assert set(Route.objects.values_list("model_id", flat=True)) == {applied.pk}


def test_too_few_violations_to_check_keep_the_previous_thresholds_and_say_why(spam, spam_examples):
    model = _retrain(spam, spam_examples)  # 22 violations: recall 0.95 cannot be checked
    proposal = model.metrics["cv"]["proposal"]
    assert not proposal["apply"]
    assert "at least 100 held-out violations are needed" in proposal["reason"]
    assert not RoutingRule.objects.exists()
    assert not AuditEvent.objects.filter(action="routing_rule.retrained").exists()
    trained = AuditEvent.objects.get(action="first_pass.trained")
    assert trained.after["cv"]["proposal"]["reason"] == proposal["reason"]


def test_retraining_never_overwrites_an_admins_pinned_rule(spam, admin_user, checkable):
    routing.set_routing_rule(actor=admin_user, version=spam, safe_below=0.2, violation_above=0.9, sample_rate=0.05,
                             violations_to_humans=False)
    model = _retrain(spam, separable_examples())
    rule = RoutingRule.objects.get(policy_version=spam)
    assert (rule.safe_below, rule.pinned, rule.set_by) == (0.2, True, "admin")
    assert not model.metrics["cv"]["proposal"]["apply"]
    assert model.metrics["cv"]["proposal"]["reason"].startswith("Not applied: an admin pinned")
    # Unpinned, the next retraining sets it, and keeps the admin's quality-check share.
    routing.pin_routing_rule(actor=admin_user, version=spam, pinned=False)
    assert AuditEvent.objects.filter(action="routing_rule.unpinned", actor=admin_user).count() == 1
    model = _retrain(spam, separable_examples(seed=1))
    rule.refresh_from_db()
    assert (rule.set_by, rule.pinned, rule.sample_rate) == ("retraining", False, 0.05)
    assert rule.safe_below == pytest.approx(model.metrics["cv"]["proposal"]["threshold"], abs=1e-6)


def test_an_admin_reverts_a_retraining_change_and_the_revert_is_pinned(spam, admin_user, checkable):
    _retrain(spam, separable_examples())
    applied = RoutingRule.objects.get(policy_version=spam).safe_below
    rule = routing.revert_routing_rule(actor=admin_user, version=spam)
    assert (rule.safe_below, rule.pinned, rule.set_by) == (0.1, True, "admin")
    assert rule.previous["safe_below"] == applied
    event = AuditEvent.objects.get(action="routing_rule.reverted")
    assert (event.actor, event.before["safe_below"], event.after["safe_below"]) == (admin_user, applied, 0.1)
    assert routing.revert_routing_rule(actor=admin_user, version=spam).safe_below == applied  # undo the revert


def test_revert_and_pin_refuse_a_version_without_a_rule_and_change_nothing(spam, admin_user):
    with pytest.raises(errors.ClientError) as raised:
        routing.revert_routing_rule(actor=admin_user, version=spam)
    assert raised.value.field == "version"
    with pytest.raises(errors.ClientError):
        routing.pin_routing_rule(actor=admin_user, version=spam, pinned=True)
    assert not RoutingRule.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="routing_rule.").exists()


def test_a_category_under_the_recall_floor_makes_the_policy_close_nothing(spam, checkable, acme):
    checkable.FIRST_PASS_RECALL_TARGET = 0.75
    model = _retrain(spam, separable_examples(n_hidden=20))  # SP3 reads like safe mail: the first pass misses it
    proposal = model.metrics["cv"]["proposal"]
    assert proposal["apply"] and proposal["weak_categories"] == ["SP3"]
    rule = RoutingRule.objects.get(policy_version=spam)
    assert rule.safe_below == 0.0
    assert [c["category"] for c in rule.weak_categories] == ["SP3"]
    assert "under the floor" in rule.reason
    states = submit_texts(acme[0], spam, ["meeting lunch invoice attached order", "winner prize free cash"])
    assert [s["policies"][0]["route"] for s in states] == ["reasoner", "reasoner"]


def test_a_policy_with_only_a_draft_gets_its_threshold_on_the_draft(db, checkable):
    draft = make_policy(name="Draft spam", publish=False)
    model = _retrain(draft, separable_examples())
    rule = RoutingRule.objects.get(policy_version=draft)
    assert rule.set_by == "retraining"
    assert rule.safe_below == pytest.approx(model.metrics["cv"]["proposal"]["threshold"], abs=1e-6)


def test_the_retrain_command_says_whether_the_threshold_was_applied(spam, checkable):
    training.import_labeled_examples(actor=None, actor_name="system:test", policy=spam.policy,
                                     examples=separable_examples(), dataset="synthetic.csv")
    out = io.StringIO()
    call_command("retrain_first_pass", spam.policy.slug, stdout=out)
    rule = RoutingRule.objects.get(policy_version=spam)
    assert f"close below {rule.safe_below}: applied." in out.getvalue()
    assert "meets the target 0.95" in out.getvalue()
