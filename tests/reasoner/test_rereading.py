"""Re-reading stored answers: a dry run changes nothing; --apply corrects verdicts, audited, never
taking work away from people."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from console.models import Classification, ReviewStatus
from reasoner.rereading import reread
from tests.console.reviewing import make_verdict
from tests.factories import make_policy

pytestmark = pytest.mark.django_db

ANALYSIS = "The message sells followers, which the policy calls spam."


def validity_policy():
    return make_policy(label_scheme="valid_invalid", labels=["VALID", "INVALID"], output_format="label",
                       text="Is this a genuine support request? Answer (VALID or INVALID):")


def stored_as_the_old_parser_read_it(version, final: str, *, violation: bool, **fields):
    """A verdict as the first-label-word parser stored it (it read the echoed instruction's VALID)."""
    raw = (f"<|channel|>analysis<|message|>{ANALYSIS}<|end|><|start|>assistant<|channel|>final<|message|>"
           f"{final}<|return|>")
    return make_verdict(version, violation=violation, label="INVALID" if violation else "VALID", rule_ids=[],
                        reasoning=ANALYSIS, raw_output=raw, needs_review=violation, confidence=None, **fields)


def test_a_dry_run_reports_what_would_change_and_stores_nothing():
    version = validity_policy()
    misread = stored_as_the_old_parser_read_it(version, "Answer (VALID or INVALID): INVALID", violation=False)
    events = AuditEvent.objects.count()

    report = reread(classifications=Classification.objects.all())

    assert (report.examined, report.applied, dict(report.transitions)) == (1, False, {"safe -> violation": 1})
    assert report.newly_for_people == 1
    misread.refresh_from_db()
    assert (misread.violation, misread.needs_review, misread.parse_quality) == (False, False, "clean")
    assert AuditEvent.objects.count() == events


def test_applying_corrects_a_misread_verdict_audits_it_and_sends_it_to_people():
    version = validity_policy()
    misread = stored_as_the_old_parser_read_it(version, "Answer (VALID or INVALID): INVALID", violation=False)
    right = stored_as_the_old_parser_read_it(version, "INVALID", violation=True, parse_quality="clean")

    report = reread(classifications=Classification.objects.all(), apply=True)

    assert [c.classification_id for c in report.changes] == [misread.pk]
    misread.refresh_from_db()
    assert (misread.status, misread.violation, misread.label, misread.parse_quality) == (
        "done", True, "INVALID", "recovered"
    )
    assert (misread.needs_review, misread.review_status, misread.queue) == (True, ReviewStatus.OPEN, "review")
    event = AuditEvent.objects.get(object_id=str(misread.pk), action="classification.reread")
    assert event.actor_name == "reparse_classifications"
    assert (event.before["violation"], event.after["violation"]) == (False, True)
    assert not AuditEvent.objects.filter(object_id=str(right.pk), action="classification.reread").exists()


def test_it_never_takes_work_from_people_or_undoes_their_decisions():
    version = validity_policy()
    waiting = stored_as_the_old_parser_read_it(version, "INVALID\nOn second thought: VALID", violation=True)
    decided = stored_as_the_old_parser_read_it(version, "VALID\n\nAnswer: INVALID", violation=False)
    Classification.objects.filter(pk=decided.pk).update(review_status=ReviewStatus.DECIDED, needs_review=True)

    report = reread(classifications=Classification.objects.all(), apply=True)

    waiting.refresh_from_db()
    decided.refresh_from_db()
    assert (waiting.status, waiting.needs_review, waiting.queue) == ("conflicting", True, "no_verdict")
    assert (decided.status, decided.review_status) == ("conflicting", ReviewStatus.DECIDED)
    assert report.kept_decided == 1


def test_the_command_is_a_dry_run_unless_told_to_apply():
    version = validity_policy()
    misread = stored_as_the_old_parser_read_it(version, "VALID or INVALID:\nINVALID", violation=False)
    out = io.StringIO()

    call_command("reparse_classifications", stdout=out)
    misread.refresh_from_db()
    assert misread.violation is False
    assert "1 would change" in out.getvalue() and "safe -> violation" in out.getvalue()
    assert "Nothing was stored" in out.getvalue()

    call_command("reparse_classifications", "--apply", "--policy", version.policy.slug, stdout=io.StringIO())
    misread.refresh_from_db()
    assert misread.violation is True


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--policy", "no-such-policy"], "--policy: no policy with the slug no-such-policy"),
     (["--policy-version", "987654"], "--policy-version: no policy version with the id 987654"),
     (["--since", "yesterday"], "--since: 'yesterday' is not a date")],
)
def test_the_command_refuses_bad_options_naming_them(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("reparse_classifications", *args, stdout=io.StringIO())


def test_the_command_refuses_to_run_on_a_database_that_is_not_migrated(monkeypatch):
    monkeypatch.setattr("django.db.migrations.executor.MigrationExecutor.migration_plan",
                        lambda self, targets: [("console", "0007_future")])

    with pytest.raises(CommandError, match="The database is not migrated yet"):
        call_command("reparse_classifications", stdout=io.StringIO())
