"""From a table to examples: the guessed mapping, labels read against the policy's scheme, category
columns, conversations, and refusals that name row and column and store nothing."""

from __future__ import annotations

import gzip
import json

import pytest

from audit.models import AuditEvent
from evaluations.files import read_table
from evaluations.mapping import Mapping, apply_mapping, guess_label, import_table, suggest_mapping
from evaluations.models import Example, LabeledSet
from evaluations.sets import SetError
from tests.evaluations.shared_data import SPAM_POLICY, SPAM_SET, need, teen_csvs
from tests.factories import make_labeled_set, make_policy

pytestmark = pytest.mark.django_db

TEEN_TEXT = "# Test\n\n## Allowed (DC0 - fine)\n\n## Bad (DC1 - bad)\n\n## Worse (DC2 - worse)\n\nAnswer with the code."


def _categories(labels: list[str], text: str = TEEN_TEXT):
    return make_policy(text=text, label_scheme="categories", labels=labels, output_format="label")


def _csv(text: str):
    return read_table(text.encode(), name="set.csv")


def test_the_teen_safety_columns_are_guessed_as_prompt_response_and_their_two_labels():
    version = _categories(["DC0", "DC1", "DC2", "DC3"])
    guessed = {path.name: suggest_mapping(read_table(path), version) for path in teen_csvs()}
    assert guessed["dangerous-content.csv"] == Mapping(prompt="Example", response="Responses",
                                                       label="Response Label", prompt_label="Classification")
    assert guessed["dangerous-roleplay.csv"] == Mapping(prompt="example", response="Responses",
                                                        label="Response Label", prompt_label="classification")
    assert guessed["graphic-sexual-content.csv"] == Mapping(prompt="Example Prompt", response="Example Generation",
                                                            label="Generation Label", prompt_label="Prompt label")


def test_a_prompt_and_response_make_a_completion_and_the_prompt_alone_a_message():
    version = _categories(["DC0", "DC1", "DC2"])
    table = _csv("Prompt,Prompt label,Response,Response label\nhow to do it,DC2,I can't help,DC0\n")
    examples = apply_mapping(table, suggest_mapping(table, version), version)
    assert [(e.kind, e.label, e.content, e.turns) for e in examples] == [
        ("message", "DC2", "how to do it", None),
        ("completion", "DC0", "", [{"role": "user", "content": "how to do it"},
                                   {"role": "assistant", "content": "I can't help"}]),
    ]


def test_an_empty_label_cell_skips_and_counts_that_example_only():
    version = _categories(["DC0", "DC1", "DC2"])
    table = _csv("Prompt,Prompt label,Response,Response label\na,,b,DC1\nc,DC0,d,\ne,,f,\n")
    examples = apply_mapping(table, suggest_mapping(table, version), version)
    assert [(e.row, e.kind) for e in examples] == [(2, "completion"), (3, "message")]
    assert examples.skipped == [(2, "Prompt label"), (3, "Response label"), (4, "Prompt label"),
                                (4, "Response label")]


def test_an_unknown_label_refuses_the_file_naming_row_column_and_value_and_nothing_is_stored():
    version = make_policy()
    table = _csv("text,label\nhello,0\nbuy now,1\nwhat,maybe\n")
    before = AuditEvent.objects.count()
    with pytest.raises(SetError) as refused:
        import_table(actor=None, policy=version.policy, table=table, mapping=suggest_mapping(table, version),
                     set_name="New set")
    assert (refused.value.row, refused.value.column) == (4, "label")
    assert "'maybe' is not a label of" in str(refused.value) and "0, 1" in str(refused.value)
    assert not LabeledSet.objects.exists() and not Example.objects.exists()
    assert AuditEvent.objects.count() == before


def test_a_missing_column_and_an_empty_text_are_refused_by_name():
    version = make_policy()
    table = _csv("text,label\nhello,0\n  ,1\n")
    with pytest.raises(SetError) as refused:
        apply_mapping(table, Mapping(text="body", label="label"), version)
    assert refused.value.column == "body" and "no column 'body'" in str(refused.value)
    with pytest.raises(SetError) as refused:
        apply_mapping(table, Mapping(text="text", label="label"), version)
    assert (refused.value.row, refused.value.column) == (3, "text") and "the text is empty" in str(refused.value)


def test_common_label_forms_are_read_for_binary_and_valid_invalid_policies():
    binary = make_policy()
    valid = make_policy(label_scheme="valid_invalid", output_format="label")
    table = _csv("text,label\na,true\nb,False\nc,yes\nd,no\ne,INVALID\nf,valid\ng,1\nh,0\n")
    mapping = Mapping(text="text", label="label")
    assert [e.label for e in apply_mapping(table, mapping, binary)] == ["1", "0", "1", "0", "1", "0", "1", "0"]
    assert [e.label for e in apply_mapping(table, mapping, valid)] == [
        "INVALID", "VALID", "INVALID", "VALID", "INVALID", "VALID", "INVALID", "VALID"]


def test_a_value_map_turns_the_files_words_into_labels_and_may_skip_a_value():
    version = make_policy()
    table = _csv("text,class\na,spam\nb,ham\nc,unsure\nd,promo\n")
    mapping = Mapping(text="text", label="class", values={"promo": "1", "unsure": ""})
    examples = apply_mapping(table, mapping, version)
    assert [(e.content, e.label) for e in examples] == [("a", "1"), ("b", "0"), ("d", "1")]
    assert examples.skipped == [(4, "class")]
    with pytest.raises(SetError, match="'2' is not a label"):
        apply_mapping(table, Mapping(text="text", label="class", values={"promo": "2", "unsure": ""}), version)


def test_category_codes_are_kept_as_categories_and_rule_ids_read_as_their_category():
    version = _categories(["DC0", "DC1", "DC2"])
    table = _csv("text,label\na,DC2\nb,dc0\nc,DC1.b\nd,0\n")
    examples = apply_mapping(table, suggest_mapping(table, version), version)
    assert [e.label for e in examples] == ["DC2", "DC0", "DC1", "DC0"]  # 0 is the one safe category
    with pytest.raises(SetError, match="'1' is not a label"):  # 1 could be DC1 or DC2: map it
        apply_mapping(_csv("text,label\na,1\n"), Mapping(text="text", label="label"), version)


def test_a_binary_policy_reads_the_rule_codes_its_own_text_defines():
    version = make_policy()  # its text defines SP2.a (a violation) and SP0.a
    assert guess_label("SP2", version) == "1" and guess_label("sp0", version) == "0"
    assert guess_label("DC2", version) is None


def test_a_gzipped_json_lines_set_with_several_category_columns_marks_any_1_a_violation():
    rows = [{"text": "hi there", "harassment": 0, "hate": 0, "violence": 0},
            {"text": "you idiot", "harassment": 1, "hate": 0, "violence": 0},
            {"text": "I will hurt them", "harassment": 1, "hate": 0, "violence": 1},
            {"text": "nobody labelled me", "harassment": None, "hate": None, "violence": None}]
    data = gzip.compress("\n".join(json.dumps(r) for r in rows).encode())
    table = read_table(data, name="toxicity.jsonl.gz")
    binary = make_policy()
    mapping = suggest_mapping(table, binary)
    assert mapping == Mapping(text="text", category_columns=["harassment", "hate", "violence"])
    examples = apply_mapping(table, mapping, binary)
    assert [e.label for e in examples] == ["0", "1", "1"] and examples.skipped == [(4, "harassment")]

    categories = make_policy(text="# T\n\n## OK (TX0 - fine)\n\n## Harassment (TX1)\n\n## Violence (TX3)\n",
                             label_scheme="categories", labels=["TX0", "TX1", "TX3"], output_format="label")
    with pytest.raises(SetError) as refused:
        apply_mapping(table, mapping, categories)
    assert refused.value.column == "harassment" and "names no category" in str(refused.value)
    coded = Mapping(text="text", category_columns=["violence", "harassment", "hate"],
                    category_codes={"harassment": "TX1", "hate": "TX1", "violence": "TX3"})
    assert [e.label for e in apply_mapping(table, coded, categories)] == ["TX0", "TX1", "TX3"]  # first listed wins
    bad = read_table(b'{"text": "x", "harassment": 2, "hate": 0, "violence": 0}\n', name="bad.jsonl")
    with pytest.raises(SetError) as refused:
        apply_mapping(bad, mapping, binary)
    assert (refused.value.row, refused.value.column) == (1, "harassment")


def test_a_turns_column_makes_a_conversation_and_bad_turns_are_refused_by_row():
    version = make_policy()
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "buy pills"}]
    table = read_table(json.dumps([{"turns": turns, "label": 1}, {"turns": json.dumps(turns), "label": 0}]).encode(),
                       name="chats.json")
    mapping = suggest_mapping(table, version)
    assert mapping == Mapping(turns="turns", label="label")
    examples = apply_mapping(table, mapping, version)
    assert [(e.kind, e.turns, e.label) for e in examples] == [("conversation", turns, "1"),
                                                               ("conversation", turns, "0")]
    bad = read_table(b'[{"turns": "[{\\"who\\": \\"user\\"}]", "label": 1}]', name="bad.json")
    with pytest.raises(SetError) as refused:
        apply_mapping(bad, mapping, version)
    assert (refused.value.row, refused.value.column) == (1, "turns") and "turn 1" in str(refused.value)


def test_importing_the_same_file_twice_stores_nothing_new():
    version = make_policy()
    table = _csv("text,label\nhello,0\nbuy now,1\nhello,0\n")
    mapping = suggest_mapping(table, version)
    first = import_table(actor=None, policy=version.policy, table=table, mapping=mapping, set_name="s")
    assert (first.added, first.duplicates, first.skipped) == (2, 1, 0)
    again = import_table(actor=None, policy=version.policy, table=table, mapping=mapping, set_name="S")
    assert (again.added, again.duplicates) == (0, 3) and again.labeled_set == first.labeled_set
    assert Example.objects.count() == 2 and LabeledSet.objects.count() == 1


def test_an_import_into_an_existing_set_adds_only_what_is_new():
    version = make_policy()
    labeled_set = make_labeled_set(version.policy, [("hello", "0")], name="Existing")
    table = _csv("text,label\nhello,1\nnew one,1\n")
    imported = import_table(actor=None, policy=version.policy, table=table, labeled_set=labeled_set,
                            mapping=suggest_mapping(table, version))
    assert (imported.added, imported.duplicates, imported.relabel_conflicts) == (1, 1, [2])
    assert labeled_set.examples.get(content="hello").label == "0"  # the stored label is kept


def test_the_spam_golden_set_imports_under_a_category_policy_made_from_its_own_text():
    text = need(SPAM_POLICY).read_text()
    version = _categories(["SP0", "SP2", "SP3", "SP4"], text=text)
    table = read_table(need(SPAM_SET))
    mapping = suggest_mapping(table, version)
    assert mapping == Mapping(text="text", label="label")
    imported = import_table(actor=None, policy=version.policy, table=table, mapping=mapping, set_name="golden")
    assert imported.added == 40 and imported.duplicates == 0
    stored = imported.labeled_set.examples
    assert stored.filter(violation=True).count() == 22 and stored.filter(label="SP0", violation=False).count() == 18
    assert set(stored.values_list("category", flat=True)) == {"SP0", "SP2", "SP3", "SP4"}
    assert stored.order_by("id").first().source_row == 3
