"""Decisions: approve, override, escalate, skip, bulk approve; conflicts are refused, never overwritten."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.roles import Role, set_roles
from audit.models import AuditEvent
from console import claims, decisions, errors
from console.models import Claim, Classification, Review, Skip
from console.queues import Filters
from tests.console.reviewing import make_verdict
from tests.factories import make_policy

CATEGORIES_POLICY = """# Harassment

## Instructions
Answer with the category code.

## Violating content criteria
- HB1 Threats. HB1.a Threats of violence.
- HB2 Insults aimed at a person.

## Safe content criteria
- HB0 Ordinary disagreement.
"""


def _user(username: str, *roles: Role):
    # A transactional test empties every table after it, the role groups of the data migration too.
    for role in Role:
        Group.objects.get_or_create(name=role.value)
    user = get_user_model().objects.create_user(username=username)
    set_roles(actor=None, user=user, roles=set(roles))
    return user


@pytest.fixture
def bob(db):
    return _user("bob", Role.MODERATOR)


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


def _post(client: Client, name: str, classification, **data):
    return client.post(reverse(f"console:{name}", args=[classification.pk]), {"seen": 0, **data})


def _state(classification) -> tuple[str, str | None]:
    classification.refresh_from_db()
    return classification.review_status, classification.queue


# --- approve ---------------------------------------------------------------------------------------


def test_approving_decides_the_verdict_audits_it_and_tells_the_pages(moderator, django_capture_on_commit_callbacks):
    verdict = make_verdict()
    claims.claim_item(user=moderator, item_id=verdict.item_id)

    with django_capture_on_commit_callbacks() as callbacks:
        review = decisions.approve(user=moderator, classification_id=verdict.pk, seen_review=0)

    assert (review.decision, review.reviewer) == ("approve", moderator)
    assert _state(verdict) == ("decided", None)
    event = AuditEvent.objects.get(action="review.approve")
    assert event.object_id == str(verdict.pk) and event.after["review"] == review.pk
    assert not Claim.objects.exists()  # nothing left on the item: the claim is given back
    # the claim's release, the decision's broadcast, the decision webhook
    assert len(callbacks) == 3


def test_the_approve_view_moves_on_to_the_next_free_item(moderator_client, moderator):
    version = make_policy()
    first, second = make_verdict(version), make_verdict(version)
    moderator_client.get(reverse("console:item", args=[first.item_id]))

    response = moderator_client.post(reverse("console:approve", args=[first.pk]), {"seen": 0}, follow=True)

    assert response.redirect_chain[0][0] == reverse("console:item", args=[second.item_id])
    assert "Approved the" in response.content.decode() and "Next item:" in response.content.decode()
    assert Claim.objects.get().item_id == second.item_id


def test_an_htmx_decision_answers_with_a_client_redirect(moderator_client):
    verdict = make_verdict()

    response = moderator_client.post(reverse("console:approve", args=[verdict.pk]), {"seen": 0},
                                     headers={"HX-Request": "true"})

    assert response.status_code == 200 and response["HX-Redirect"].startswith(reverse("console:items"))


def test_a_decision_someone_made_meanwhile_is_refused_never_overwritten(moderator_client, bob):
    verdict = make_verdict()
    decisions.approve(user=bob, classification_id=verdict.pk, seen_review=0)

    response = _post(moderator_client, "override", verdict, label="0", reason="Not spam")

    assert response.status_code == 409
    assert "bob already decided this" in response.content.decode()
    assert "your override was not saved" in response.content.decode()
    assert list(Review.objects.values_list("decision", "reviewer__username")) == [("approve", "bob")]


def test_a_decision_on_a_stale_page_is_refused(moderator, bob):
    verdict = make_verdict()
    decisions.escalate(user=bob, classification_id=verdict.pk, seen_review=0, reason="Unsure")
    admin = _user("ada", Role.ADMIN)

    with pytest.raises(errors.DecisionConflict, match="bob escalated it while you had this item open"):
        decisions.approve(user=admin, classification_id=verdict.pk, seen_review=0)

    seen = Review.objects.get().pk
    assert decisions.approve(user=admin, classification_id=verdict.pk, seen_review=seen).decision == "approve"


def test_an_item_someone_else_holds_cannot_be_decided(moderator_client, bob):
    verdict = make_verdict()
    claims.claim_item(user=bob, item_id=verdict.item_id)

    response = moderator_client.post(reverse("console:approve", args=[verdict.pk]), {"seen": 0},
                                     headers={"HX-Request": "true"})

    assert response.status_code == 409
    assert "bob is reviewing this item" in response.content.decode()
    assert not Review.objects.exists()


def test_a_result_without_a_verdict_cannot_be_approved(moderator):
    broken = make_verdict(status="truncated")

    with pytest.raises(errors.ReviewError, match="no verdict to approve"):
        decisions.approve(user=moderator, classification_id=broken.pk, seen_review=0)


def test_a_result_that_needs_no_review_cannot_be_decided(moderator):
    closed = make_verdict(needs_review=False)

    with pytest.raises(errors.ReviewError, match="does not await review"):
        decisions.approve(user=moderator, classification_id=closed.pk, seen_review=0)


@pytest.mark.django_db(transaction=True)
def test_two_moderators_approving_at_once_store_one_decision():
    verdict = make_verdict()
    people = [_user("one", Role.MODERATOR), _user("two", Role.MODERATOR)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(user) -> None:
        try:
            barrier.wait(timeout=10)
            decisions.approve(user=user, classification_id=verdict.pk, seen_review=0)
            outcomes.append("approved")
        except errors.ReviewError as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(user,)) for user in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["DecisionConflict", "approved"]
    assert Review.objects.count() == 1


# --- override --------------------------------------------------------------------------------------


def test_overriding_stores_the_correction_reason_and_misapplied_rule(moderator_client, moderator):
    verdict = make_verdict()

    _post(moderator_client, "override", verdict, label="0", reason="A friend sharing a link",
          misapplied_rule="SP2.a")

    review = Review.objects.get()
    assert (review.decision, review.label, review.reason, review.misapplied_rule) == (
        "override", "0", "A friend sharing a link", "SP2.a"
    )
    assert _state(verdict) == ("decided", None)
    assert AuditEvent.objects.get(action="review.override").after["reason"] == "A friend sharing a link"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"label": "0", "reason": ""}, "Reason: This field is required"),
        ({"label": "", "reason": "Wrong"}, "Choose the correct label"),
        ({"label": "maybe", "reason": "Wrong"}, "Select a valid choice"),
        ({"label": "0", "reason": "Wrong", "misapplied_rule": "ZZ9"}, "Select a valid choice"),
        ({"label": "1", "reason": "Agree"}, "That is the model&#x27;s own verdict: approve it instead"),
    ],
)
def test_an_incomplete_or_pointless_override_is_refused_with_the_reason(moderator_client, data, message):
    verdict = make_verdict()

    response = _post(moderator_client, "override", verdict, **data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Review.objects.exists() and _state(verdict) == ("open", "review")


def test_a_categories_policy_is_corrected_to_one_of_its_codes(moderator):
    version = make_policy(text=CATEGORIES_POLICY, label_scheme="categories", output_format="label",
                          labels=["HB0", "HB1", "HB2"])
    verdict = make_verdict(version, label="HB1", category="HB1", rule_ids=["HB1.a"])

    review = decisions.override(user=moderator, classification_id=verdict.pk, seen_review=0, label="HB2",
                               reason="An insult, not a threat", misapplied_rule="HB1.a")

    assert (review.label, review.category) == ("HB2", "HB2")
    assert version.label_choices()[0] == ("HB0", "HB0 · no violation")
    with pytest.raises(errors.ReviewError, match="not a label of"):
        decisions.override(user=moderator, classification_id=make_verdict(version, label="HB1").pk,
                          seen_review=0, label="SP2", reason="x")


# --- escalate, the senior queue ---------------------------------------------------------------------


def test_escalating_sends_the_item_to_the_senior_queue(moderator_client, moderator):
    verdict = make_verdict()
    moderator_client.get(reverse("console:item", args=[verdict.item_id]))

    _post(moderator_client, "escalate", verdict, reason="Possible legal issue")

    assert _state(verdict) == ("escalated", "escalated")
    assert Review.objects.get().reason == "Possible legal issue"
    assert not Claim.objects.exists()


def test_escalating_needs_a_reason(moderator_client):
    verdict = make_verdict()

    response = _post(moderator_client, "escalate", verdict, reason=" ")

    assert response.status_code == 400 and "Say why a senior should look" in response.content.decode()
    assert _state(verdict) == ("open", "review")


def test_only_a_senior_decides_an_escalated_item(moderator, bob, admin_user):
    verdict = make_verdict()
    escalation = decisions.escalate(user=moderator, classification_id=verdict.pk, seen_review=0, reason="Unsure")

    with pytest.raises(errors.ReviewError, match="decided by a senior moderator"):
        decisions.approve(user=bob, classification_id=verdict.pk, seen_review=escalation.pk)
    assert claims.claim_next(user=bob, filters=Filters(queue="escalated")) is None

    assert claims.claim_next(user=admin_user, filters=Filters(queue="escalated")) == verdict.item_id
    review = decisions.override(user=admin_user, classification_id=verdict.pk, seen_review=escalation.pk,
                               label="0", reason="Satire")
    assert review.reviewer == admin_user and _state(verdict) == ("decided", None)


# --- skip, next ----------------------------------------------------------------------------------------


def test_a_skipped_item_stays_for_the_others_but_not_for_the_one_who_skipped(moderator_client, moderator, bob):
    version = make_policy()
    skipped, other = make_verdict(version), make_verdict(version)
    moderator_client.get(reverse("console:item", args=[skipped.item_id]))

    response = _post(moderator_client, "skip", skipped)

    assert response["Location"] == reverse("console:item", args=[other.item_id])
    assert Skip.objects.get().user == moderator
    assert AuditEvent.objects.filter(action="review.skipped").count() == 1
    assert _state(skipped) == ("open", "review")
    assert claims.claim_next(user=bob, filters=Filters()) == skipped.item_id


def test_next_never_hands_one_item_to_two_moderators(moderator, bob):
    verdict = make_verdict()

    assert claims.claim_next(user=moderator, filters=Filters()) == verdict.item_id
    assert claims.claim_next(user=bob, filters=Filters()) is None


def test_leaving_an_item_with_next_gives_it_back(moderator_client, moderator):
    version = make_policy()
    first, second = make_verdict(version), make_verdict(version)
    moderator_client.get(reverse("console:item", args=[first.item_id]))

    response = moderator_client.post(reverse("console:next"), {"leaving": first.item_id})

    assert response["Location"] == reverse("console:item", args=[second.item_id])
    assert list(Claim.objects.values_list("item_id", flat=True)) == [second.item_id]


# --- bulk approve ----------------------------------------------------------------------------------------


def test_bulk_approval_checks_each_verdict_like_a_single_approval(moderator, bob):
    version = make_policy()
    ok = make_verdict(version)
    decided = make_verdict(version)
    decisions.approve(user=bob, classification_id=decided.pk, seen_review=0)
    escalated = make_verdict(version)
    decisions.escalate(user=bob, classification_id=escalated.pk, seen_review=0, reason="?")

    result = decisions.bulk_approve(user=moderator, classification_ids=[ok.pk, decided.pk, escalated.pk, 999999])

    assert result.approved == [ok.pk]
    assert dict(result.refused) == {decided.pk: "already decided", escalated.pk: "escalated: for a senior",
                                    999999: "no such classification"}
    assert _state(ok) == ("decided", None)


def test_bulk_approval_has_a_limit(moderator):
    with pytest.raises(errors.ReviewError, match="At most"):
        decisions.bulk_approve(user=moderator, classification_ids=list(range(1, decisions.BULK_LIMIT + 2)))


# --- roles -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", ["writer", "nobody"], indirect=True)
@pytest.mark.parametrize("name", ["approve", "override", "escalate", "skip"])
def test_decisions_are_refused_to_other_roles(role_client, name):
    verdict = make_verdict()

    response = _post(role_client, name, verdict, label="0", reason="x")

    assert response.status_code == 403
    assert not Review.objects.exists() and not Skip.objects.exists()
    assert Classification.objects.get().review_status == "open"


@pytest.mark.parametrize("role_client", ["writer", "nobody"], indirect=True)
def test_claims_and_comments_are_refused_to_other_roles(role_client):
    verdict = make_verdict()

    assert role_client.post(reverse("console:claim", args=[verdict.item_id])).status_code == 403
    assert role_client.post(reverse("console:release", args=[verdict.item_id])).status_code == 403
    assert role_client.post(reverse("console:comment", args=[verdict.item_id]), {"text": "x"}).status_code == 403
    assert not Claim.objects.exists()
