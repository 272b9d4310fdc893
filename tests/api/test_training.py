"""First-pass training: what it learns from, when it retrains, and imported labelled sets."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from django.core.management import CommandError, call_command

from api import errors, training
from api.models import FirstPassModel, LabeledExample, Route
from audit.models import AuditEvent
from console.models import Classification, Review
from safeguard import firstpass
from tests.factories import make_item


def test_training_data_prefers_moderators_then_the_reasoner_then_imports(spam, moderator):
    reviewed = make_item(versions=[spam], content="cheap pills here")
    verdict_only = make_item(versions=[spam], content="lunch at noon?")
    for item, violation in ((reviewed, False), (verdict_only, False)):
        Classification.objects.filter(item=item).update(status="done", violation=violation, label="0")
    Review.objects.create(classification=Classification.objects.get(item=reviewed), decision="override",
                          label="1", reason="pills spam", reviewer=moderator)
    training.import_labeled_examples(actor=None, actor_name="system:test", policy=spam.policy, dataset="x.csv",
                                     examples=[firstpass.LabeledText("win a prize now", True)])
    training.import_labeled_examples(actor=None, actor_name="system:test", policy=spam.policy, dataset="y.csv",
                                     examples=[firstpass.LabeledText("casino bonus", True, "SP3")])
    texts, labels, categories, counts = training.training_examples(spam.policy)
    assert dict(zip(texts, labels, strict=True)) == {"cheap pills here": True, "lunch at noon?": False,
                                                     "win a prize now": True, "casino bonus": True}
    # A category code is kept as the violation's category; a plain yes/no label names none.
    assert dict(zip(texts, categories, strict=True))["casino bonus"] == "SP3"
    assert set(categories) == {"", "SP3"}
    assert counts == {"reviews": 1, "reasoner": 1, "imported": 2}


def test_retraining_needs_enough_data_and_skips_unchanged_data(spam, spam_examples, settings):
    assert training.retrain_first_pass(policy=spam.policy) is None  # nothing to learn from
    training.import_labeled_examples(actor=None, actor_name="system:test", policy=spam.policy,
                                     examples=spam_examples, dataset="golden_dataset.csv")
    settings.FIRST_PASS_MIN_EXAMPLES = 100
    assert training.retrain_first_pass(policy=spam.policy) is None
    settings.FIRST_PASS_MIN_EXAMPLES = 20
    model = training.retrain_first_pass(policy=spam.policy)
    assert (model.n_examples, model.n_positive) == (40, 22)
    assert model.metrics["sources"] == {"reviews": 0, "reasoner": 0, "imported": 40}
    assert 0.5 < model.metrics["cv"]["auc"] <= 1.0
    assert 0 < model.metrics["cv"]["proposal"]["held_out_escalated"] <= 1
    assert training.retrain_first_pass(policy=spam.policy) is None  # the data did not change
    assert training.retrain_first_pass(policy=spam.policy, force=True) is not None
    assert FirstPassModel.objects.filter(policy=spam.policy).count() == 2
    event = AuditEvent.objects.filter(action="first_pass.trained").first()
    assert event.actor_name == "system:first-pass"


def test_importing_labelled_examples_is_audited_and_refuses_an_empty_set(spam):
    with pytest.raises(errors.ClientError):
        training.import_labeled_examples(actor=None, policy=spam.policy, examples=[], dataset="empty.csv")
    count = training.import_labeled_examples(actor=None, actor_name="system:test", policy=spam.policy,
                                             dataset="two.csv", examples=[firstpass.LabeledText("a", True),
                                                                          firstpass.LabeledText("b", False)])
    assert count == 2 == LabeledExample.objects.count()
    assert AuditEvent.objects.get(action="first_pass.examples_imported").after["violations"] == 1


def test_when_the_budget_binds_the_verdicts_nearest_the_close_threshold_are_kept(spam, moderator, settings):
    settings.FIRST_PASS_SAFE_BELOW = 0.1
    items = {text: make_item(versions=[spam], content=text) for text in
             ("newest, no first-pass score", "scored far above the threshold", "scored just above the threshold")}
    for text, score in (("scored far above the threshold", 0.9), ("scored just above the threshold", 0.12)):
        Route.objects.update_or_create(item=items[text], policy_version=spam,
                                       defaults={"route": "reasoner", "score": score})
    for item in items.values():
        Classification.objects.filter(item=item).update(status="done", violation=False, label="0",
                                                        finished_at=item.created_at)

    settings.FIRST_PASS_MAX_EXAMPLES = 1
    assert training.training_examples(spam.policy)[0] == ["scored just above the threshold"]
    settings.FIRST_PASS_MAX_EXAMPLES = 3  # then the farther one, then those the first pass never scored
    assert training.training_examples(spam.policy)[0] == [
        "scored just above the threshold", "scored far above the threshold", "newest, no first-pass score"]


def test_the_import_command_reads_json_lines_with_category_flags_and_reports_rows_without_a_label(spam, tmp_path):
    path = tmp_path / "moderation.jsonl.gz"
    rows = [{"prompt": "you are all vermin", "H": 1, "V": 0}, {"prompt": "nice day", "H": 0, "V": 0},
            {"prompt": "who knows"}]
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    out = io.StringIO()
    call_command("import_labeled_set", spam.policy.slug, str(path), stdout=out)
    assert "Imported 2 examples (1 violations)" in out.getvalue()
    assert "Skipped 1 rows without a label (lines 3)" in out.getvalue()
    stored = dict(LabeledExample.objects.values_list("text", "violation"))
    assert stored == {"you are all vermin": True, "nice day": False}
    path.write_bytes(gzip.compress(b'{"prompt": "fine", "H": 0}\n{"prompt": "cut'))
    with pytest.raises(CommandError, match="line 2: not valid JSON"):
        call_command("import_labeled_set", spam.policy.slug, str(path), stdout=io.StringIO())
    assert LabeledExample.objects.count() == 2  # the broken file added nothing


def test_a_model_of_an_older_format_is_retrained_once_though_its_data_did_not_change(spam, spam_examples,
                                                                                      settings, monkeypatch):
    settings.FIRST_PASS_MIN_EXAMPLES = 20
    training.import_labeled_examples(actor=None, actor_name="system:test", policy=spam.policy,
                                     examples=spam_examples, dataset="golden_dataset.csv")
    with monkeypatch.context() as patched:
        patched.setattr(firstpass, "FORMAT", "firstpass/1")  # as if trained before tf-idf weighting
        assert training.retrain_first_pass(policy=spam.policy) is not None
    assert training.retrain_first_pass(policy=spam.policy) is not None  # the format changed: retrained
    assert training.retrain_first_pass(policy=spam.policy) is None  # and then not again
