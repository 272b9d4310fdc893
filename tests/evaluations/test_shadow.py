"""Shadow mode: a draft classifies a share of live items beside the published version and changes nothing."""

from __future__ import annotations

import pytest

from api.models import WebhookDelivery
from audit.models import AuditEvent
from console import decisions
from console.models import Classification
from evaluations import shadow
from evaluations.models import EvaluationResult, RunStatus
from policies_app import services as policy_services
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.factories import POLICY_TEXT, make_item, make_policy

pytestmark = pytest.mark.django_db


def _draft(published):
    return policy_services.save_version(actor=None, policy=published.policy, base_number=published.number,
                                        text=POLICY_TEXT + "\nMention giveaways.",
                                        label_scheme="binary", output_format="binary", reasoning_effort="medium",
                                        labels=[], change_note="try giveaways")


def _drain() -> None:
    while run_once(ScriptedEngine(), "w1"):
        pass


def test_a_shadowed_draft_classifies_live_items_without_routing_deciding_or_notifying():
    published = make_policy()
    draft = _draft(published)
    run = shadow.start_shadow(actor=None, version=draft, share=1.0)
    items = [make_item(versions=[published], content=text) for text in
             ("free money now", "lunch?", "win the giveaway #if=giveaways")]
    deliveries = WebhookDelivery.objects.count()
    _drain()

    results = {r.item_id: r for r in EvaluationResult.objects.filter(run=run)}
    assert set(results) == {i.pk for i in items}
    assert {r.status for r in results.values()} == {"done"}
    # The published version's classifications are the only ones; the draft decided nothing.
    assert not Classification.objects.filter(policy_version=draft).exists()
    assert Classification.objects.filter(policy_version=published, status="done").count() == 3
    assert WebhookDelivery.objects.count() == deliveries
    assert results[items[2].pk].violation is True  # the draft mentions giveaways, the published one does not

    agreement = shadow.agreement(run)
    assert (agreement.compared_published, agreement.agree_published) == (3, 2)
    assert [d["item"] for d in agreement.disagreements] == [items[2].pk]


def test_agreement_with_moderators_counts_their_final_decisions(moderator):
    published = make_policy()
    run = shadow.start_shadow(actor=None, version=_draft(published), share=1.0)
    spam = make_item(versions=[published], content="free money now")
    lunch = make_item(versions=[published], content="lunch at noon #verdict=1")  # both versions call it spam
    _drain()
    decisions.approve(user=moderator, classification_id=spam.classifications.get().pk, seen_review=0)
    decisions.override(user=moderator, classification_id=lunch.classifications.get(stage="reasoner").pk,
                       seen_review=0, label="0", reason="an ordinary lunch invitation")

    agreement = shadow.agreement(run)

    assert (agreement.compared_moderators, agreement.agree_moderators) == (2, 1)
    assert agreement.as_dict()["moderator_agreement"] == 0.5


def test_a_share_samples_the_same_items_every_time_and_roughly_that_many():
    published = make_policy()
    run = shadow.start_shadow(actor=None, version=_draft(published), share=0.3)
    for n in range(200):
        make_item(versions=[published], content=f"message {n}")

    sampled = EvaluationResult.objects.filter(run=run).count()

    assert 30 <= sampled <= 90
    assert all(shadow._sampled(run.pk, r.item_id, 0.3) for r in EvaluationResult.objects.filter(run=run))


def test_the_published_version_a_second_shadow_and_a_bad_share_are_refused():
    published = make_policy()
    draft = _draft(published)
    with pytest.raises(shadow.ShadowError, match="published version"):
        shadow.start_shadow(actor=None, version=published, share=0.5)
    with pytest.raises(shadow.ShadowError, match="share"):
        shadow.start_shadow(actor=None, version=draft, share=1.5)
    shadow.start_shadow(actor=None, version=draft, share=0.5)
    with pytest.raises(shadow.ShadowError, match="already shadows"):
        shadow.start_shadow(actor=None, version=draft, share=0.5)


def test_stopping_a_shadow_cancels_what_is_queued_and_keeps_its_agreement():
    published = make_policy()
    run = shadow.start_shadow(actor=None, version=_draft(published), share=1.0)
    make_item(versions=[published], content="free money")

    stopped = shadow.stop_shadow(actor=None, run=run)

    assert stopped.status == RunStatus.DONE
    assert stopped.results.get().status == "cancelled"
    assert "results" in stopped.metrics
    assert AuditEvent.objects.filter(action="evaluation_run.shadow_stopped", object_id=str(run.pk)).exists()
