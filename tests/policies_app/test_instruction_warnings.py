"""Policy writers are warned where a policy's output instruction does not match its label scheme."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import make_policy

pytestmark = pytest.mark.django_db

MIXED = (
    "# Risky stunts\nClassify each example as `VALID` (allowed) or `INVALID` (risky stunt content).\n"
    "## Label Format\n- `RS0`: allowed.\n- `RS1`: praise.\n- `RS2`: instructions.\n"
)
WARNING = "The text's output instruction and the version's label scheme disagree"


def test_the_editor_preview_and_version_pages_warn_about_a_mixed_instruction(writer_client):
    version = make_policy(text=MIXED, label_scheme="valid_invalid", labels=["VALID", "INVALID"],
                          output_format="label")
    slug = version.policy.slug

    pages = [reverse("policies:edit", args=[slug]), reverse("policies:preview", args=[slug, 1]),
             reverse("policies:version", args=[slug, 1]), reverse("policies:detail", args=[slug])]

    for url in pages:
        html = writer_client.get(url).content.decode()
        assert WARNING in html, url
        assert "also defines the codes RS0, RS1, RS2" in html, url


def test_a_policy_whose_instruction_matches_its_scheme_gets_no_warning(writer_client):
    version = make_policy()

    html = writer_client.get(reverse("policies:edit", args=[version.policy.slug])).content.decode()

    assert WARNING not in html


def test_the_editor_warns_about_what_the_writer_typed_before_it_is_saved(writer_client):
    version = make_policy()
    data = {"text": MIXED, "label_scheme": "categories", "labels": "RS0\nRS1\nRS2", "output_format": "json",
            "reasoning_effort": "medium", "change_note": "", "base_number": "1"}

    # An unchanged base number with a new text saves; a stale one keeps the form, with its warnings.
    data["base_number"] = "7"
    html = writer_client.post(reverse("policies:edit", args=[version.policy.slug]), data).content.decode()

    assert "VALID or INVALID as well as the codes RS0, RS1, RS2" in html
    assert "The output format is JSON, but the text never asks for a JSON object" in html
