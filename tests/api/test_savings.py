"""The first-pass savings page: routes, reasoner tokens, the estimate of what was saved and the miss rate
on quality checks, checked against figures computed here from the stored rows."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from api import external_first_pass, ingest, routing, savings
from api.models import Route
from console import decisions
from console.intake import clean_item_input
from console.models import Classification
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine
from safeguard.intervals import wilson
from tests.api.helpers import ModerationServer, moderation_answer

SAFE = [f"hello friend {i}" for i in range(6)]
UNSURE = ["maybe later 1", "maybe later 2", "maybe later 3"]
SURE = ["buy now 1", "buy now 2"]


def _scores(text: str) -> dict[str, float]:
    return {"spam": 0.97 if "buy" in text else 0.5 if "maybe" in text else 0.01}


@pytest.fixture
def routed(acme, spam, admin_user, moderator, settings):
    """Eleven items routed by an external first pass (safe ones partly sampled), the reasoner's verdicts on
    its share, two of them and one safe item moved to yesterday, and the quality checks decided: the first
    overridden as spam, the rest approved."""
    settings.FIRST_PASS_ALLOWED_HOSTS = ["127.0.0.1"]
    server = ModerationServer(moderation_answer(_scores))
    try:
        routing.set_routing_rule(actor=admin_user, version=spam, safe_below=0.1, violation_above=0.9,
                                 sample_rate=0.5, violations_to_humans=True)
        external_first_pass.set_external_first_pass(actor=admin_user, policy=spam.policy, url=server.url,
                                                    category_map="spam = violation")
        submissions = [ingest.Submission(clean_item_input(kind="message", source=acme[0].source,
                                                          external_id=f"s-{i}", content=text), [spam])
                       for i, text in enumerate(SAFE + UNSURE + SURE)]
        states = ingest.ingest(client=acme[0], submissions=submissions, rng=random.Random(0))
    finally:
        server.close()
    assert run_once(ScriptedEngine(), "w1") == len(UNSURE)
    ids = [s["id"] for s in states]
    yesterday = timezone.now() - timedelta(days=1)
    moved = [ids[0], ids[len(SAFE)], ids[len(SAFE) + 1]]
    Route.objects.filter(item_id__in=moved).update(created_at=yesterday)
    Classification.objects.filter(item_id__in=moved).update(created_at=yesterday)
    samples = list(Classification.objects.filter(stage="fast", needs_review=True, violation=False).order_by("id"))
    assert len(samples) >= 2, "the seeded generator samples some safe items"
    decisions.override(user=moderator, classification_id=samples[0].pk, seen_review=None, label="1",
                       reason="spam the first pass missed")
    for sample in samples[1:]:
        decisions.approve(user=moderator, classification_id=sample.pk, seen_review=None)
    return spam, samples


def test_the_figures_match_the_stored_routes_and_verdicts(routed):
    spam, samples = routed
    unit, overall, policies = savings.savings(7)
    assert unit == "day"
    [figures] = policies
    assert figures.policy == spam.policy

    routes = list(Route.objects.all())
    path = {"closed": "closed", "qc_sample": "closed", "reasoner": "reasoner", "human": "human"}
    expected = Counter(path[r.route] for r in routes)
    assert figures.counts == dict(expected) | {p: 0 for p in savings.PATHS if p not in expected}
    assert figures.counts == {"closed": len(SAFE), "reasoner": len(UNSURE), "human": len(SURE)}
    per_day = Counter((timezone.localtime(r.created_at).date(), path[r.route]) for r in routes)
    shown = {(b.start.date(), p): n for b in figures.buckets for p, n in b.counts.items() if n}
    assert shown == dict(per_day)
    assert len(figures.buckets) == 7 and sum(1 for b in figures.buckets if b.total) == 2

    verdicts = list(Classification.objects.filter(stage="reasoner"))
    tokens = [c.prompt_tokens + c.completion_tokens for c in verdicts]
    assert figures.reasoner_tokens == sum(tokens) > 0
    assert figures.avg_tokens == pytest.approx(sum(tokens) / len(tokens))
    assert figures.saved_tokens == pytest.approx(len(SAFE) * sum(tokens) / len(tokens))
    assert figures.saved_gpu_s == pytest.approx(len(SAFE) * sum(c.latency_ms for c in verdicts) / len(verdicts) / 1000)
    assert figures.qc_sampled == len(samples)
    assert (figures.qc_decided, figures.qc_violating) == (len(samples), 1)
    assert figures.miss_interval == wilson(1, len(samples))

    assert overall.counts == figures.counts and overall.saved_tokens == pytest.approx(figures.saved_tokens)


def test_a_short_range_is_shown_per_hour_and_leaves_out_older_items(routed):
    unit, overall, _ = savings.savings(1)
    assert unit == "hour" and len(overall.buckets) == 24
    assert overall.total == len(SAFE + UNSURE + SURE) - 3  # the three moved to yesterday are a day old


def test_the_page_shows_the_savings_with_their_basis(routed, admin_client_):
    spam, samples = routed
    response = admin_client_.get("/integrations/first-pass/savings/", {"days": 7})
    assert response.status_code == 200
    page = response.content.decode()
    figures = savings.savings(7)[2][0]
    assert f"{len(SAFE) / 11:.0%}" in page  # closed share
    assert f"1 of {len(samples)}" in page
    assert f"{figures.reasoner_verdicts} reasoner verdict" in page
    assert "upper bound" in page and 'class="bar closed"' in page
    # Strict CSP: the chart is plain SVG; the page's only scripts are the site's own files.
    assert all(" src=" in tag for tag in re.findall(r"<script[^>]*>", page))


def test_a_range_it_does_not_offer_is_refused_naming_the_field(admin_client_):
    response = admin_client_.get("/integrations/first-pass/savings/", {"days": "5"})
    assert response.status_code == 400
    assert "days: choose one of 1, 2, 7, 30, 90" in response.content.decode()


def test_the_first_pass_page_links_to_the_savings(admin_client_):
    assert "/integrations/first-pass/savings/" in admin_client_.get("/integrations/first-pass/").content.decode()


def test_only_admins_see_the_savings(moderator_client):
    assert moderator_client.get("/integrations/first-pass/savings/").status_code in (302, 403)
