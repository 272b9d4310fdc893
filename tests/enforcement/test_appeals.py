from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from console.models import Classification, Review
from enforcement import appeals, rules
from enforcement.models import Action, Appeal, Statement
from tests.console.reviewing import make_verdict, store_reasoner_result
from tests.enforcement.helpers import approve, override
from tests.factories import make_item, make_policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def decided(moderator, django_capture_on_commit_callbacks) -> Action:
    """A spam verdict the moderator approved: its content is removed, with a statement of reasons."""
    verdict = make_verdict(rule_ids=["SP2.a"], rationale="Links to a pill shop.")
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    return Action.objects.get(classification=verdict)


def _file(action: Action, **fields) -> tuple[Appeal, bool]:
    fields.setdefault("reason", "It was a joke between friends")
    fields.setdefault("external_id", "c-1")
    return appeals.file_appeal(item_id=action.item_id, filed_via="api:Test", **fields)


def _decide(capture, user, appeal: Appeal, **fields) -> Appeal:
    fields.setdefault("reason", "The link is to a recipe site")
    with capture(execute=True):
        return appeals.decide_appeal(user=user, appeal_id=appeal.pk, **fields)


# --- filing ---------------------------------------------------------------------------------------


def test_filing_records_the_appeal_against_the_action_with_its_deadline_and_audits_it(decided, moderator, settings):
    settings.APPEAL_DEADLINE_DAYS = 5
    appeal, created = _file(decided, complainant="notifier")
    assert created
    assert (appeal.action, appeal.status, appeal.complainant) == (decided, "open", "notifier")
    assert appeal.original_reviewer == moderator
    assert appeal.due_at - appeal.received_at == timedelta(days=5)
    event = AuditEvent.objects.get(action="appeal.filed", object_id=str(appeal.pk))
    assert (event.actor_id, event.actor_name) == (None, "api:Test")
    assert event.after["due_at"] == appeal.due_at.isoformat()


def test_the_same_external_id_with_the_same_complaint_returns_the_stored_appeal(decided):
    first, _ = _file(decided)
    again, created = _file(decided, reason="  It was a joke between friends ")
    assert (again.pk, created) == (first.pk, False)
    assert Appeal.objects.count() == 1
    assert AuditEvent.objects.filter(action="appeal.filed").count() == 1


@pytest.mark.parametrize("change", [{"reason": "Something else"}, {"complainant": "notifier"}])
def test_the_same_external_id_with_another_complaint_is_a_conflict_naming_external_id(decided, change):
    _file(decided)
    with pytest.raises(appeals.AppealConflict, match="c-1") as refused:
        _file(decided, **change)
    assert refused.value.field == "external_id"
    assert Appeal.objects.count() == 1


def test_a_second_open_appeal_on_the_same_decision_is_refused(decided):
    _file(decided)
    with pytest.raises(appeals.AppealConflict, match="already open"):
        _file(decided, external_id="c-2")
    assert Appeal.objects.count() == 1


@pytest.mark.parametrize(("fields", "field"), [
    ({"reason": "   "}, "reason"),
    ({"reason": "x" * (appeals.REASON_MAX + 1)}, "reason"),
    ({"complainant": "bystander"}, "complainant"),
    ({"external_id": "e" * 201}, "external_id"),
    ({"policy": "no-such-policy"}, "policy"),
])
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(decided, fields, field):
    with pytest.raises(appeals.AppealError) as refused:
        _file(decided, **fields)
    assert refused.value.field == field
    assert not Appeal.objects.exists()
    assert not AuditEvent.objects.filter(action="appeal.filed").exists()


def test_an_item_without_a_decided_action_cannot_be_appealed():
    verdict = make_verdict()  # awaiting review: nothing decided yet
    with pytest.raises(appeals.AppealError, match="no decided action"):
        appeals.file_appeal(item_id=verdict.item_id, reason="unfair", external_id="x", filed_via="api:Test")
    assert not Appeal.objects.exists()


def test_the_policy_named_chooses_which_decision_is_appealed(moderator, django_capture_on_commit_callbacks):
    spam, other = make_policy(name="Spam"), make_policy(name="Scams")
    with transaction.atomic():
        item = make_item(versions=[spam, other])
        stored = {c.policy_version_id: store_reasoner_result(c, status="done", violation=True, label="1",
                                                             rule_ids=["SP2.a"], confidence=0.9, needs_review=True)
                  for c in item.classifications.all()}
    verdict, second = stored[spam.pk], stored[other.pk]
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    approve(django_capture_on_commit_callbacks, moderator, second)
    appeal, _ = _file(Action.objects.get(classification=verdict), policy=spam.policy.slug)
    assert appeal.action.classification == verdict
    latest, _ = _file(Action.objects.get(classification=verdict), external_id="c-2")  # none named: the latest
    assert latest.action.classification == second


def test_only_admins_file_appeals_in_the_console(decided, moderator, admin_user):
    with pytest.raises(appeals.AppealError, match="Only admins"):
        appeals.file_by_admin(user=moderator, item_id=decided.item_id, reason="They wrote to us",
                              complainant="affected")
    appeal = appeals.file_by_admin(user=admin_user, item_id=decided.item_id, reason="They wrote to us",
                                   complainant="affected")
    assert (appeal.filed_by, appeal.filed_via, appeal.external_id) == (admin_user, "ada", "")
    assert AuditEvent.objects.get(action="appeal.filed").actor_id == admin_user.pk


# --- who decides ----------------------------------------------------------------------------------


def test_the_original_moderator_cannot_decide_the_appeal(decided, moderator, django_capture_on_commit_callbacks):
    appeal, _ = _file(decided)
    with pytest.raises(appeals.AppealError, match="You made the decision"):
        _decide(django_capture_on_commit_callbacks, moderator, appeal, outcome="upheld")
    appeal.refresh_from_db()
    assert (appeal.status, appeal.decided_by) == ("open", None)
    assert not AuditEvent.objects.filter(action="appeal.decided").exists()


def test_the_database_refuses_the_original_moderator_as_the_decider(decided, moderator):
    appeal, _ = _file(decided)
    with pytest.raises(IntegrityError, match="appeal_not_decided_by_original_reviewer"), transaction.atomic():
        Appeal.objects.filter(pk=appeal.pk).update(status="upheld", decided_by=moderator, decided_at=timezone.now(),
                                                   outcome_reason="fine")


def test_the_database_refuses_a_decided_appeal_without_a_person_or_a_reason(decided, second_moderator):
    # What a model, a job or an API client would have to write: an outcome with no person behind it.
    appeal, _ = _file(decided)
    for fields in ({"decided_by": None}, {"outcome_reason": ""}):
        values = {"status": "upheld", "decided_by": second_moderator, "decided_at": timezone.now(),
                  "outcome_reason": "fine", **fields}
        with pytest.raises(IntegrityError, match="appeal_decided_by_a_person_with_reason"), transaction.atomic():
            Appeal.objects.filter(pk=appeal.pk).update(**values)
    assert Appeal.objects.get(pk=appeal.pk).status == "open"


def test_no_one_without_the_moderator_role_decides_an_appeal(decided, writer, django_capture_on_commit_callbacks):
    appeal, _ = _file(decided)
    for user in (writer, None):
        with pytest.raises(appeals.AppealError, match="decided by moderators"):
            _decide(django_capture_on_commit_callbacks, user, appeal, outcome="upheld")
    assert Appeal.objects.get(pk=appeal.pk).status == "open"


@pytest.mark.parametrize(("fields", "field"), [
    ({"outcome": "upheld", "reason": " "}, "reason"),
    ({"outcome": "dismissed"}, "outcome"),
    ({"outcome": "reversed", "label": "7"}, "label"),
    ({"outcome": "reversed", "label": "1"}, "label"),  # the decision in force: that is upholding it
])
def test_a_bad_decision_is_refused_naming_the_field_and_changes_nothing(decided, second_moderator, fields, field,
                                                                        django_capture_on_commit_callbacks):
    appeal, _ = _file(decided)
    with pytest.raises(appeals.AppealError) as refused:
        _decide(django_capture_on_commit_callbacks, second_moderator, appeal, **fields)
    assert refused.value.field == field
    assert Appeal.objects.get(pk=appeal.pk).status == "open"
    assert Review.objects.count() == 1 and Action.objects.get().action == "remove"


def test_an_appeal_is_decided_once(decided, second_moderator, admin_user, django_capture_on_commit_callbacks):
    appeal, _ = _file(decided)
    _decide(django_capture_on_commit_callbacks, second_moderator, appeal, outcome="upheld")
    with pytest.raises(appeals.AppealConflict, match="decided already"):
        _decide(django_capture_on_commit_callbacks, admin_user, appeal, outcome="reversed", label="0")
    assert Appeal.objects.get(pk=appeal.pk).decided_by == second_moderator


# --- outcomes -------------------------------------------------------------------------------------


def test_upholding_changes_nothing_but_the_appeal(decided, second_moderator, django_capture_on_commit_callbacks):
    appeal, _ = _file(decided)
    statement = decided.statement
    _decide(django_capture_on_commit_callbacks, second_moderator, appeal, outcome="upheld", reason="It is an ad")
    appeal.refresh_from_db()
    assert (appeal.status, appeal.decided_by, appeal.outcome_reason, appeal.reversal) == (
        "upheld", second_moderator, "It is an ad", None)
    assert Review.objects.count() == 1
    action = Action.objects.get(pk=decided.pk)
    assert (action.action, action.review_id, action.updated_at) == ("remove", decided.review_id, decided.updated_at)
    assert Statement.objects.get().withdrawn_at is None and Statement.objects.get().updated_at == statement.updated_at
    event = AuditEvent.objects.get(action="appeal.decided")
    assert (event.actor_id, event.before, event.after) == (second_moderator.pk, {"status": "open"},
                                                           {"status": "upheld", "reason": "It is an ad"})
    # Decided: a new complaint against the same decision may be filed.
    assert _file(decided, external_id="c-2")[1]


def test_a_reversal_is_the_deciding_moderators_override_and_withdraws_the_statement(
        decided, second_moderator, django_capture_on_commit_callbacks):
    appeal, _ = _file(decided)
    puid = decided.statement.puid
    _decide(django_capture_on_commit_callbacks, second_moderator, appeal, outcome="reversed", label="0")
    appeal.refresh_from_db()
    review = appeal.reversal
    assert (review.decision, review.label, review.reviewer, review.reason) == (
        "override", "0", second_moderator, "The link is to a recipe site")
    assert Classification.objects.get(pk=decided.classification_id).review_status == "decided"
    action = Action.objects.get(pk=decided.pk)
    assert (action.action, action.violation, action.decided_code, action.review) == ("none", False, "0", review)
    statement = Statement.objects.get()
    assert statement.puid == puid and statement.withdrawn_at is not None
    audited = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"review.override", "enforcement.action_reversed", "appeal.decided"} <= audited
    reversed_event = AuditEvent.objects.get(action="enforcement.action_reversed")
    assert (reversed_event.before["action"], reversed_event.after["action"]) == ("remove", "none")
    assert reversed_event.after["withdrawn"] is True


def test_reversing_a_safe_decision_applies_the_policys_rule_and_writes_a_statement(
        moderator, second_moderator, writer, django_capture_on_commit_callbacks):
    version = make_policy()
    rules.set_rule(user=writer, policy=version.policy, code="1", action="reduce_visibility", duration_days=30)
    verdict = make_verdict(version, violation=False)
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    action = Action.objects.get()
    assert action.action == "none" and not Statement.objects.exists()
    appeal, _ = _file(action, complainant="notifier", reason="It is spam, look at the link")
    _decide(django_capture_on_commit_callbacks, second_moderator, appeal, outcome="reversed", label="1",
            reason="Promotes a shop with a link (SP2.a)")
    action.refresh_from_db()
    assert (action.action, action.duration_days, action.violation) == ("reduce_visibility", 30, True)
    statement = Statement.objects.get(action=action)
    assert statement.facts == "Promotes a shop with a link (SP2.a)"
    assert statement.automated_decision == "not_automated"
    assert statement.edited_by == second_moderator


def test_a_reversed_decision_can_be_appealed_again_and_its_reverser_is_then_the_original(
        moderator, second_moderator, django_capture_on_commit_callbacks):
    verdict = make_verdict(violation=False)
    override(django_capture_on_commit_callbacks, moderator, verdict, label="1")
    appeal, _ = _file(Action.objects.get())
    _decide(django_capture_on_commit_callbacks, second_moderator, appeal, outcome="reversed", label="0")
    again, _ = _file(Action.objects.get(), external_id="c-2", reason="It is spam after all")
    assert again.original_reviewer == second_moderator
    with pytest.raises(appeals.AppealError, match="You made the decision"):
        _decide(django_capture_on_commit_callbacks, second_moderator, again, outcome="upheld")
    # The first moderator did not make the decision now in force, so may decide this one.
    _decide(django_capture_on_commit_callbacks, moderator, again, outcome="reversed", label="1")
    assert Action.objects.get().action == "remove"


def test_a_decision_no_person_made_is_appealed_and_any_moderator_reverses_it(moderator,
                                                                              django_capture_on_commit_callbacks):
    verdict = make_verdict(needs_review=False)  # the model's verdict stood without review
    # The action of an automated decision, as the enforcement app records one (Action.review empty).
    action = Action.objects.create(classification=verdict, item=verdict.item, review=None,
                                   policy_version=verdict.policy_version, decided_code="1", violation=True,
                                   action="remove", decided_at=verdict.finished_at)
    appeal, _ = _file(action)
    assert appeal.original_reviewer is None
    _decide(django_capture_on_commit_callbacks, moderator, appeal, outcome="reversed", label="0")
    action.refresh_from_db()
    assert (action.action, action.review.reviewer, action.review.decision) == ("none", moderator, "override")
    assert Classification.objects.get(pk=verdict.pk).review_status == "decided"
