from __future__ import annotations

import random
from collections import Counter

import pytest

from api import errors, routing
from api.models import FirstPassModel, Route, RouteChoice
from console.models import Classification
from policies_app import services as policy_services
from safeguard import firstpass
from tests.api.helpers import submit_texts


def _rule(admin_user, version, **fields):
    values = {"safe_below": 0.1, "violation_above": 0.9, "sample_rate": 0.0, "violations_to_humans": False} | fields
    return routing.set_routing_rule(actor=admin_user, version=version, **values)


def test_a_cold_start_sends_everything_to_the_reasoner(acme, spam, spam_examples):
    states = submit_texts(acme[0], spam, [e.text for e in spam_examples])
    routes = Route.objects.all()
    assert routes.count() == len(spam_examples)
    assert {r.route for r in routes} == {RouteChoice.REASONER}
    assert {r.score for r in routes} == {None}
    assert not Classification.objects.filter(stage="fast").exists()
    assert Classification.objects.filter(stage="reasoner", status="queued").count() == len(spam_examples)
    assert {s["status"] for s in states} == {"pending"}


def test_routing_follows_the_thresholds(acme, trained_spam, spam_examples, admin_user):
    spam, model = trained_spam
    texts = [e.text for e in spam_examples]
    scores = firstpass.score(firstpass.loads(model.model), texts)
    safe_below, violation_above = float(sorted(scores)[len(scores) // 3]), float(sorted(scores)[-5])
    _rule(admin_user, spam, safe_below=safe_below, violation_above=violation_above)
    states = submit_texts(acme[0], spam, texts)
    by_item = {r.item_id: r for r in Route.objects.all()}
    for state, score in zip(states, scores, strict=True):
        route = by_item[state["id"]]
        assert route.score == pytest.approx(score)
        assert route.model_id == model.pk
        assert route.route == (RouteChoice.CLOSED if score < safe_below else RouteChoice.REASONER)
        assert state["policies"][0]["route"] == route.route
        assert state["status"] == ("decided" if score < safe_below else "pending")
    closed = [r.item_id for r in by_item.values() if r.route == RouteChoice.CLOSED]
    assert 0 < len(closed) < len(texts)
    assert not Classification.objects.filter(item_id__in=closed, stage="reasoner").exists()
    fast = Classification.objects.filter(stage="fast")
    assert fast.count() == len(texts)
    assert {c.status for c in fast} == {"done"}
    assert not fast.filter(needs_review=True).exists()
    for c in fast:
        assert c.confidence == pytest.approx(by_item[c.item_id].score)
        assert c.label == ("1" if c.confidence >= 0.5 else "0")


def test_confident_violations_go_straight_to_people_when_the_rule_says_so(acme, trained_spam, spam_examples,
                                                                          admin_user):
    spam, model = trained_spam
    texts = [e.text for e in spam_examples]
    scores = firstpass.score(firstpass.loads(model.model), texts)
    violation_above = float(sorted(scores)[-8])
    _rule(admin_user, spam, safe_below=0.0, violation_above=violation_above, violations_to_humans=True)
    states = submit_texts(acme[0], spam, texts)
    humans = [s for s, score in zip(states, scores, strict=True) if score >= violation_above]
    assert len(humans) >= 8
    for state in humans:
        assert state["policies"][0]["route"] == RouteChoice.HUMAN
        assert state["status"] == "in_review"
    human_ids = [s["id"] for s in humans]
    assert not Classification.objects.filter(item_id__in=human_ids, stage="reasoner").exists()
    assert Classification.objects.filter(item_id__in=human_ids, stage="fast", needs_review=True).count() == len(humans)


def test_the_quality_check_share_is_roughly_honoured(acme, trained_spam, admin_user):
    spam, _ = trained_spam
    _rule(admin_user, spam, safe_below=1.0, violation_above=1.0, sample_rate=0.25)
    states = submit_texts(acme[0], spam, [f"Thanks, your order {i} has shipped" for i in range(400)],
                     rng=random.Random(42))
    routes = [s["policies"][0]["route"] for s in states]
    sampled = routes.count(RouteChoice.QC_SAMPLE)
    assert routes.count(RouteChoice.CLOSED) + sampled == 400
    assert 0.18 <= sampled / 400 <= 0.32
    assert Classification.objects.filter(stage="fast", needs_review=True).count() == sampled
    # A sampled item is still decided (closed); people check it afterwards.
    assert {s["status"] for s in states} == {"decided"}


def test_choose_route_samples_the_configured_share_with_a_seeded_generator(settings):
    settings.FIRST_PASS_QC_TARGETED_BAND = 0.5  # closures scoring 0.15 to 0.3 are "near the threshold"
    settings.FIRST_PASS_QC_TARGETED_RATE = 0.2
    thresholds = routing.Thresholds(safe_below=0.3, violation_above=0.8, sample_rate=0.1)
    rng = random.Random(1)
    far = Counter(routing.choose_route(0.05, thresholds, rng) for _ in range(10_000))
    near = Counter(routing.choose_route(0.25, thresholds, rng) for _ in range(10_000))

    # Every closure has the same random chance, whatever its score: the random checks stay uniform.
    for drawn in (far, near):
        assert 900 <= drawn[routing.Choice(RouteChoice.QC_SAMPLE)] <= 1100
    # Only closures near the threshold get the targeted chance too: 20% of the 90% not drawn at random.
    assert far[routing.Choice(RouteChoice.QC_SAMPLE, qc_targeted=True)] == 0
    assert 1650 <= near[routing.Choice(RouteChoice.QC_SAMPLE, qc_targeted=True)] <= 1950
    assert routing.choose_route(0.3, thresholds, rng) == routing.Choice(RouteChoice.REASONER)
    assert routing.choose_route(0.95, thresholds, rng) == routing.Choice(RouteChoice.REASONER)
    assert routing.choose_route(None, thresholds, rng) == routing.Choice(RouteChoice.REASONER)


def test_a_version_without_a_rule_routes_by_its_policys_last_rule(trained_spam, admin_user, writer, settings):
    spam, _ = trained_spam
    settings.FIRST_PASS_SAFE_BELOW = 0.05
    assert routing.thresholds_for([spam])[spam.id].safe_below == 0.05
    _rule(admin_user, spam, safe_below=0.33)
    v2 = policy_services.save_version(
        actor=writer, policy=spam.policy, base_number=spam.number, text=spam.text + "\n- SP2.b Bulk.\n",
        label_scheme="binary", labels=None, output_format="binary", reasoning_effort="medium", change_note="bulk",
    )
    inherited = routing.thresholds_for([v2])[v2.id]
    assert (inherited.safe_below, inherited.inherited_from) == (0.33, spam.number)


def test_an_unreadable_model_routes_like_a_cold_start(acme, trained_spam, caplog):
    spam, model = trained_spam
    FirstPassModel.objects.filter(pk=model.pk).update(model=b"not a model")
    routing._cache.clear()
    with caplog.at_level("ERROR", logger="api.routing"):
        states = submit_texts(acme[0], spam, ["hello", "buy now"])
    assert [s["policies"][0]["route"] for s in states] == ["reasoner", "reasoner"]
    assert "cannot be read" in caplog.text


def test_routing_rules_refuse_disordered_thresholds(spam, admin_user):
    with pytest.raises(errors.ClientError):
        _rule(admin_user, spam, safe_below=0.8, violation_above=0.2)
    with pytest.raises(errors.ClientError):
        _rule(admin_user, spam, sample_rate=1.5)
