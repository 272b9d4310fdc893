"""The first pass's real miss rate, measured on the quality checks moderators reviewed."""

from __future__ import annotations

import pytest

from api import quality_checks, routing
from api.models import Route
from console.models import Classification, Review
from tests.api.helpers import submit_texts


@pytest.fixture
def sampled(acme, trained_spam, admin_user):
    """Five closed items of the spam policy, every one sampled as a quality check."""
    spam, _ = trained_spam
    routing.set_routing_rule(actor=admin_user, version=spam, safe_below=1.0, violation_above=1.0, sample_rate=1.0,
                             violations_to_humans=False)
    states = submit_texts(acme[0], spam, [f"Your order {i} has shipped" for i in range(5)])
    assert {s["policies"][0]["route"] for s in states} == {"qc_sample"}
    return spam, [Classification.objects.get(item_id=s["id"], stage="fast") for s in states]


def test_the_miss_rate_counts_each_checks_latest_decision_and_skips_escalations(sampled, moderator):
    spam, checks = sampled
    for check in checks[:3]:
        Review.objects.create(classification=check, decision="approve", reviewer=moderator)
    Review.objects.create(classification=checks[3], decision="override", label="1", reason="hidden spam",
                          reviewer=moderator)
    Review.objects.create(classification=checks[4], decision="escalate", reviewer=moderator)
    Review.objects.create(classification=checks[0], decision="override", label="1", reason="missed it",
                          reviewer=moderator)
    rate = quality_checks.miss_rates([spam.policy_id])[spam.policy_id]
    assert (rate.reviewed, rate.missed, rate.rate) == (4, 2, 0.5)
    low, high = rate.interval
    assert 0.1 < low < 0.5 < high < 0.95


def test_reviews_of_items_the_first_pass_did_not_close_are_not_quality_checks(acme, trained_spam, admin_user,
                                                                            moderator):
    spam, _ = trained_spam
    routing.set_routing_rule(actor=admin_user, version=spam, safe_below=0.0, violation_above=0.0, sample_rate=1.0,
                             violations_to_humans=True)  # every item straight to people
    [state] = submit_texts(acme[0], spam, ["Win a free cruise now"])
    assert state["policies"][0]["route"] == "human"
    Review.objects.create(classification=Classification.objects.get(item_id=state["id"], stage="fast"),
                          decision="approve", reviewer=moderator)
    assert quality_checks.miss_rates([spam.policy_id]) == {}


def test_the_first_pass_page_shows_the_miss_rate_with_its_interval(admin_client_, sampled, moderator):
    _, checks = sampled
    Review.objects.create(classification=checks[0], decision="override", label="1", reason="spam",
                          reviewer=moderator)
    Review.objects.create(classification=checks[1], decision="approve", reviewer=moderator)
    page = admin_client_.get("/integrations/first-pass/").content.decode()
    assert "of 2 closed items sampled at random and reviewed, 1 were violations: a miss rate of 50%" in page
    assert "95% CI 0.095–0.905" in page


def test_targeted_checks_are_stored_apart_and_kept_out_of_the_miss_rate(acme, trained_spam, admin_user, moderator,
                                                                        admin_client_, settings):
    spam, _ = trained_spam
    settings.FIRST_PASS_QC_TARGETED_BAND, settings.FIRST_PASS_QC_TARGETED_RATE = 1.0, 1.0  # every closure near
    routing.set_routing_rule(actor=admin_user, version=spam, safe_below=1.0, violation_above=1.0, sample_rate=0.0,
                             violations_to_humans=False)
    states = submit_texts(acme[0], spam, [f"Your parcel {i} is on its way" for i in range(3)])
    routes = Route.objects.filter(item_id__in=[s["id"] for s in states])
    assert {(r.route, r.qc_targeted) for r in routes} == {("qc_sample", True)}
    for state in states:
        Review.objects.create(classification=Classification.objects.get(item_id=state["id"], stage="fast"),
                              decision="override", label="1", reason="spam after all", reviewer=moderator)

    targeted = quality_checks.miss_rates([spam.policy_id], targeted=True)[spam.policy_id]
    assert (targeted.reviewed, targeted.missed) == (3, 3)
    assert quality_checks.miss_rates([spam.policy_id]) == {}  # no random check: the miss rate is unknown
    page = admin_client_.get("/integrations/first-pass/").content.decode()
    assert "Targeted checks (closures nearest the threshold, not a fair sample): 3 of 3 reviewed" in page
    assert "the miss rate is unknown" in page

