"""Retention: each source's rule (or the settings' default) redacts content, reasoning and raw outputs
older than its days, in batches, audited; what a person or a worker still needs is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit import chain
from audit.models import AuditEvent
from console.models import Item
from privacy import retention, rules
from privacy.models import RetentionRule
from privacy.redaction import marker
from tests.console.reviewing import make_verdict
from tests.factories import make_policy

pytestmark = pytest.mark.django_db

RAW = "<|channel|>analysis<|message|>thinking<|end|>"


@pytest.fixture
def version():
    return make_policy()


def _aged(days: int, version, *, source: str = "shop", needs_review: bool = False, **fields):
    verdict = make_verdict(version, source=source, needs_review=needs_review, raw_output=RAW,
                           content=f"text of a {days}-day-old item", **fields)
    Item.objects.filter(pk=verdict.item_id).update(created_at=timezone.now() - timedelta(days=days))
    return verdict


def _shop_rule(**days) -> RetentionRule:
    return rules.save_rule(actor=None, rule=RetentionRule(source="shop", **days))


def _reload(verdict):
    verdict.refresh_from_db()
    verdict.item.refresh_from_db()
    return verdict


def test_each_kind_is_redacted_only_once_older_than_its_sources_rule(version, settings):
    settings.RETENTION_CONTENT_DAYS = settings.RETENTION_REASONING_DAYS = settings.RETENTION_RAW_OUTPUT_DAYS = None
    _shop_rule(content_days=30, reasoning_days=7, raw_output_days=None)
    old, middle, new = _aged(40, version), _aged(10, version), _aged(2, version)
    elsewhere = _aged(40, version, source="forum")  # no rule, and the defaults keep everything

    retention.apply()

    text = marker()
    old, middle, new, elsewhere = (_reload(v) for v in (old, middle, new, elsewhere))
    assert (old.item.content, old.reasoning, old.raw_output) == (text, text, RAW)
    assert middle.item.content == "text of a 10-day-old item" and middle.reasoning == text
    assert new.item.content == "text of a 2-day-old item" and new.reasoning not in ("", text)
    assert elsewhere.item.content == "text of a 40-day-old item" and elsewhere.reasoning != text
    # Decisions stay, and the redactions are audited with the items they touched.
    assert (old.label, old.violation, old.status) == ("1", True, "done")
    content = AuditEvent.objects.get(action="retention.content_redacted")
    assert content.after["items"] == [old.item_id] and content.after["source"] == "shop"
    assert sorted(AuditEvent.objects.get(action="retention.reasoning_redacted").after["items"]) == sorted(
        [old.item_id, middle.item_id])
    assert chain.verify().ok


def test_sources_without_a_rule_follow_the_settings(version, settings):
    settings.RETENTION_CONTENT_DAYS, settings.RETENTION_REASONING_DAYS = 5, None
    settings.RETENTION_RAW_OUTPUT_DAYS = None
    _shop_rule(content_days=None)  # shop keeps everything, whatever the default
    forum, shop = _aged(6, version, source="forum"), _aged(6, version)

    retention.apply()

    forum, shop = _reload(forum), _reload(shop)
    assert forum.item.content == marker() and forum.reasoning != marker()
    assert shop.item.content == "text of a 6-day-old item"
    assert AuditEvent.objects.get(action="retention.content_redacted").object_id == "default"


def test_items_a_person_still_needs_keep_everything(version, settings):
    settings.RETENTION_CONTENT_DAYS = None
    _shop_rule(content_days=1, reasoning_days=1, raw_output_days=1)
    awaiting = _aged(5, version, needs_review=True)
    done = _aged(5, version)

    retention.apply()

    awaiting, done = _reload(awaiting), _reload(done)
    assert awaiting.item.content == "text of a 5-day-old item"
    assert awaiting.reasoning != marker() and awaiting.raw_output == RAW
    assert (done.item.content, done.reasoning, done.raw_output) == (marker(),) * 3


def test_a_conversation_keeps_its_roles_and_metadata_its_keys(version):
    _shop_rule(content_days=1)
    verdict = make_verdict(version, source="shop", needs_review=False, kind="conversation",
                           turns=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                           metadata={"author": "someone"})
    Item.objects.filter(pk=verdict.item_id).update(created_at=timezone.now() - timedelta(days=3))

    retention.apply()

    item = Item.objects.get(pk=verdict.item_id)
    text = marker()
    assert item.turns == [{"role": "user", "content": text}, {"role": "assistant", "content": text}]
    assert item.metadata == {"author": text}
    assert item.as_content().turns[0].content == text


def test_it_works_in_batches_and_a_second_run_finds_nothing(version, settings):
    settings.RETENTION_BATCH = 2
    _shop_rule(content_days=1)
    verdicts = [_aged(3, version) for _ in range(5)]

    [first] = retention.apply()
    [second] = retention.apply()

    assert (first.items, second.items) == (5, 0)
    assert AuditEvent.objects.filter(action="retention.content_redacted").count() == 3
    assert {Item.objects.get(pk=v.item_id).content for v in verdicts} == {marker()}


def test_the_command_counts_on_a_dry_run_and_changes_nothing(version, capsys):
    _shop_rule(content_days=1, reasoning_days=None)
    verdict = _aged(3, version)
    events = AuditEvent.objects.count()

    call_command("apply_retention", "--dry-run")

    out = capsys.readouterr().out
    assert "shop: content of 1 items due (kept 1 days)" in out and "Would redact: 1" in out
    assert Item.objects.get(pk=verdict.item_id).content == "text of a 3-day-old item"
    assert AuditEvent.objects.count() == events

    call_command("apply_retention")

    assert "Redacted: 1" in capsys.readouterr().out
    assert Item.objects.get(pk=verdict.item_id).content == marker()


def test_rule_changes_are_audited(admin_user):
    rule = rules.save_rule(actor=admin_user, rule=RetentionRule(source="shop", content_days=30))
    rule.content_days = 10
    rules.save_rule(actor=admin_user, rule=rule)
    rules.delete_rule(actor=admin_user, rule=rule)

    events = list(AuditEvent.objects.filter(object_type="privacy.retentionrule").order_by("seq"))
    assert [e.action for e in events] == ["retention_rule.created", "retention_rule.changed", "retention_rule.deleted"]
    assert (events[1].before["content_days"], events[1].after["content_days"]) == (30, 10)
    assert not RetentionRule.objects.exists()
