from __future__ import annotations

import re
from datetime import timedelta

import pytest

from enforcement import appeals
from enforcement.models import Action, Appeal
from tests.console.reviewing import make_verdict
from tests.enforcement.helpers import approve

pytestmark = pytest.mark.django_db


@pytest.fixture
def decided(moderator, django_capture_on_commit_callbacks) -> Action:
    verdict = make_verdict(rule_ids=["SP2.a"], rationale="Links to a pill shop.", content="Cheap pills at shop.example")
    approve(django_capture_on_commit_callbacks, moderator, verdict)
    return Action.objects.get(classification=verdict)


def _appeal(action: Action, external_id: str = "c-1", **fields) -> Appeal:
    fields.setdefault("reason", "It was a joke between friends")
    return appeals.file_appeal(item_id=action.item_id, external_id=external_id, filed_via="api:Test", **fields)[0]


def _received(appeal: Appeal, days_ago: float) -> None:
    """Move an appeal back in time (its deadline with it), as if it had arrived `days_ago` days ago."""
    shift = timedelta(days=days_ago)
    Appeal.objects.filter(pk=appeal.pk).update(received_at=appeal.received_at - shift, due_at=appeal.due_at - shift)


def _row(html: str, pk: int) -> str:
    return re.search(rf'<tr id="appeal-{pk}".*?</tr>', html, re.DOTALL).group()


def _rows(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="appeal-(\d+)"', html)]


def _decided_pair(moderator, django_capture_on_commit_callbacks) -> list[Action]:
    out = []
    for _ in range(2):
        verdict = make_verdict()
        approve(django_capture_on_commit_callbacks, moderator, verdict)
        out.append(Action.objects.get(classification=verdict))
    return out


def test_the_queue_lists_open_appeals_by_due_date_with_overdue_ones_marked(decided, moderator, moderator_client,
                                                                           second_moderator, settings,
                                                                           django_capture_on_commit_callbacks):
    newest = _appeal(decided)
    older_action, oldest_action = _decided_pair(moderator, django_capture_on_commit_callbacks)
    older, oldest = _appeal(older_action), _appeal(oldest_action)
    _received(older, 2)
    _received(oldest, settings.APPEAL_DEADLINE_DAYS + 1)
    response = moderator_client.get("/appeals/")
    html = response.content.decode().replace("\xa0", " ")  # timesince's non-breaking spaces
    assert response.status_code == 200
    assert _rows(html) == [oldest.pk, older.pk, newest.pk]
    late, on_time = _row(html, oldest.pk), _row(html, older.pk)
    assert 'class="appeal-row overdue"' in late
    assert "1 week, 1 day ago" in late and "overdue by 1 day" in late
    assert 'class="appeal-row"' in on_time and "2 days ago" in on_time and "4 days, 23 hours left" in on_time
    assert 'ws-connect="/ws/appeals/"' in html

    with django_capture_on_commit_callbacks(execute=True):
        appeals.decide_appeal(user=second_moderator, appeal_id=older.pk, outcome="upheld", reason="It is an ad")
    assert _rows(moderator_client.get("/appeals/").content.decode()) == [oldest.pk, newest.pk]
    decided_page = moderator_client.get("/appeals/", {"status": "decided"}).content.decode()
    assert _rows(decided_page) == [older.pk] and "bea" in decided_page
    assert _rows(moderator_client.get("/appeals/", {"status": "reversed"}).content.decode()) == []


@pytest.mark.parametrize("role_client", ["writer", "nobody"], indirect=True)
def test_only_reviewers_see_appeals(role_client, decided):
    appeal = _appeal(decided)
    assert role_client.get("/appeals/").status_code == 403
    assert role_client.get(f"/appeals/{appeal.pk}/").status_code == 403


def test_the_appeals_queue_is_in_the_nav_of_moderators(moderator_client, writer_client):
    assert 'href="/appeals/"' in moderator_client.get("/items/").content.decode()
    assert 'href="/appeals/"' not in writer_client.get("/policies/").content.decode()


def test_the_original_moderator_sees_the_appeal_and_why_they_may_not_decide_it(decided, moderator_client):
    appeal = _appeal(decided)
    html = moderator_client.get(f"/appeals/{appeal.pk}/").content.decode()
    assert "It was a joke between friends" in html
    assert "Cheap pills at shop.example" in html  # the content
    assert "Links to a pill shop." in html and "SP2.a" in html  # the verdict, its rationale and cited rule
    assert str(decided.statement.puid) in html
    assert "You made the decision complained about" in html
    assert 'id="decide-form"' not in html
    response = moderator_client.post(f"/appeals/{appeal.pk}/decide/", {"outcome": "upheld", "reason": "fine"})
    assert response.status_code == 400
    assert Appeal.objects.get(pk=appeal.pk).status == "open"


def test_a_second_moderator_reverses_an_appeal_with_the_other_label_prefilled(decided, second_moderator, client):
    appeal = _appeal(decided)
    client.force_login(second_moderator)
    html = client.get(f"/appeals/{appeal.pk}/").content.decode()
    assert 'id="decide-form"' in html
    assert '<option value="0" selected>' in html  # the decision was a violation: the safe label
    refused = client.post(f"/appeals/{appeal.pk}/decide/", {"outcome": "reversed", "label": "0", "reason": ""})
    assert refused.status_code == 400
    assert "reason: the reason is required" in refused.content.decode()
    assert Appeal.objects.get(pk=appeal.pk).status == "open"

    response = client.post(f"/appeals/{appeal.pk}/decide/", {"outcome": "reversed", "label": "0",
                                                             "reason": "A recipe site"})
    assert response.status_code == 302 and response["Location"] == f"/appeals/{appeal.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "Reversed" in page and "A recipe site" in page and 'id="decide-form"' not in page
    assert Action.objects.get(pk=decided.pk).action == "none"


def test_the_item_page_fragment_shows_the_whole_timeline_in_order(decided, second_moderator, admin_client_,
                                                                  django_capture_on_commit_callbacks):
    appeal = _appeal(decided)
    with django_capture_on_commit_callbacks(execute=True):
        appeals.decide_appeal(user=second_moderator, appeal_id=appeal.pk, outcome="reversed", label="0",
                              reason="A recipe site")
    html = admin_client_.get(f"/enforcement/items/{decided.item_id}/").content.decode()
    timeline = html.split('id="item-timeline"')[1]
    kinds = re.findall(r'<li class="ev-(\w+)"', timeline)
    assert kinds == ["arrived", "classified", "reviewed", "action", "appeal_filed", "reviewed", "appeal_decided"]
    assert "bea</b> reversed the decision" in timeline and "A recipe site" in timeline
    assert "(withdrawn)" in timeline
    assert f'href="/appeals/{appeal.pk}/"' in html


def test_an_admin_files_an_appeal_from_the_item_page(decided, admin_client_, moderator_client):
    html = admin_client_.get(f"/enforcement/items/{decided.item_id}/").content.decode()
    assert 'id="appeal-file"' in html
    assert 'id="appeal-file"' not in moderator_client.get(f"/enforcement/items/{decided.item_id}/").content.decode()
    refused = admin_client_.post(f"/appeals/file/{decided.item_id}/", {"reason": " ", "complainant": "affected"})
    assert refused.status_code == 302 and refused["Location"] == f"/items/{decided.item_id}/"
    assert not Appeal.objects.exists()
    response = admin_client_.post(f"/appeals/file/{decided.item_id}/", {
        "reason": "They phoned us", "complainant": "notifier",
        "policy": decided.policy_version.policy.slug})
    appeal = Appeal.objects.get()
    assert response["Location"] == f"/appeals/{appeal.pk}/"
    assert (appeal.complainant, appeal.filed_via, appeal.action) == ("notifier", "ada", decided)
    assert moderator_client.post(f"/appeals/file/{decided.item_id}/", {"reason": "x"}).status_code == 403
    assert admin_client_.post("/appeals/file/987654/", {"reason": "x"}).status_code == 302
    assert Appeal.objects.count() == 1
