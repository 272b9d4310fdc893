"""The review dashboard: queue depth, oldest item, decisions per hour, agreement per policy version."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from console import dashboard, decisions
from console.models import Classification, Review
from tests.console.reviewing import make_verdict
from tests.factories import make_policy

URL = reverse("console:dashboard")


@pytest.mark.parametrize(
    ("role_client", "status"), [("moderator", 200), ("admin", 200), ("writer", 200), ("nobody", 403)],
    indirect=["role_client"],
)
def test_moderators_admins_and_policy_writers_see_the_dashboard(role_client, status):
    assert role_client.get(URL).status_code == status


def test_an_empty_console_says_so(moderator_client):
    html = moderator_client.get(URL).content.decode()

    assert "Nothing waits." in html and "No reviews yet" in html


def test_it_shows_queue_depth_and_the_oldest_waiting_item(moderator_client):
    version = make_policy()
    old = make_verdict(version)
    Classification.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=5))
    make_verdict(version, status="failed")

    response = moderator_client.get(URL)

    html = response.content.decode()
    assert [(bar.label, bar.value) for bar in response.context["depth"].bars] == [
        ("Verdicts to review", 1), ("No usable verdict", 1), ("Quality checks", 0), ("Escalated", 0)
    ]
    assert f'<a href="/items/{old.item_id}/?c={old.pk}">#{old.item_id}</a> waiting 5' in html
    assert 'class="bar depth"' in html


def test_decisions_per_hour_are_stacked_by_kind(moderator, moderator_client):
    version = make_policy()
    for _n in range(3):
        decisions.approve(user=moderator, classification_id=make_verdict(version).pk, seen_review=0)
    decisions.override(user=moderator, classification_id=make_verdict(version).pk, seen_review=0, label="0",
                      reason="Not spam")

    response = moderator_client.get(URL)

    columns = response.context["columns"]
    assert len(columns) == 24 and columns[-1].total == 4
    assert [(s["decision"], s["n"]) for s in columns[-1].segments] == [("approve", 3), ("override", 1)]
    assert response.context["peak"] == 4 and "last 24 hours: 4" in response.content.decode()


def test_kappa_is_one_for_perfect_agreement_zero_for_chance_and_undefined_without_variety():
    assert dashboard.cohens_kappa({(True, True): 5, (False, False): 5}) == 1
    assert dashboard.cohens_kappa({(True, True): 1, (True, False): 1, (False, True): 1, (False, False): 1}) == 0
    assert dashboard.cohens_kappa({(True, True): 4}) is None
    assert dashboard.cohens_kappa({}) is None
    # 20 pairs: 15 agree; each rater says yes half the time -> (0.75 - 0.5) / 0.5
    assert dashboard.cohens_kappa({(True, True): 8, (False, False): 7, (True, False): 2, (False, True): 3}) == 0.5


def test_each_policy_version_shows_approval_share_kappa_reasons_and_rules(moderator, moderator_client):
    version = make_policy(name="Spam")
    verdicts = [make_verdict(version, violation=n % 2 == 0, content=f"m{n}") for n in range(6)]
    for c in verdicts[:4]:
        decisions.approve(user=moderator, classification_id=c.pk, seen_review=0)
    decisions.override(user=moderator, classification_id=verdicts[4].pk, seen_review=0, label="0",
                      reason="Hidden link")  # no rule named: the rules it cited count
    decisions.override(user=moderator, classification_id=verdicts[5].pk, seen_review=0, label="1",
                      reason=" hidden link ", misapplied_rule="SP0.a")

    response = moderator_client.get(URL)

    [stats] = response.context["versions"]
    assert (stats.approved, stats.overridden) == (4, 2)
    assert stats.approval_share == pytest.approx(4 / 6)
    # model vs people: agree on 4, disagree on 2, each says "violation" half the time
    assert stats.kappa == pytest.approx((4 / 6 - 0.5) / 0.5)
    assert [(bar.label, bar.value) for bar in stats.reasons.bars] == [("hidden link", 2)]
    assert sorted((bar.label, bar.value) for bar in stats.rules.bars) == [("SP0.a", 1), ("SP2.a", 1)]
    html = response.content.decode()
    assert "67%" in html and "0.33" in html and "hidden link" in html
    assert Review.objects.count() == 6
