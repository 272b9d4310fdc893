"""Shadow mode's pages: starting and stopping a shadow on the workbench, a shadow's page with its
disagreements, and the panel the policy page loads from the workbench."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from evaluations import shadow
from evaluations.models import EvaluationRun, RunKind, RunStatus
from policies_app import services as policy_services
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.factories import POLICY_TEXT, make_item, make_policy

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def _versions():
    """A published version, and a draft that mentions giveaways (so the two disagree on #if=giveaways)."""
    published = make_policy()
    draft = policy_services.save_version(actor=None, policy=published.policy, base_number=published.number,
                                         text=POLICY_TEXT + "\nMention giveaways.", label_scheme="binary",
                                         output_format="binary", reasoning_effort="medium", labels=[],
                                         change_note="try giveaways")
    return published, draft


def _drain() -> None:
    while run_once(ScriptedEngine(), "w1"):
        pass


def _shadows():
    return EvaluationRun.objects.filter(kind=RunKind.SHADOW)


def _start_url(policy) -> str:
    return reverse("evaluations:start-shadow", args=[policy.slug])


def _shadowed_traffic():
    """A running shadow of the draft on every new item, and three items it classified: it disagrees with
    the published version on the giveaway."""
    published, draft = _versions()
    run = shadow.start_shadow(actor=None, version=draft, share=1.0)
    items = [make_item(versions=[published], content=text)
             for text in ("free money now", "lunch?", "win the giveaway #if=giveaways")]
    _drain()
    return published, draft, run, items


def test_a_writer_starts_a_shadow_from_the_workbench_and_it_is_audited(writer_client, writer):
    published, draft = _versions()

    response = writer_client.post(_start_url(published.policy), {"version": draft.number, "share": "25"})

    run = shadow.active_shadow(published.policy)
    assert run is not None and run.policy_version == draft
    assert run.estimate["share"] == 0.25
    assert response.status_code == 302 and response["Location"] == reverse("evaluations:shadow", args=[run.pk])
    event = AuditEvent.objects.get(action="evaluation_run.shadow_started", object_id=str(run.pk))
    assert event.actor_id == writer.pk
    assert event.after == {"policy_version": draft.pk, "share": 0.25}


def test_the_workbench_offers_the_drafts_and_then_shows_the_active_shadow_with_a_stop_button(writer_client):
    published, draft = _versions()
    url = reverse("evaluations:workbench", args=[published.policy.slug])

    before = writer_client.get(url).content.decode()
    assert "Shadow a draft" in before and f'<option value="{draft.number}">' in before
    assert f'<option value="{published.number}">' not in before  # the published version is not offered

    run = shadow.start_shadow(actor=None, version=draft, share=0.1)
    make_item(versions=[published], content="hello")  # sampled or not: the count says how many
    page = writer_client.get(url)

    text = _text(page)
    assert f"v{draft.number} shadows 10% of new items" in text
    assert f"{run.results.count()} result" in text
    assert reverse("evaluations:stop-shadow", args=[run.pk]) in page.content.decode()
    assert "Shadow a draft" not in text


def test_stopping_a_shadow_through_its_page_is_audited_and_keeps_its_agreement(writer_client, writer):
    _published, _draft, run, _items = _shadowed_traffic()

    response = writer_client.post(reverse("evaluations:stop-shadow", args=[run.pk]), follow=True)

    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert run.metrics["compared_published"] == 3 and run.metrics["agree_published"] == 2
    event = AuditEvent.objects.get(action="evaluation_run.shadow_stopped", object_id=str(run.pk))
    assert event.actor_id == writer.pk
    assert "is stopped: its 3 results and agreement are kept" in _text(response)
    workbench = _text(writer_client.get(reverse("evaluations:workbench", args=[run.policy_version.policy.slug])))
    assert f"Shadow #{run.pk} · v2 on 100% · 3 results · agreed with the published version on 67%" in workbench
    assert "Shadow a draft" in workbench  # a new one may start


def test_stopping_a_stopped_shadow_says_so_and_changes_nothing(writer_client):
    published, draft = _versions()
    run = shadow.stop_shadow(actor=None, run=shadow.start_shadow(actor=None, version=draft, share=0.5))
    events = AuditEvent.objects.count()

    response = writer_client.post(reverse("evaluations:stop-shadow", args=[run.pk]), follow=True)

    assert f"Run #{run.pk} is not a running shadow" in _text(response)
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("share", ["0", "101", "-5", "ten", "", "nan"])
def test_a_bad_share_is_refused_with_a_message_and_starts_nothing(share, writer_client):
    published, draft = _versions()
    events = AuditEvent.objects.count()

    response = writer_client.post(_start_url(published.policy), {"version": draft.number, "share": share},
                                  follow=True)

    assert "The share is a percent of new items, from 1 to 100: nothing was started" in _text(response)
    assert not _shadows().exists()
    assert AuditEvent.objects.count() == events


def test_shadowing_the_published_version_or_a_second_draft_is_refused_with_the_reason(writer_client):
    published, draft = _versions()
    url = _start_url(published.policy)

    refused = writer_client.post(url, {"version": published.number, "share": "10"}, follow=True)
    assert "is the published version: shadow a draft against it: nothing was started" in _text(refused)
    assert not _shadows().exists()

    writer_client.post(url, {"version": draft.number, "share": "10"})
    again = writer_client.post(url, {"version": draft.number, "share": "50"}, follow=True)
    assert "already shadows a version: stop it first" in _text(again)
    assert [run.estimate["share"] for run in _shadows()] == [0.1]


def test_an_unknown_version_is_refused_with_a_message(writer_client):
    published, _draft = _versions()

    response = writer_client.post(_start_url(published.policy), {"version": "9", "share": "10"}, follow=True)

    assert "Choose a version of" in _text(response)
    assert not _shadows().exists()


def test_the_shadow_page_shows_the_agreement_and_lists_a_disagreement_with_its_item_link(writer_client):
    published, draft, run, items = _shadowed_traffic()
    giveaway = items[2]

    page = writer_client.get(reverse("evaluations:shadow", args=[run.pk]))

    assert page.status_code == 200
    body, text = page.content.decode(), _text(page)
    assert "66.7%" in text  # two of three agree with the published version
    assert f'id="disagreement-{giveaway.pk}"' in body
    assert reverse("console:item", args=[giveaway.pk]) in body
    assert reverse("console:item", args=[items[0].pk]) not in body  # they agree on the others
    assert "win the giveaway" in text
    # A bare "1" answer has no rationale: the shadow's reasoning stands in for it.
    assert "directive #if=giveaways: the policy mentions giveaways" in text
    assert 'hx-trigger="every 5s"' in body  # refreshed while it runs


def test_a_disagreement_shows_the_shadows_rationale_when_its_answer_gives_one(writer_client):
    published = make_policy()
    draft = policy_services.save_version(actor=None, policy=published.policy, base_number=published.number,
                                         text=POLICY_TEXT + "\nMention giveaways.", label_scheme="binary",
                                         output_format="json", reasoning_effort="medium", labels=[],
                                         change_note="giveaways, answered in JSON")
    run = shadow.start_shadow(actor=None, version=draft, share=1.0)
    make_item(versions=[published], content="win the giveaway #if=giveaways")
    _drain()
    [result] = run.results.all()
    assert result.rationale

    text = _text(writer_client.get(reverse("evaluations:shadow", args=[run.pk])))

    assert result.rationale in text and "Reasoning:" not in text


def test_the_shadow_page_polls_for_its_live_part_only_while_it_runs(writer_client):
    _published, _draft, run, _items = _shadowed_traffic()
    url = reverse("evaluations:shadow", args=[run.pk])

    polled = writer_client.get(url, HTTP_HX_REQUEST="true")
    assert polled.content.decode().lstrip().startswith('<div id="shadow-live"')

    shadow.stop_shadow(actor=None, run=run)
    stopped = writer_client.get(url).content.decode()
    assert "hx-trigger" not in stopped.split('id="shadow-live"')[1].split(">")[0]


def test_the_policy_page_loads_the_shadow_panel_from_the_workbench(writer_client):
    published, _draft = _versions()

    page = writer_client.get(published.policy.get_absolute_url())

    assert reverse("evaluations:shadow-summary", args=[published.policy.slug]) in page.content.decode()


def test_the_policy_page_panel_shows_the_active_shadows_agreement_to_writers_and_admins(
        writer_client, admin_client_):
    published, draft, run, _items = _shadowed_traffic()
    url = reverse("evaluations:shadow-summary", args=[published.policy.slug])

    for client in (writer_client, admin_client_):
        panel = client.get(url)
        assert panel.status_code == 200
        text = _text(panel)
        assert f"v{draft.number} shadows 100% of new items" in text
        assert f"agrees with published v{published.number} on 66.7% of 3" in text
        assert reverse("evaluations:shadow", args=[run.pk]) in panel.content.decode()


def test_the_policy_page_panel_is_empty_when_no_shadow_runs(writer_client):
    published, draft = _versions()
    url = reverse("evaluations:shadow-summary", args=[published.policy.slug])
    assert writer_client.get(url).content == b""

    shadow.stop_shadow(actor=None, run=shadow.start_shadow(actor=None, version=draft, share=0.5))
    panel = writer_client.get(url)

    assert panel.status_code == 200 and panel.content == b""


@pytest.mark.parametrize("role_client", ["moderator", "nobody"], indirect=True)
def test_the_shadow_pages_and_the_panel_are_refused_to_other_roles_like_the_rest_of_the_workbench(role_client):
    published, _draft, run, _items = _shadowed_traffic()
    slug = published.policy.slug

    for url in (reverse("evaluations:shadow-summary", args=[slug]), reverse("evaluations:shadow", args=[run.pk])):
        assert role_client.get(url).status_code == 403
    # The policy page that loads the panel is refused to them too.
    assert role_client.get(published.policy.get_absolute_url()).status_code == 403


def test_starting_and_stopping_are_refused_to_moderators_and_change_nothing(moderator_client):
    published, draft = _versions()
    run = shadow.start_shadow(actor=None, version=draft, share=0.5)
    events = AuditEvent.objects.count()

    assert moderator_client.post(reverse("evaluations:stop-shadow", args=[run.pk])).status_code == 403
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert AuditEvent.objects.count() == events
    shadow.stop_shadow(actor=None, run=run)
    events = AuditEvent.objects.count()
    assert moderator_client.post(_start_url(published.policy),
                                 {"version": draft.number, "share": "10"}).status_code == 403
    assert shadow.active_shadow(published.policy) is None
    assert AuditEvent.objects.count() == events


def test_a_shadow_opens_on_its_own_page_not_as_a_labelled_run(writer_client):
    _published, _draft, run, _items = _shadowed_traffic()

    assert writer_client.get(reverse("evaluations:run", args=[run.pk])).status_code == 404
    assert writer_client.get(reverse("evaluations:shadow", args=[run.pk])).status_code == 200
