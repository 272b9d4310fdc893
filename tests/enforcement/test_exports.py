from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from enforcement import exports, transparency
from enforcement.models import Statement
from tests.console.reviewing import make_verdict
from tests.enforcement.helpers import approve

pytestmark = pytest.mark.django_db


def _decide(count, moderator, capture):
    verdicts = [make_verdict(content=f"Buy cheap pills at shop {n}", rationale=f"Shop link number {n}.")
                for n in range(count)]
    for verdict in verdicts:
        approve(capture, moderator, verdict)
    return verdicts


def test_the_batches_hold_at_most_the_documented_number_of_statements(moderator,
                                                                      django_capture_on_commit_callbacks):
    _decide(3, moderator, django_capture_on_commit_callbacks)
    day = Statement.objects.first().application_date
    batches = exports.submission_batches(day, day, size=2)
    assert [len(b["statements"]) for b in batches] == [2, 1]
    assert transparency.BATCH_SIZE == 100
    assert [len(b["statements"]) for b in transparency.batches([{}] * 201)] == [100, 100, 1]
    puids = [s["puid"] for b in batches for s in b["statements"]]
    assert len(set(puids)) == 3


def test_the_export_command_writes_batches_without_personal_data(moderator, tmp_path,
                                                                 django_capture_on_commit_callbacks):
    verdicts = _decide(2, moderator, django_capture_on_commit_callbacks)
    day = Statement.objects.first().application_date.isoformat()
    out = tmp_path / "statements.json"
    call_command("export_statements", "--since", day, "--until", day, "--out", str(out))
    text = out.read_text()
    [batch] = json.loads(text)
    assert len(batch["statements"]) == 2
    for statement in batch["statements"]:
        assert transparency.problems(statement) == []
    assert f'"{moderator.username}"' not in text and "reviewer" not in text
    for verdict in verdicts:
        assert verdict.item.content not in text
        assert verdict.item.external_id not in text
        assert verdict.item.source not in text


def test_the_export_leaves_out_withdrawn_statements_and_other_days(moderator, django_capture_on_commit_callbacks):
    _decide(1, moderator, django_capture_on_commit_callbacks)
    statement = Statement.objects.get()
    day = statement.application_date
    Statement.objects.filter(pk=statement.pk).update(withdrawn_at=statement.created_at)
    assert exports.submission_batches(day, day) == []
    Statement.objects.filter(pk=statement.pk).update(withdrawn_at=None)
    assert exports.submission_batches(day.replace(year=day.year + 1)) == []


def test_the_export_command_refuses_a_bad_date():
    with pytest.raises(CommandError, match="not a date"):
        call_command("export_statements", "--since", "yesterday", "--out", "/dev/null")
