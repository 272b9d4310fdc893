"""The review queue page: what is listed, tabs and counts, filters, orders, keyset pages, next, bulk approve."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role, set_roles
from audit.models import AuditEvent
from console import claims, queues
from console.models import Claim, Classification, Review
from tests.console.reviewing import make_verdict
from tests.factories import make_item, make_policy

URL = reverse("console:items")


@pytest.fixture(autouse=True)
def _fresh_counts():
    queues.forget_counts()  # page loads share the counts for two seconds; each test starts afresh


def _rows(response) -> list[int]:
    return [row.pk for row in response.context["page"].rows]


@pytest.mark.parametrize(
    ("role_client", "status"), [("moderator", 200), ("admin", 200), ("writer", 403), ("nobody", 403)],
    indirect=["role_client"],
)
def test_it_opens_the_queue_only_to_moderators_and_admins(role_client, status):
    assert role_client.get(URL).status_code == status


def test_it_sends_anonymous_visitors_to_sign_in(client, db):
    response = client.get(URL)

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_it_lists_only_results_awaiting_a_person(moderator_client):
    version = make_policy()
    flagged = make_verdict(version, content="buy now")
    broken = make_verdict(version, status="unparsable", content="what?")
    make_verdict(version, violation=False, needs_review=False, content="fine")  # the model was sure: closed
    make_item(versions=[version], content="still with the reasoner")  # queued
    decided = make_verdict(version, content="decided already")
    Classification.objects.filter(pk=decided.pk).update(review_status="decided")

    response = moderator_client.get(URL)

    assert response.status_code == 200
    assert _rows(response) == [flagged.pk, broken.pk]
    html = response.content.decode()
    assert f'id="row-{flagged.pk}"' in html and "buy now" in html
    assert "1 with the reasoner" in html


def test_each_queue_has_its_tab_and_count(moderator_client):
    version = make_policy()
    review = make_verdict(version)
    no_verdict = make_verdict(version, status="truncated")
    quality = make_verdict(version, stage="fast", violation=False, confidence=0.02)
    escalated = make_verdict(version)
    Classification.objects.filter(pk=escalated.pk).update(review_status="escalated")

    assert queues.counts() == {"review": 1, "no_verdict": 1, "qc": 1, "escalated": 1, "all": 3}
    assert _rows(moderator_client.get(URL)) == [review.pk, no_verdict.pk, quality.pk]
    assert _rows(moderator_client.get(URL, {"queue": "no_verdict"})) == [no_verdict.pk]
    assert _rows(moderator_client.get(URL, {"queue": "qc"})) == [quality.pk]
    assert _rows(moderator_client.get(URL, {"queue": "escalated"})) == [escalated.pk]
    tabs = moderator_client.get(URL).content.decode()
    assert 'data-queue="escalated">Escalated <span class="count">1</span>' in tabs


def test_filters_narrow_the_queue(moderator_client):
    spam, other = make_policy(name="Spam"), make_policy(name="Harassment")
    a = make_verdict(spam, confidence=0.95, source="forum")
    b = make_verdict(spam, violation=False, confidence=0.3, source="chat")
    c = make_verdict(other, confidence=0.6, source="forum")
    fast = make_verdict(spam, stage="fast", violation=True, confidence=0.97, source="forum")
    old = make_verdict(spam, source="forum")
    Classification.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))

    def shown(**params) -> set[int]:
        return set(_rows(moderator_client.get(URL, params)))

    assert shown(policy=spam.policy.slug) == {a.pk, b.pk, fast.pk, old.pk}
    assert shown(label="0") == {b.pk}
    assert shown(stage="fast") == {fast.pk}
    assert shown(source="chat") == {b.pk}
    assert shown(min_confidence="0.5", max_confidence="0.9") == {c.pk, old.pk}
    since = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert shown(since=since, policy=spam.policy.slug, source="forum") == {a.pk, fast.pk}
    until = (timezone.localdate() - timedelta(days=5)).isoformat()
    assert shown(until=until) == {old.pk}


def test_an_invalid_filter_is_reported_and_ignored(moderator_client):
    row = make_verdict()

    response = moderator_client.get(URL, {"min_confidence": "0.9", "max_confidence": "0.1"})

    assert response.status_code == 200
    assert "upper confidence bound is below the lower one" in response.content.decode()
    assert _rows(response) == [row.pk]


def test_priority_order_puts_likely_violations_first_then_missing_verdicts(moderator_client):
    version = make_policy()
    unsure_safe = make_verdict(version, violation=False, confidence=0.3)
    broken = make_verdict(version, status="failed")
    violation = make_verdict(version)

    assert _rows(moderator_client.get(URL)) == [unsure_safe.pk, broken.pk, violation.pk]
    assert _rows(moderator_client.get(URL, {"order": "priority"})) == [violation.pk, broken.pk, unsure_safe.pk]


def test_keyset_pages_walk_forward_and_back_without_gaps(moderator_client, monkeypatch):
    monkeypatch.setattr(queues, "PAGE_SIZE", 2)
    version = make_policy()
    ids = [make_verdict(version, content=f"message {n}").pk for n in range(5)]

    first = moderator_client.get(URL)
    second = moderator_client.get(URL, {"after": first.context["page"].next_cursor})
    third = moderator_client.get(URL, {"after": second.context["page"].next_cursor})
    back = moderator_client.get(URL, {"before": third.context["page"].prev_cursor})

    assert _rows(first) + _rows(second) + _rows(third) == ids
    assert third.context["page"].next_cursor == ""
    assert _rows(back) == ids[2:4]
    assert first.context["page"].prev_cursor == ""


def test_a_malformed_page_link_shows_the_first_page_and_says_so(moderator_client):
    row = make_verdict()

    response = moderator_client.get(URL, {"after": "not-a-cursor"}, follow=True)

    assert _rows(response) == [row.pk]
    assert "no longer valid" in response.content.decode()


def test_a_page_costs_the_same_few_queries_however_many_rows(moderator_client, django_assert_max_num_queries):
    version = make_policy()
    rows = [make_verdict(version, content=f"m{n}") for n in range(12)]
    claims.claim_item(user=_other_user(), item_id=rows[0].item_id)

    with django_assert_max_num_queries(12):
        response = moderator_client.get(URL)

    assert len(_rows(response)) == 12


def _other_user():
    user, created = get_user_model().objects.get_or_create(username="bob")
    if created:
        set_roles(actor=None, user=user, roles={Role.MODERATOR})
    return user


def test_rows_show_who_holds_their_item(moderator_client):
    row = make_verdict()
    claims.claim_item(user=_other_user(), item_id=row.item_id)

    html = moderator_client.get(URL).content.decode()

    assert f'class="claim claim-item-{row.item_id} held">bob' in html


def test_an_htmx_filter_change_gets_only_the_queue_partial(moderator_client):
    make_verdict()

    response = moderator_client.get(URL, {"order": "priority"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<section id="queue"')
    assert 'ws-connect="/ws/queue/?order=priority"' in html
    assert "<html" not in html


def test_next_claims_the_first_free_item_and_opens_it(moderator, moderator_client):
    version = make_policy()
    taken = make_verdict(version)
    free = make_verdict(version)
    claims.claim_item(user=_other_user(), item_id=taken.item_id)

    response = moderator_client.post(reverse("console:next"))

    assert response.status_code == 302 and response["Location"] == reverse("console:item", args=[free.item_id])
    assert Claim.objects.get(item_id=free.item_id).user == moderator


def test_next_says_so_when_nothing_is_free(moderator_client):
    row = make_verdict()
    claims.claim_item(user=_other_user(), item_id=row.item_id)

    response = moderator_client.post(reverse("console:next"), follow=True)

    assert response.redirect_chain[-1][0].startswith(URL)
    assert "Nothing in this queue is free" in response.content.decode()


def test_next_follows_the_queue_selection_last_shown(moderator_client):
    spam, other = make_policy(name="Spam"), make_policy(name="Other")
    make_verdict(spam)
    wanted = make_verdict(other)
    moderator_client.get(URL, {"policy": other.policy.slug})

    response = moderator_client.post(reverse("console:next"))

    assert response["Location"] == reverse("console:item", args=[wanted.item_id])


def test_bulk_approve_asks_first_and_changes_nothing_until_confirmed(moderator_client):
    rows = [make_verdict(content=f"m{n}") for n in range(3)]

    response = moderator_client.post(reverse("console:bulk-approve"), {"ids": [r.pk for r in rows]},
                                     headers={"HX-Request": "true"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "Approve 3 verdicts?" in html and 'name="confirm" value="yes"' in html
    assert not Review.objects.exists()


def test_bulk_approve_approves_what_it_may_and_says_why_not_for_the_rest(moderator_client, moderator):
    version = make_policy()
    ok = make_verdict(version)
    held = make_verdict(version)
    broken = make_verdict(version, status="unparsable")
    claims.claim_item(user=_other_user(), item_id=held.item_id)

    response = moderator_client.post(reverse("console:bulk-approve"),
                                     {"ids": [ok.pk, held.pk, broken.pk], "confirm": "yes"}, follow=True)

    html = response.content.decode()
    assert "Approved 1 verdict" in html
    assert f"#{held.pk}: claimed by bob" in html and f"#{broken.pk}: no verdict to approve" in html
    assert list(Review.objects.values_list("classification_id", "decision", "reviewer")) == [
        (ok.pk, "approve", moderator.pk)
    ]
    assert AuditEvent.objects.filter(action="review.approve", object_id=str(ok.pk)).count() == 1
    assert _rows(response) == [held.pk, broken.pk]


def test_bulk_approve_without_a_selection_says_what_to_do(moderator_client):
    response = moderator_client.post(reverse("console:bulk-approve"), {"confirm": "yes"}, follow=True)

    assert "Select the verdicts to approve first" in response.content.decode()


@pytest.mark.parametrize("role_client", ["writer", "nobody"], indirect=True)
def test_queue_actions_are_refused_to_other_roles(role_client):
    row = make_verdict()

    assert role_client.post(reverse("console:next")).status_code == 403
    assert role_client.post(reverse("console:bulk-approve"), {"ids": [row.pk], "confirm": "yes"}).status_code == 403
    assert not Review.objects.exists() and not Claim.objects.exists()
