"""Parse quality on the pages: shares per policy version (dashboard, policy page) and their examples."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console import answer_quality
from tests.console.reviewing import make_verdict
from tests.factories import make_policy

pytestmark = pytest.mark.django_db


def some_answers(version):
    make_verdict(version, violation=True, parse_quality="clean")
    make_verdict(version, violation=False, parse_quality="recovered", needs_review=False)
    make_verdict(version, violation=True, parse_quality="recovered")
    conflict = make_verdict(version, status="conflicting")
    return conflict


def test_it_counts_each_versions_answers_by_how_they_were_read():
    version = make_policy()
    some_answers(version)
    make_verdict(version, status="failed")  # an engine failure has no answer to read

    [row] = answer_quality.version_quality()

    assert (row.version, row.total, row.needs_people) == (version, 4, 1)
    assert {s.quality: (s.count, s.percent) for s in row.shares} == {
        "clean": (1, 25.0), "recovered": (2, 50.0), "conflicting": (1, 25.0), "truncated": (0, 0.0),
        "unparsable": (0, 0.0),
    }


def test_the_dashboard_shows_the_shares_with_links_to_examples(writer_client):
    version = make_policy()
    some_answers(version)

    html = writer_client.get(reverse("console:dashboard")).content.decode()

    assert "How the model's answers were read" in html
    assert reverse("console:answer-examples", args=[version.pk, "conflicting"]) in html
    assert "25.0%" in html and "50.0%" in html


def test_the_policy_page_loads_its_versions_shares(writer_client):
    version = make_policy()
    some_answers(version)
    other = make_policy()
    make_verdict(other, status="unparsable")

    page = writer_client.get(version.policy.get_absolute_url()).content.decode()
    fragment = writer_client.get(reverse("console:answer-quality", args=[version.policy.slug])).content.decode()

    assert reverse("console:answer-quality", args=[version.policy.slug]) in page
    assert f"quality-{version.pk}" in fragment and f"quality-{other.pk}" not in fragment


def test_the_examples_page_lists_answers_with_why_they_went_to_people(moderator_client):
    version = make_policy()
    conflict = some_answers(version)

    response = moderator_client.get(reverse("console:answer-examples", args=[version.pk, "conflicting"]))

    html = response.content.decode()
    assert response.status_code == 200
    assert f"#{conflict.item_id}" in html and "the model&#x27;s answer was conflicting" in html


def test_the_examples_page_refuses_unknown_qualities_and_people_without_a_role(moderator_client, nobody_client):
    version = make_policy()

    assert moderator_client.get(reverse("console:answer-examples", args=[version.pk, "great"])).status_code == 404
    assert nobody_client.get(reverse("console:answer-examples", args=[version.pk, "clean"])).status_code == 403


def test_the_item_page_says_how_the_answer_was_read(moderator_client):
    item_verdict = make_verdict(make_policy(), violation=True, parse_quality="recovered")
    item_verdict.parse_notes = ["echoed label alternatives removed"]
    item_verdict.save(update_fields=["parse_notes"])

    html = moderator_client.get(reverse("console:item", args=[item_verdict.item_id])).content.decode()

    assert "Answer read" in html and "Recovered" in html and "echoed label alternatives removed" in html
