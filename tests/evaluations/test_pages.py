"""The workbench's pages: who may open them, and that what they change goes through the audited services."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from console import decisions
from evaluations import runs
from evaluations.models import EvaluationRun, Example, LabeledSet, RunStatus
from tests.console.reviewing import make_verdict
from tests.evaluations.running import WORD, finished_run, flipping_set, two_versions
from tests.factories import make_labeled_set, make_policy

pytestmark = pytest.mark.django_db(transaction=True)


def _text(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


@pytest.fixture
def workbench():
    """A policy with two versions, a set, a finished run of each version over it, and one result."""
    v1, v2 = two_versions(name="Spam")
    labeled_set = flipping_set(v1.policy)
    a, b = finished_run(labeled_set, v1), finished_run(labeled_set, v2)
    return {"v1": v1, "v2": v2, "set": labeled_set, "a": a, "b": b, "result": b.results.order_by("id").first()}


def _pages(w) -> dict[str, str]:
    s, a, b = w["set"], w["a"], w["b"]
    return {
        "workbench": reverse("evaluations:workbench", args=[w["v1"].policy.slug]),
        "set": reverse("evaluations:set", args=[s.pk]),
        "start-run": reverse("evaluations:start-run", args=[s.pk]),
        "run": reverse("evaluations:run", args=[b.pk]),
        "result": reverse("evaluations:result", args=[b.pk, w["result"].pk]),
        "metrics-json": reverse("evaluations:metrics-json", args=[b.pk]),
        "results-csv": reverse("evaluations:results-csv", args=[b.pk]),
        "compare": reverse("evaluations:compare") + f"?a={a.pk}&b={b.pk}",
    }


PAGES = ["workbench", "set", "start-run", "run", "result", "metrics-json", "results-csv", "compare"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_for_policy_writers_and_admins_and_is_refused_to_moderators(
        page, workbench, writer_client, admin_client_, moderator_client):
    url = _pages(workbench)[page]

    assert writer_client.get(url).status_code == 200
    assert admin_client_.get(url).status_code == 200
    assert moderator_client.get(url).status_code == 403


@pytest.mark.parametrize("action", ["relabel", "delete-examples", "delete-set", "golden-set", "start-run",
                                    "cancel-run"])
def test_every_change_is_refused_to_moderators_and_changes_nothing(action, moderator_client):
    version = make_policy()
    labeled_set = make_labeled_set(version.policy, [("hello", "0"), ("free money", "1")])
    example = labeled_set.examples.first()
    run = runs.start_run(actor=None, labeled_set=labeled_set, version=version)
    url, data = {
        "relabel": (reverse("evaluations:relabel", args=[labeled_set.pk, example.pk]), {"label": "1"}),
        "delete-examples": (reverse("evaluations:delete-examples", args=[labeled_set.pk]), {"ids": [example.pk]}),
        "delete-set": (reverse("evaluations:delete-set", args=[labeled_set.pk]), {}),
        "golden-set": (reverse("evaluations:golden-set", args=[version.policy.slug]), {"name": "Gold"}),
        "start-run": (reverse("evaluations:start-run", args=[labeled_set.pk]), {"version": "1"}),
        "cancel-run": (reverse("evaluations:cancel-run", args=[run.pk]), {}),
    }[action]
    events = AuditEvent.objects.count()

    assert moderator_client.post(url, data).status_code == 403

    assert AuditEvent.objects.count() == events
    assert Example.objects.get(pk=example.pk).label == "0"
    assert EvaluationRun.objects.get(pk=run.pk).status == RunStatus.RUNNING


def test_the_policy_page_links_to_its_workbench_and_the_workbench_lists_sets_and_runs(workbench, writer_client):
    policy = workbench["v1"].policy
    detail = writer_client.get(policy.get_absolute_url()).content.decode()
    assert reverse("evaluations:workbench", args=[policy.slug]) in detail

    page = writer_client.get(reverse("evaluations:workbench", args=[policy.slug]))
    text = _text(page)
    assert workbench["set"].name in text and "7" in text
    assert f"#{workbench['a'].pk}" in text and f"#{workbench['b'].pk}" in text
    # Headline accuracy of each run: v1 3 of 6 answered, v2 4 of 6.
    assert "50.0%" in text and "66.7%" in text
    assert f'href="{reverse("evaluations:import")}?policy={policy.slug}"' in page.content.decode()


def test_the_set_page_searches_the_text_and_filters_by_label(writer_client):
    version = make_policy()
    labeled_set = make_labeled_set(version.policy, [("free money now", "1"), ("free lunch", "0"), ("hello", "0")])
    url = reverse("evaluations:set", args=[labeled_set.pk])

    found = writer_client.get(url, {"q": "free"}, headers={"HX-Request": "true"})
    assert found.status_code == 200 and 'id="examples"' in found.content.decode()
    assert "<html" not in found.content.decode()  # the partial only
    assert "free money now" in _text(found) and "free lunch" in _text(found) and "hello" not in _text(found)

    labelled = _text(writer_client.get(url, {"q": "free", "label": "1"}))
    assert "free money now" in labelled and "free lunch" not in labelled


def test_the_set_page_pages_through_many_examples(writer_client):
    version = make_policy()
    labeled_set = make_labeled_set(version.policy, [(f"message number {n:03}", "0") for n in range(60)])
    url = reverse("evaluations:set", args=[labeled_set.pk])

    first, second = _text(writer_client.get(url)), _text(writer_client.get(url, {"page": 2}))

    assert "message number 000" in first and "message number 050" not in first and "Page 1 of 2" in first
    assert "message number 050" in second and "message number 000" not in second


def test_relabelling_inline_saves_the_label_audits_it_and_answers_the_row(writer, writer_client):
    version = make_policy()
    labeled_set = make_labeled_set(version.policy, [("free money", "0")])
    example = labeled_set.examples.get()

    response = writer_client.post(reverse("evaluations:relabel", args=[labeled_set.pk, example.pk]), {"label": "1"},
                                  headers={"HX-Request": "true"})

    assert response.status_code == 200
    row = response.content.decode()
    assert row.lstrip().startswith(f'<tr id="example-{example.pk}"') and "Saved: 1" in row
    example.refresh_from_db()
    assert (example.label, example.violation) == ("1", True)
    event = AuditEvent.objects.get(action="labeled_set.example_relabelled", object_id=str(example.pk))
    assert event.actor_name == writer.username and event.before["label"] == "0" and event.after["label"] == "1"


def test_a_label_the_policy_does_not_define_is_refused_in_the_row(writer_client):
    version = make_policy()
    labeled_set = make_labeled_set(version.policy, [("free money", "0")])
    example = labeled_set.examples.get()

    response = writer_client.post(reverse("evaluations:relabel", args=[labeled_set.pk, example.pk]),
                                  {"label": "MAYBE"}, headers={"HX-Request": "true"})

    assert response.status_code == 400
    assert "&#x27;MAYBE&#x27; is not a label of" in response.content.decode()
    assert Example.objects.get(pk=example.pk).label == "0"
    assert not AuditEvent.objects.filter(action="labeled_set.example_relabelled").exists()


def test_deleting_ticked_examples_and_then_the_set_is_audited(writer, writer_client):
    version = make_policy()
    labeled_set = make_labeled_set(version.policy, [("one", "0"), ("two", "0"), ("three", "1")])
    one, two, three = labeled_set.examples.order_by("id")

    response = writer_client.post(reverse("evaluations:delete-examples", args=[labeled_set.pk]),
                                  {"ids": [one.pk, two.pk]})
    assert response.status_code == 302 and response["Location"] == labeled_set.get_absolute_url()
    assert list(labeled_set.examples.values_list("pk", flat=True)) == [three.pk]
    deleted = AuditEvent.objects.filter(action="labeled_set.example_deleted")
    assert sorted(deleted.values_list("object_id", flat=True)) == sorted([str(one.pk), str(two.pk)])
    assert {e.actor_name for e in deleted} == {writer.username}

    response = writer_client.post(reverse("evaluations:delete-set", args=[labeled_set.pk]))
    assert response["Location"] == reverse("evaluations:workbench", args=[version.policy.slug])
    assert not LabeledSet.objects.filter(pk=labeled_set.pk).exists()
    event = AuditEvent.objects.get(action="labeled_set.deleted", object_id=str(labeled_set.pk))
    assert event.actor_name == writer.username and event.before["examples"] == 1


def test_a_golden_set_is_made_from_moderators_decisions(writer_client, moderator):
    version = make_policy()
    approved = make_verdict(version, content="free money, approved")
    overridden = make_verdict(version, content="a birthday invitation")
    decisions.approve(user=moderator, classification_id=approved.pk, seen_review=0)
    decisions.override(user=moderator, classification_id=overridden.pk, seen_review=0, label="0",
                       reason="An invitation, not spam")

    response = writer_client.post(reverse("evaluations:golden-set", args=[version.policy.slug]), {"name": "Gold"})

    labeled_set = LabeledSet.objects.get(policy=version.policy, name="Gold")
    assert response["Location"] == labeled_set.get_absolute_url()
    assert dict(labeled_set.examples.values_list("content", "label")) == {
        "free money, approved": "1", "a birthday invitation": "0"}
    assert AuditEvent.objects.filter(action="labeled_set.examples_added", object_id=str(labeled_set.pk)).exists()


def test_the_start_page_shows_the_estimate_and_says_unknown_when_nothing_is_measured(writer_client):
    v1, v2 = two_versions()
    labeled_set = make_labeled_set(v1.policy, [("hello", "0"), ("free money", "1")])

    page = writer_client.get(reverse("evaluations:start-run", args=[labeled_set.pk]))
    text = _text(page)
    estimate = runs.estimate(labeled_set=labeled_set, version=v2)
    assert f"Prompt tokens {estimate['prompt_tokens']}" in text
    assert "Completion tokens unknown" in text and "Time unknown" in text
    assert 'value="2" selected' in page.content.decode()  # the newest version, the draft, by default
    # Every version may be chosen: the draft and the published one.
    assert "v2 · draft" in text and "v1 · published" in text

    partial = writer_client.get(reverse("evaluations:start-run", args=[labeled_set.pk]), {"version": "1"},
                                headers={"HX-Request": "true"})
    assert partial.content.decode().lstrip().startswith('<div id="estimate"')


def test_the_start_page_shows_the_measured_completion_tokens_and_time_once_known(writer_client):
    version = make_policy()
    warmup = make_labeled_set(version.policy, [(f"warm up {n}", "0") for n in range(25)])
    finished_run(warmup, version)
    labeled_set = make_labeled_set(version.policy, [("hello", "0"), ("free money", "1")])

    text = _text(writer_client.get(reverse("evaluations:start-run", args=[labeled_set.pk])))

    assert "Completion tokens about" in text and "Completion tokens unknown" not in text
    assert "measured rate of" in text


def test_starting_a_run_from_the_page_queues_it_audited_and_opens_its_page(writer, writer_client):
    v1, v2 = two_versions()
    labeled_set = make_labeled_set(v1.policy, [("hello", "0"), ("free money", "1")])

    response = writer_client.post(reverse("evaluations:start-run", args=[labeled_set.pk]),
                                  {"version": "1", "note": "baseline"})

    run = EvaluationRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert (run.policy_version, run.note, run.total, run.created_by) == (v1, "baseline", 2, writer)
    assert AuditEvent.objects.get(action="evaluation_run.started").actor_name == writer.username
    page = _text(writer_client.get(run.get_absolute_url()))
    assert "0 of 2 classified" in page and "Cancel the run" in page


def test_a_version_that_does_not_exist_or_an_empty_set_is_refused_on_the_start_page(writer_client):
    version = make_policy()
    labeled_set = make_labeled_set(version.policy, [("hello", "0")])
    empty = make_labeled_set(version.policy, [])

    missing = writer_client.post(reverse("evaluations:start-run", args=[labeled_set.pk]), {"version": "9"})
    assert missing.status_code == 400 and "has no version" in _text(missing)
    refused = writer_client.post(reverse("evaluations:start-run", args=[empty.pk]), {"version": "1"})
    assert refused.status_code == 400 and "holds no examples" in _text(refused)
    assert not EvaluationRun.objects.exists()


def test_cancelling_from_the_run_page_stops_the_run_audited(writer, writer_client):
    version = make_policy()
    run = runs.start_run(actor=None, labeled_set=make_labeled_set(version.policy, [("a", "0"), ("b", "0")]),
                         version=version)

    response = writer_client.post(reverse("evaluations:cancel-run", args=[run.pk]))

    assert response["Location"] == run.get_absolute_url()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert AuditEvent.objects.get(action="evaluation_run.cancelled").actor_name == writer.username
    again = writer_client.post(reverse("evaluations:cancel-run", args=[run.pk]), follow=True)
    assert "is cancelled, not running" in _text(again)


def test_the_run_page_shows_progress_metrics_and_filters_results(workbench, writer_client):
    b = workbench["b"]
    url = reverse("evaluations:run", args=[b.pk])
    page = writer_client.get(url).content.decode()
    text = _text(writer_client.get(url))

    assert 'data-percent="100.0"' in page and "7 of 7 classified" in text
    assert 'ws-connect' not in page  # a finished run has nothing left to push
    assert "Accuracy 66.7%" in text and "Strict accuracy" in text and "95% interval" in text
    assert "Right only" not in text  # comparison numbers belong to the compare page
    assert f'<option value="{workbench["a"].pk}">' in page  # compare with the other run on the set

    def shown(show: str) -> str:
        return _text(writer_client.get(url, {"show": show}, headers={"HX-Request": "true"}))

    assert "you won the" in shown("right") and "our office" not in shown("right")
    assert "our office" in shown("wrong") and "a quiet spam" in shown("wrong")
    assert "shrug #unparsable" in shown("none") and "free money" not in shown("none")


def test_a_running_run_page_listens_for_its_progress(writer_client):
    version = make_policy()
    run = runs.start_run(actor=None, labeled_set=make_labeled_set(version.policy, [("a", "0")]), version=version)

    page = writer_client.get(reverse("evaluations:run", args=[run.pk])).content.decode()

    assert f'ws-connect="/ws/evaluations/runs/{run.pk}/"' in page
    assert "The metrics appear here when the run finishes" in page


def test_the_result_page_shows_reasoning_raw_output_and_the_cited_rules_in_the_policy(writer_client):
    version = make_policy(text="# Spam\n\n## Rules\n- SP2.a Promotion with a link.\n- SP0.a Conversation.\n",
                          output_format="json")
    labeled_set = make_labeled_set(version.policy, [("buy it #label=SP2.a", "1")])
    run = finished_run(labeled_set, version)
    result = run.results.get()

    page = writer_client.get(reverse("evaluations:result", args=[run.pk, result.pk])).content.decode()

    assert '<mark class="rule cited" id="rule-SP2.a">SP2.a</mark>' in page
    assert "directive #label=SP2.a" in page  # the reasoning
    assert html.escape(result.raw_output[:40]) in page
    assert "right" in _text(writer_client.get(reverse("evaluations:result", args=[run.pk, result.pk])))


def test_the_compare_page_shows_each_flip_with_both_reasonings_and_the_policy_diff(workbench, writer_client):
    a, b = workbench["a"], workbench["b"]

    page = writer_client.get(reverse("evaluations:compare"), {"a": a.pk, "b": b.pk})
    text = _text(page)

    assert page.status_code == 200
    assert "Not significant at 0.05" in text
    assert text.index("our office") < text.index("you won the")  # right → wrong first
    assert "does not mention lottery" in text and f"mentions {WORD}" in text  # both reasonings
    assert "SP2.b A lottery or prize draw" in text  # the added rule, in the diff beside them
    assert "2 added" in text  # the rule and the blank line after it


def test_comparing_runs_on_different_sets_is_refused_with_a_clear_message(workbench, writer_client):
    other = make_labeled_set(workbench["v1"].policy, [("hello", "0")], name="Another set")
    c = finished_run(other, workbench["v1"])

    page = writer_client.get(reverse("evaluations:compare"), {"a": workbench["a"].pk, "b": c.pk})

    assert page.status_code == 400
    assert "runs can only be compared on the same labelled set" in _text(page)
    missing = writer_client.get(reverse("evaluations:compare"), {"a": workbench["a"].pk, "b": "x"})
    assert missing.status_code == 400 and "is not a run number" in _text(missing)


def test_runs_of_another_set_are_not_offered_for_comparison(workbench, writer_client):
    other = make_labeled_set(workbench["v1"].policy, [("hello", "0")], name="Another set")
    c = finished_run(other, workbench["v1"])

    page = writer_client.get(reverse("evaluations:run", args=[workbench["b"].pk])).content.decode()

    assert f'<option value="{c.pk}">' not in page


def test_a_category_run_shows_a_confusion_heat_map_a_bar_per_category_and_rule_counts(writer_client):
    version = make_policy(text="# Spam\n\n## Rules\n- SP0 Talk.\n- SP2.a Promotion.\n- SP3.b Scams.\n",
                          label_scheme="categories", labels="SP0,SP2,SP3", output_format="json")
    rows = [(f"promo {n} #label=SP2.a", "SP2") for n in range(4)] + [("scam as promo #label=SP2.a", "SP3")]
    rows += [("scam #label=SP3.b", "SP3"), ("hi #label=SP0", "SP0"), ("hmm #unparsable", "SP0")]
    run = finished_run(make_labeled_set(version.policy, rows), version)

    page = writer_client.get(reverse("evaluations:run", args=[run.pk])).content.decode()

    # Rows are the labels, columns what the model said; the biggest cell (SP2 → SP2, 4) is darkest.
    heatmap = page[page.index('<table class="heatmap"'):page.index("</table>", page.index('<table class="heatmap"'))]
    header = re.findall(r'<th scope="col">([^<]+)</th>', heatmap)
    assert header == ["SP0", "SP2", "SP3", "(no verdict)", "Examples"]
    cells = {row[0]: row[1] for row in re.findall(r'<th scope="row">([^<]+)</th>(.*?)</tr>', heatmap, re.S)}
    assert re.findall(r'<td class="heat-(\d)( diagonal)?">(\d*)</td>', cells["SP2"]) == [
        ("0", "", ""), ("5", " diagonal", "4"), ("0", "", ""), ("0", "", "")]
    assert re.findall(r'<td class="heat-(\d)( diagonal)?">(\d*)</td>', cells["SP3"])[1:3] == [
        ("2", "", "1"), ("2", " diagonal", "1")]
    assert "(no verdict)" in header and ">1</td>" in cells["SP0"]
    # A bar per category (its share given its own label) and the cited rules with their counts.
    assert "SP2 (4/4)" in page and "SP3 (1/2)" in page and ">50%</text>" in page
    assert ">SP2.a</text>" in page and ">5</text>" in page
    assert "Category accuracy" in page
