"""The item page: content, verdict, reasoning beside the policy, history, claims, comments, wellness."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role, set_roles
from audit.models import AuditEvent
from console import comments, decisions
from console.itempage import link_rules, policy_html
from console.models import Claim, Comment, DisturbingCategory
from tests.console.reviewing import make_verdict
from tests.factories import make_policy


def _url(classification) -> str:
    return reverse("console:item", args=[classification.item_id])


@pytest.fixture
def bob(db):
    user = get_user_model().objects.create_user(username="bob")
    set_roles(actor=None, user=user, roles={Role.MODERATOR})
    return user


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


@pytest.mark.parametrize(
    ("role_client", "status"), [("moderator", 200), ("admin", 200), ("writer", 403), ("nobody", 403)],
    indirect=["role_client"],
)
def test_it_shows_items_only_to_moderators_and_admins(role_client, status):
    assert role_client.get(_url(make_verdict())).status_code == status


def test_an_unknown_item_is_not_found(moderator_client):
    assert moderator_client.get(reverse("console:item", args=[987654])).status_code == 404


def test_it_shows_the_verdict_beside_the_policy_with_cited_rules_linked(moderator_client):
    verdict = make_verdict(content="Buy now at shop.example", rationale="SP2.a: a link to a shop")

    html = moderator_client.get(_url(verdict)).content.decode()

    assert "Buy now at shop.example" in html
    assert '<a href="#rule-SP2.a" class="rule-ref">SP2.a</a>' in html  # the verdict's cited rule
    assert '<mark class="rule cited" id="rule-SP2.a">SP2.a</mark>' in html  # ... highlighted in the policy
    assert '<mark class="rule" id="rule-SP0.a">SP0.a</mark>' in html
    assert "Model reasoning" in html and 'forbids; nothing in <a class="rule-ref" href="#rule-SP0.a">' in html
    assert 'ws-connect="/ws/items/' in html


def test_every_mention_of_a_rule_in_the_policy_gets_its_own_anchor():
    html = policy_html("HB1 is bad. See HB1 again, and HB2 <b>.", {"HB1"})

    assert html == ('<mark class="rule cited" id="rule-HB1">HB1</mark> is bad. See '
                    '<mark class="rule cited" id="rule-HB1-2">HB1</mark> again, and '
                    '<mark class="rule" id="rule-HB2">HB2</mark> &lt;b&gt;.')


def test_only_rules_the_policy_defines_are_linked_in_the_reasoning():
    assert link_rules("SP2 and XX9 <script>", {"SP2"}) == (
        '<a class="rule-ref" href="#rule-SP2">SP2</a> and XX9 &lt;script&gt;'
    )


def test_a_cited_rule_the_policy_lacks_is_marked_as_unknown(moderator_client):
    verdict = make_verdict(rule_ids=["SP9.z"])

    html = moderator_client.get(_url(verdict)).content.decode()

    assert 'class="rule-ref unknown" title="Not a rule of' in html


def test_a_conversation_is_shown_as_a_chat(moderator_client):
    verdict = make_verdict(kind="conversation", turns=[{"role": "user", "content": "hi <there>"},
                                                       {"role": "assistant", "content": "click here"}])

    html = moderator_client.get(_url(verdict)).content.decode()

    assert '<li class="turn role-user"><b class="role">user</b><div>hi &lt;there&gt;</div></li>' in html
    assert 'class="turn role-assistant"' in html


def test_a_result_without_a_verdict_shows_the_raw_answer_and_cannot_be_approved(moderator_client):
    verdict = make_verdict(status="unparsable")
    verdict.raw_output = "¯\\_(ツ)_/¯"
    verdict.save(update_fields=["raw_output"])

    html = moderator_client.get(_url(verdict)).content.decode()

    assert "Raw output" in html and "(ツ)" in html
    assert re.search(r'form="approve-form" class="primary" data-key="a" disabled', html)


def test_opening_an_item_claims_it_and_audits_the_claim(moderator, moderator_client):
    verdict = make_verdict()

    html = moderator_client.get(_url(verdict)).content.decode()

    claim = Claim.objects.get(item_id=verdict.item_id)
    assert claim.user == moderator and claim.expires_at > timezone.now() + timedelta(minutes=4)
    assert "You are reviewing this item" in html
    assert AuditEvent.objects.filter(action="item.claimed", object_id=str(verdict.item_id)).count() == 1


def test_a_second_moderator_sees_the_claim_and_cannot_decide(moderator_client, bob_client):
    verdict = make_verdict()
    moderator_client.get(_url(verdict))

    html = bob_client.get(_url(verdict)).content.decode()

    assert "<b>mo</b> is reviewing this item" in html
    assert re.search(r'form="approve-form" class="primary" data-key="a" disabled', html)
    assert Claim.objects.get(item_id=verdict.item_id).user.username == "mo"


def test_an_expired_claim_is_taken_over_by_the_next_moderator(moderator_client, bob, bob_client):
    verdict = make_verdict()
    moderator_client.get(_url(verdict))
    Claim.objects.filter(item_id=verdict.item_id).update(claimed_at=timezone.now() - timedelta(minutes=10),
                                                          expires_at=timezone.now() - timedelta(minutes=1))

    bob_client.get(_url(verdict))

    assert Claim.objects.get(item_id=verdict.item_id).user == bob


def test_the_open_page_renews_its_claim(moderator_client, bob_client):
    verdict = make_verdict()
    moderator_client.get(_url(verdict))
    Claim.objects.filter(item_id=verdict.item_id).update(expires_at=timezone.now() + timedelta(seconds=30))
    url = reverse("console:claim", args=[verdict.item_id])

    renewed = moderator_client.post(url)
    refused = bob_client.post(url)

    assert renewed.status_code == 200
    assert Claim.objects.get(item_id=verdict.item_id).expires_at > timezone.now() + timedelta(minutes=4)
    assert refused.status_code == 409 and "mo is reviewing this item" in refused.json()["error"]
    assert AuditEvent.objects.filter(action="item.claimed").count() == 1  # renewals are not audited


def test_opening_another_item_gives_back_the_one_left_behind(moderator_client):
    first, second = make_verdict(), make_verdict()
    moderator_client.get(_url(first))

    moderator_client.get(_url(second))

    assert list(Claim.objects.values_list("item_id", flat=True)) == [second.item_id]
    assert AuditEvent.objects.filter(action="item.released", object_id=str(first.item_id)).exists()


def test_releasing_frees_the_item(moderator_client):
    verdict = make_verdict()
    moderator_client.get(_url(verdict))

    response = moderator_client.post(reverse("console:release", args=[verdict.item_id]))

    assert response.status_code == 204 and not Claim.objects.exists()


def test_the_history_lists_earlier_classifications_reviews_and_comments(moderator, moderator_client, admin_user):
    version = make_policy(name="Spam")
    verdict = make_verdict(version)
    decisions.escalate(user=moderator, classification_id=verdict.pk, seen_review=0, reason="Looks like a scam ring")
    comments.add_comment(user=moderator, item_id=verdict.item_id, text="Seen this sender before")

    html = moderator_client.get(_url(verdict)).content.decode()

    assert "<b>mo</b> escalated the verdict" in html and "Looks like a scam ring" in html
    assert "<b>mo</b> commented: Seen this sender before" in html
    assert "Escalated: a senior moderator (admin) decides this one." in html
    assert "Spam v1 · Reasoner" in html


def test_previous_goes_back_to_the_item_opened_before(moderator_client):
    first, second = make_verdict(), make_verdict()
    moderator_client.get(_url(first))

    html = moderator_client.get(_url(second)).content.decode()

    assert f'<a href="{_url(first)}" data-key="p">Previous' in html


def test_a_comment_is_added_and_the_history_comes_back_for_htmx(moderator_client):
    verdict = make_verdict()
    url = reverse("console:comment", args=[verdict.item_id])

    response = moderator_client.post(url, {"text": "Check the link", "c": verdict.pk}, headers={"HX-Request": "true"})
    empty = moderator_client.post(url, {"text": "   "}, headers={"HX-Request": "true"})

    assert response.status_code == 200 and response.content.decode().lstrip().startswith('<section id="history"')
    assert "Check the link" in response.content.decode()
    assert Comment.objects.get().classification_id == verdict.pk
    assert empty.status_code == 400 and empty["HX-Retarget"] == "#feedback"
    assert AuditEvent.objects.filter(action="item.commented").count() == 1


def test_content_under_a_disturbing_category_is_blurred_until_asked(moderator_client):
    DisturbingCategory.objects.create(code="SH2")
    hidden = make_verdict(category="SH2", content="graphic text")
    shown = make_verdict(category="SP2", content="ordinary spam")

    assert 'class="card content blurred"' in moderator_client.get(_url(hidden)).content.decode()
    assert 'class="card content"' in moderator_client.get(_url(shown)).content.decode()


@pytest.mark.parametrize(
    ("role_client", "status"), [("admin", 200), ("moderator", 403), ("writer", 403), ("nobody", 403)],
    indirect=["role_client"],
)
def test_only_admins_set_which_categories_are_blurred(role_client, status):
    assert role_client.get(reverse("console:wellness")).status_code == status
    response = role_client.post(reverse("console:wellness"), {"codes": "sh2\nviolence, SH2"})
    assert response.status_code == (302 if status == 200 else 403)


def test_an_admin_saves_blurred_categories_with_an_audit_trail(admin_client_):
    admin_client_.post(reverse("console:wellness"), {"codes": "sh2\nviolence"})
    admin_client_.post(reverse("console:wellness"), {"codes": "VIOLENCE"})

    assert list(DisturbingCategory.objects.values_list("code", flat=True)) == ["VIOLENCE"]
    assert list(AuditEvent.objects.filter(action__startswith="wellness.").order_by("id")
                .values_list("action", "object_repr")) == [
        ("wellness.marked", "SH2"), ("wellness.marked", "VIOLENCE"), ("wellness.unmarked", "SH2"),
    ]
