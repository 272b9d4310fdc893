from __future__ import annotations

import pytest
from django.utils import timezone

from api import clients, routing, training
from api.models import WebhookDelivery
from audit.models import AuditEvent
from console.models import Classification
from enforcement import actions, automated, exports, rules, transparency
from enforcement.models import Action, Statement
from safeguard import firstpass
from tests.api.conftest import SPAM_SET, _clean_redis  # noqa: F401 -- its autouse Redis cleanup, for RQ jobs
from tests.api.helpers import JsonCaller, run_jobs
from tests.console.reviewing import make_verdict
from tests.enforcement.helpers import approve, override
from tests.factories import make_item, make_policy

pytestmark = pytest.mark.django_db


def _recorded(classification: Classification) -> tuple[Action, AuditEvent]:
    action = Action.objects.get(classification=classification)
    event = AuditEvent.objects.get(action="enforcement.action_recorded", object_id=str(action.pk))
    return action, event


def test_a_confident_first_pass_violation_gets_a_fully_automated_action_and_statement():
    verdict = make_verdict(stage="fast", violation=True, needs_review=False, rationale="", rule_ids=[],
                           metadata={"source_type": "notice"})
    assert automated.record_for_items([verdict.item_id]) == 1

    action, event = _recorded(verdict)
    assert action.review is None
    assert (action.action, action.violation, action.decided_code) == ("remove", True, "1")
    assert action.decided_at == verdict.finished_at
    statement = action.statement
    assert (statement.automated_detection, statement.automated_decision) == (True, "fully")
    assert statement.source_type == "article_16"
    assert statement.facts == f"Decided under {verdict.policy_version.policy.name} by the model."
    assert statement.application_date == timezone.localdate(verdict.finished_at)
    assert statement.content_date == timezone.localdate(verdict.item.created_at)
    payload = transparency.submission(statement)
    assert transparency.problems(payload) == []
    assert payload["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert payload["automated_detection"] == "Yes"
    assert payload["source_type"] == "SOURCE_ARTICLE_16"
    [batch] = exports.submission_batches(statement.application_date, statement.application_date)
    assert [(s["puid"], s["automated_decision"]) for s in batch["statements"]] == [
        (str(statement.puid), "AUTOMATED_DECISION_FULLY")]
    assert event.actor_id is None and event.actor_name == "system:enforcement"
    assert event.after == {"action": "remove", "duration_days": None, "code": "1", "automated_decision": "fully",
                           "statement": str(statement.puid)}


def test_an_auto_closed_reasoner_violation_is_recorded_by_the_webhook_worker_after_its_batch(
        django_capture_on_commit_callbacks):
    version = make_policy(name="Shop spam")
    rules.set_rule(user=None, policy=version.policy, code="1", action="reduce_visibility", duration_days=30,
                   category="STATEMENT_CATEGORY_SCAMS_AND_FRAUD")
    with django_capture_on_commit_callbacks(execute=True):  # verdicts_stored: the batch's job is queued
        verdict = make_verdict(version, violation=True, needs_review=False, rule_ids=["SP2.a", "SP2.b"],
                               rationale="  Links to a pill shop.  ")
    run_jobs(lambda: Action.objects.filter(classification=verdict).exists(), queues_=("webhooks",))

    action, event = _recorded(verdict)
    assert (action.action, action.duration_days, action.review) == ("reduce_visibility", 30, None)
    statement = action.statement
    assert statement.automated_decision == "fully" and statement.automated_detection
    assert statement.facts == "Links to a pill shop."
    assert statement.cited_rules == ["SP2.a", "SP2.b"]
    assert statement.ground == "Shop spam, version 1, rules SP2.a, SP2.b"
    assert statement.category == "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"
    assert statement.end_date == (verdict.finished_at + timezone.timedelta(days=30)).date()
    payload = transparency.submission(statement)
    assert transparency.problems(payload) == []
    assert payload["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_DEMOTED"]


def test_the_automated_choice_agrees_with_the_rules_of_the_moderator_path():
    version = make_policy()
    rules.set_rule(user=None, policy=version.policy, code="SP2", action="label")
    rules.set_rule(user=None, policy=version.policy, code="1", action="age_gate")
    rules.set_rule(user=None, policy=version.policy, code="0", action="none")
    cases = [make_verdict(version, violation=True, needs_review=False, category="SP2"),  # category first
             make_verdict(version, violation=True, needs_review=False, category="SP9"),  # then the label
             make_verdict(version, violation=False, needs_review=False),
             make_verdict(make_policy(), violation=True, needs_review=False, category="SP2")]  # no rules: default
    automated.record_for_items(v.item_id for v in cases)
    for verdict in cases:
        expected = rules.action_for(policy_id=verdict.policy_version.policy_id,
                                    codes=[verdict.category, verdict.label], violation=verdict.violation)
        action = Action.objects.get(classification=verdict)
        assert (action.action, action.duration_days) == (expected.action, expected.duration_days)
        assert Statement.objects.filter(action=action).exists() == (expected.action != "none")
    assert [Action.objects.get(classification=v).action for v in cases] == ["label", "age_gate", "none", "remove"]


def test_a_verdict_that_goes_to_review_gets_its_action_only_once_a_moderator_decides(
        moderator, django_capture_on_commit_callbacks):
    verdict = make_verdict(violation=True, needs_review=True)
    assert automated.record_for_items([verdict.item_id]) == 0
    assert actions.record_for_items([verdict.item_id]) == []
    assert not Action.objects.exists()

    approve(django_capture_on_commit_callbacks, moderator, verdict)
    action = Action.objects.get(classification=verdict)
    assert action.review is not None and action.statement.automated_decision == "partially"


def test_a_first_pass_result_that_handed_the_item_on_is_not_final():
    version = make_policy()
    fast = make_verdict(version, stage="fast", violation=True, needs_review=False)
    Classification.objects.create(item=fast.item, policy_version=version, stage="reasoner")  # queued
    assert automated.record_for_items([fast.item_id]) == 0
    assert not Action.objects.exists()


def test_recording_again_changes_nothing():
    verdicts = [make_verdict(violation=True, needs_review=False) for _ in range(3)]
    assert automated.record_for_items(v.item_id for v in verdicts) == 3
    before = (list(Action.objects.order_by("id").values_list("id", "action")),
              list(Statement.objects.order_by("id").values_list("id", "puid")))
    assert automated.record_for_items(v.item_id for v in verdicts) == 0
    assert actions.record_for_items([v.item_id for v in verdicts]) == []
    assert (list(Action.objects.order_by("id").values_list("id", "action")),
            list(Statement.objects.order_by("id").values_list("id", "puid"))) == before
    assert AuditEvent.objects.filter(action="enforcement.action_recorded").count() == 3


def test_items_the_first_pass_closes_at_ingestion_get_their_actions_from_the_webhook_worker(
        django_capture_on_commit_callbacks):
    if not SPAM_SET.exists():
        pytest.skip(f"the public spam data set is missing ({SPAM_SET.resolve()})")
    version = make_policy(name="Spam")
    training.import_labeled_examples(actor=None, actor_name="system:test", policy=version.policy,
                                     examples=firstpass.read_labeled_csv(SPAM_SET), dataset="golden_dataset.csv")
    model = training.retrain_first_pass(policy=version.policy)
    assert model is not None
    texts = ["Can we move the meeting to 3pm tomorrow?", "Thanks, I will read the report tonight.",
             "FREE MONEY!!! click here to claim your prize www.win.example"]
    # Close below a threshold between the model's scores of the first ordinary message and of the spam
    # (40 training examples make no confident scores, so a fixed threshold would test the model, not this).
    scores = firstpass.score(firstpass.loads(model.model), texts)
    assert scores[0] < scores[2]
    routing.set_routing_rule(actor=None, version=version, safe_below=float(scores[0] + scores[2]) / 2,
                             violation_above=0.9, sample_rate=0.0, violations_to_humans=False)
    with django_capture_on_commit_callbacks(execute=True):  # ingestion commits: the job is queued
        items = [make_item(versions=[version], content=text) for text in texts]
    final = Classification.objects.filter(item__in=items, stage="fast", needs_review=False).exclude(
        item__classifications__stage="reasoner")
    assert final.exists()  # the data set's model closes ordinary messages
    assert not Action.objects.exists()  # not on the request path
    run_jobs(lambda: Action.objects.count() == final.count(), queues_=("webhooks",))
    for classification in Classification.objects.filter(item__in=items):
        recorded = Action.objects.filter(classification=classification).first()
        if classification in final:
            assert recorded is not None and recorded.review is None
            assert recorded.action == ("remove" if classification.violation else "none")
        else:
            assert recorded is None


def test_the_decision_webhook_and_the_statements_endpoint_carry_the_automated_action(
        admin_user, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    version = make_policy(name="Shop spam")
    _, token = clients.create_client(actor=admin_user, name="Platform A", source="platform-a",
                                     default_policies=[version.policy], webhook_url="http://127.0.0.1:9/hook")
    with django_capture_on_commit_callbacks(execute=True):
        verdict = make_verdict(version, violation=True, needs_review=False, source="platform-a")
    run_jobs(lambda: WebhookDelivery.objects.filter(item_id=verdict.item_id).exists(), queues_=("webhooks",))

    statement = Statement.objects.get(action__classification=verdict)
    [policy] = WebhookDelivery.objects.get(item_id=verdict.item_id).payload["item"]["policies"]
    assert policy["decided_by"] == "reasoner"
    assert policy["action"]["type"] == "remove"
    assert policy["statement"]["puid"] == str(statement.puid)
    assert policy["statement"]["automated_decision"] == "fully"
    assert policy["statement"]["transparency_database"]["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    [entry] = JsonCaller(token).get(f"/api/v1/items/{verdict.item_id}/statements").json()["data"]
    assert (entry["type"], entry["statement"]["puid"]) == ("remove", str(statement.puid))
    assert entry["statement"]["automated_decision"] == "fully"


def test_a_moderator_can_make_an_automated_action_restrict(moderator):
    verdict = make_verdict(violation=False, needs_review=False, rationale="Ordinary chat.")
    automated.record_for_items([verdict.item_id])
    action = Action.objects.get(classification=verdict)
    assert action.action == "none" and not Statement.objects.exists()
    actions.edit_action(user=moderator, action_id=action.pk, action="label")
    statement = Statement.objects.get(action=action)
    # The model decided, a person chose to restrict: partially automated.
    assert (statement.automated_decision, statement.facts) == ("partially", "Ordinary chat.")
    assert transparency.problems(transparency.submission(statement)) == []


def test_a_moderator_deciding_a_verdict_that_closed_on_its_own_replaces_its_automated_action(
        moderator, django_capture_on_commit_callbacks):
    verdict = make_verdict(violation=True, needs_review=False, rationale="Links to a pill shop.")
    automated.record_for_items([verdict.item_id])
    statement = Action.objects.get(classification=verdict).statement
    # A re-read sends the stored answer to review (reasoner.rereading); a moderator decides it is fine.
    Classification.objects.filter(pk=verdict.pk).update(needs_review=True)
    override(django_capture_on_commit_callbacks, moderator, verdict, label="0", reason="A recipe link")

    action = Action.objects.get(classification=verdict)
    assert (action.review.reviewer, action.action, action.violation) == (moderator, "none", False)
    statement.refresh_from_db()
    assert statement.withdrawn_at is not None  # same platform id, withdrawn: nothing is restricted now
    event = AuditEvent.objects.get(action="enforcement.action_redecided", object_id=str(action.pk))
    assert (event.actor, event.before["action"], event.after["action"]) == (moderator, "remove", "none")
