from __future__ import annotations

import csv
import io
import re
import statistics
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils.html import escape

from console import decisions
from console.models import Item, Review
from enforcement import actions, automated, report, rules
from enforcement.models import Action, Appeal
from tests.console.reviewing import make_verdict
from tests.enforcement.helpers import approve, override
from tests.factories import make_policy

pytestmark = pytest.mark.django_db

SINCE, UNTIL = date(2026, 3, 1), date(2026, 3, 31)
START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)  # the first instant after the period


def _at(action: Action, decided_at: datetime, wait: timedelta) -> None:
    """Set when a decision was made and how long its item had waited (reviews move with it)."""
    Action.objects.filter(pk=action.pk).update(decided_at=decided_at)
    Item.objects.filter(pk=action.item_id).update(created_at=decided_at - wait)
    if action.review_id:
        Review.objects.filter(pk=action.review_id).update(created_at=decided_at)


@pytest.fixture
def history(moderator, admin_user, django_capture_on_commit_callbacks):
    """Decisions by moderators and by the models under two policies, some at the period's edges, and
    complaints about them. Returns what each decision should count as, written down independently."""
    capture = django_capture_on_commit_callbacks
    alpha, beta = make_policy(name="Alpha"), make_policy(name="Beta")
    rules.set_rule(user=None, policy=beta.policy, code="SP3", action="age_gate")
    rules.set_rule(user=None, policy=beta.policy, code="1", action="label")

    def decided_by_moderator(version, *, overriding=False, **fields):
        verdict = make_verdict(version, violation=not overriding, **fields)
        if overriding:
            override(capture, moderator, verdict, label="1")
        else:
            approve(capture, moderator, verdict)
        return Action.objects.get(classification=verdict)

    def decided_by_model(version, **fields):
        verdict = make_verdict(version, needs_review=False, **fields)
        automated.record_for_items([verdict.item_id])
        return Action.objects.get(classification=verdict)

    m1 = decided_by_moderator(alpha, metadata={"source_type": "notice"})
    m2 = decided_by_moderator(alpha, overriding=True)
    m3 = make_verdict(beta, violation=False)
    approve(capture, moderator, m3)
    m3 = Action.objects.get(classification=m3)
    a1 = decided_by_model(beta, violation=True, category="SP3", metadata={"source_type": "trusted_flagger"})
    a2 = decided_by_model(alpha, violation=False)
    a3 = decided_by_model(beta, stage="fast", violation=True)
    before = decided_by_moderator(alpha)  # the day before the period
    after = decided_by_model(beta, violation=True)  # the first instant after it
    actions.edit_action(user=moderator, action_id=m1.pk, action="remove", decision_ground="illegal_content",
                        legal_ground="Criminal code, section 1")
    escalated = make_verdict(alpha)
    with capture(execute=True):  # an escalation is a review, not a decision
        decisions.escalate(user=moderator, classification_id=escalated.pk, seen_review=0, reason="Unsure")
    Review.objects.filter(classification=escalated).update(created_at=START + timedelta(days=3))

    waits = {m1: timedelta(hours=1), m2: timedelta(hours=3), m3: timedelta(hours=2), a1: timedelta(seconds=10),
             a2: timedelta(seconds=20), a3: timedelta(seconds=30)}
    _at(m1, START, waits[m1])  # the period's first instant counts
    _at(m2, START + timedelta(days=5), waits[m2])
    _at(m3, START + timedelta(days=6), waits[m3])
    _at(a1, START + timedelta(days=7), waits[a1])
    _at(a2, START + timedelta(days=8), waits[a2])
    _at(a3, END - timedelta(seconds=1), waits[a3])  # its last second counts
    _at(before, START - timedelta(seconds=1), timedelta(hours=9))
    _at(after, END, timedelta(hours=9))

    def appeal(action, status, received, decided=None, reviewer=None):
        return Appeal.objects.create(
            item_id=action.item_id, action=action, reason="Wrong", status=status, filed_via="api:test",
            received_at=received, due_at=received + timedelta(days=14),
            original_reviewer=reviewer, decided_by=admin_user if decided else None, decided_at=decided,
            outcome_reason="Looked again" if decided else "", reversal=Review.objects.get(pk=m2.review_id)
            if status == "reversed" else None)

    day = timedelta(days=1)
    appeal(a1, "reversed", START + 8 * day, START + 9 * day)
    appeal(a3, "upheld", START + 2 * day, START + 4 * day)
    appeal(m1, "reversed", START + 3 * day, START + 6 * day, reviewer=moderator)
    appeal(a2, "upheld", START - 5 * day, START + 5 * day)  # received before the period, decided in it
    appeal(m2, "open", START + 10 * day, reviewer=moderator)
    appeal(before, "upheld", START - 9 * day, START - 2 * day)  # all before the period
    return {
        "decisions": [
            {"automation": "partially", "policy": "Alpha", "category": "Alpha: 1", "action": "remove",
             "ground": "illegal_content", "source": "article_16", "wait": waits[m1]},
            {"automation": "not_automated", "policy": "Alpha", "category": "Alpha: 1", "action": "remove",
             "ground": "incompatible_content", "source": "voluntary", "wait": waits[m2]},
            {"automation": "partially", "policy": "Beta", "category": "Beta: 0", "action": "none",
             "ground": "none", "source": "voluntary", "wait": waits[m3]},
            {"automation": "fully", "policy": "Beta", "category": "Beta: SP3", "action": "age_gate",
             "ground": "incompatible_content", "source": "trusted_flagger", "wait": waits[a1]},
            {"automation": "fully", "policy": "Alpha", "category": "Alpha: 0", "action": "none",
             "ground": "none", "source": "voluntary", "wait": waits[a2]},
            {"automation": "fully", "policy": "Beta", "category": "Beta: 1", "action": "label",
             "ground": "incompatible_content", "source": "voluntary", "wait": waits[a3]},
        ],
        # received in the period; decided in it (upheld, reversed); durations of those decided in it
        "appeals": {"received": 4, "received_still_open": 1, "decided": 4, "upheld": 2, "reversed": 2,
                    "durations": [day, 2 * day, 3 * day, 10 * day]},
        "reviews": {"approved": 2, "overridden": 1},  # m1, m3 approved; m2 overridden; escalation not counted
        "automated_appeals": {"decided": 3, "reversed": 1},  # a1 reversed; a2, a3 upheld
    }


def test_the_report_counts_each_breakdown_as_the_history_says(history):
    figures = report.build(SINCE, UNTIL)
    expected = history["decisions"]
    assert figures.decisions == len(expected) == 6
    assert figures.median_s == statistics.median(d["wait"].total_seconds() for d in expected)
    for key in ("automation", "policy", "category", "action", "ground", "source"):
        counted = {row.key: row.count for row in figures.breakdowns[key]}
        assert counted == dict(Counter(d[key] for d in expected)), key
        assert sum(counted.values()) == figures.decisions  # every breakdown adds up
    fully = next(r for r in figures.breakdowns["automation"] if r.key == "fully")
    assert fully.median_s == statistics.median(d["wait"].total_seconds() for d in expected
                                               if d["automation"] == "fully")
    restrictions = {row.key: row.count for row in figures.breakdowns["tdb_category"]}
    assert restrictions.pop("none") == sum(d["action"] == "none" for d in expected)
    assert sum(restrictions.values()) == sum(d["action"] != "none" for d in expected)


def test_the_report_counts_appeals_and_the_error_indicators(history):
    figures = report.build(SINCE, UNTIL)
    appeals = history["appeals"]
    assert {k: figures.appeals[k] for k in ("received", "received_still_open", "decided", "upheld", "reversed")} == {
        k: appeals[k] for k in ("received", "received_still_open", "decided", "upheld", "reversed")}
    assert figures.appeals["median_received_to_decided_s"] == statistics.median(
        d.total_seconds() for d in appeals["durations"])
    reviews, automated_appeals = history["reviews"], history["automated_appeals"]
    assert (figures.overrides.errors, figures.overrides.total) == (
        reviews["overridden"], reviews["approved"] + reviews["overridden"])
    assert (figures.reversals.errors, figures.reversals.total) == (
        automated_appeals["reversed"], automated_appeals["decided"])
    assert (figures.combined.errors, figures.combined.total) == (1 + 1, 3 + 3)
    low, high = figures.overrides.interval
    assert low < figures.overrides.share < high


def test_the_period_boundaries_are_whole_days_both_included(history):
    assert report.build(SINCE, SINCE).decisions == 1  # the first instant of the first day
    assert report.build(UNTIL, UNTIL).decisions == 1  # the last second of the last day
    assert report.build(date(2026, 2, 28), date(2026, 2, 28)).decisions == 1  # the one just before
    assert report.build(date(2026, 4, 1), date(2026, 4, 1)).decisions == 1  # the one just after
    assert report.build(date(2026, 2, 28), date(2026, 4, 1)).decisions == 8


def test_an_empty_period_reports_zeros_not_errors(db):
    figures = report.build(SINCE, UNTIL)
    assert figures.decisions == 0 and figures.median_s is None
    assert all(rows == [] for rows in figures.breakdowns.values())
    assert figures.overrides.share is None and figures.overrides.interval is None
    assert figures.appeals["received"] == 0 and figures.appeals["median_received_to_decided_s"] is None


def _figure(html: str, name: str) -> str:
    return re.search(rf'data-figure="{name}">([^<]*)<', html).group(1)


def test_the_page_and_its_csv_and_json_downloads_show_the_same_figures(history, admin_client_):
    query = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
    page = admin_client_.get("/enforcement/report/", query)
    assert page.status_code == 200
    html = page.content.decode()
    data = admin_client_.get("/enforcement/report.json", query)
    assert data["Content-Type"] == "application/json"
    data = data.json()
    rows = list(csv.reader(io.StringIO(admin_client_.get("/enforcement/report.csv", query).content.decode())))
    cells = {(row[0], row[1]): row[3] for row in rows[1:]}

    total = data["decisions"]["total"]
    assert _figure(html, "decisions") == f"{total} decisions" and total == 6
    assert int(cells[("decisions", "total")]) == total
    for entry in data["decisions"]["automation"]:
        assert int(cells[("decisions_by_automation", entry["key"])]) == entry["count"]
        assert f'<tr data-key="{entry["key"]}"><td>{entry["label"]}</td><td>{entry["count"]}</td>' in html
    assert _figure(html, "appeals-reversed") == str(data["appeals"]["reversed"]) == cells[("appeals", "reversed")]
    assert _figure(html, "appeal-median") == "2.5 days"
    assert data["appeals"]["median_received_to_decided_s"] == 2.5 * 86400
    share = data["accuracy"]["overridden_by_moderators"]["share"]
    assert _figure(html, "override-rate") == f"{share:.1%}"
    assert float(cells[("accuracy_overridden_by_moderators", "share")]) == share
    assert "<svg" in html and "Transparency Database category" in html


def test_csv_cells_cannot_run_as_formulas(admin_client_, moderator, django_capture_on_commit_callbacks):
    version = make_policy(name="=HYPERLINK(\"http://x.example\")")
    approve(django_capture_on_commit_callbacks, moderator, make_verdict(version))
    today = Action.objects.get().decided_at.date().isoformat()
    body = admin_client_.get("/enforcement/report.csv", {"since": today, "until": today}).content.decode()
    assert "'=HYPERLINK" in body and ",=HYPERLINK" not in body


@pytest.mark.parametrize("path", ["/enforcement/report/", "/enforcement/report.csv", "/enforcement/report.json"])
def test_a_bad_date_names_the_field_and_answers_400(admin_client_, path):
    response = admin_client_.get(path, {"since": "2026-02-30", "until": "2026-03-31"})
    assert response.status_code == 400
    assert "since" in response.content.decode() and "Enter a valid date" in response.content.decode()
    backwards = admin_client_.get(path, {"since": "2026-03-31", "until": "2026-03-01"})
    assert backwards.status_code == 400 and "until" in backwards.content.decode()


def test_an_unknown_download_format_is_refused_plainly(admin_client_):
    response = admin_client_.get("/enforcement/report.xlsx", {"since": "2026-03-01", "until": "2026-03-31"})
    assert response.status_code == 400 and b"csv and json" in response.content


@pytest.mark.parametrize("role_client", ["moderator", "writer", "nobody"], indirect=True)
def test_only_admins_see_the_report(role_client):
    for path in ("/enforcement/report/", "/enforcement/report.csv", "/enforcement/report.json"):
        assert role_client.get(path).status_code == 403


def test_admins_find_the_report_in_the_nav_with_a_default_period(admin_client_):
    home = admin_client_.get("/enforcement/report/")
    assert home.status_code == 200
    html = home.content.decode()
    assert 'href="/enforcement/report/">Transparency</a>' in html
    assert "Last 30 days" in html and "Previous half-year" in html


def test_the_presets_cover_the_usual_reporting_periods():
    presets = {label: (since, until) for label, since, until in report.presets(date(2026, 8, 15))}
    assert presets["Previous half-year"] == (date(2026, 1, 1), date(2026, 6, 30))
    assert presets["This half-year so far"] == (date(2026, 7, 1), date(2026, 8, 15))
    assert presets["Previous year"] == (date(2025, 1, 1), date(2025, 12, 31))
    assert report.presets(date(2026, 2, 1))[2][1:] == (date(2025, 7, 1), date(2025, 12, 31))


def test_an_automated_decision_a_moderator_made_restrict_counts_as_partially_automated(moderator):
    verdict = make_verdict(violation=False, needs_review=False)
    automated.record_for_items([verdict.item_id])
    action = Action.objects.get(classification=verdict)
    today = action.decided_at.date()
    assert {r.key: r.count for r in report.build(today, today).breakdowns["automation"]} == {"fully": 1}
    actions.edit_action(user=moderator, action_id=action.pk, action="label")
    assert {r.key: r.count for r in report.build(today, today).breakdowns["automation"]} == {"partially": 1}


def test_the_page_and_the_json_state_how_each_figure_is_defined(history, admin_client_):
    query = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
    html = admin_client_.get("/enforcement/report/", query).content.decode()
    definitions = admin_client_.get("/enforcement/report.json", query).json()["definitions"]
    for name in ("decision", "automation", "overridden_by_moderators", "automated_reversed_on_appeal", "ci95"):
        assert definitions[name] == report.DEFINITIONS[name]
        assert escape(definitions[name]) in html
