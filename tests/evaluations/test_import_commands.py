"""The command-line twins: import_examples, import_policy_pack and export_policy_pack."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from evaluations.models import Example, LabeledSet
from policies_app.models import Policy
from tests.evaluations.shared_data import SPAM_POLICY, SPAM_SET, TEEN, need
from tests.factories import make_policy

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_import_examples_guesses_the_columns_and_prints_what_it_added(tmp_path):
    version = make_policy()
    path = tmp_path / "spam-check.csv"
    path.write_text("text,label\nhello,0\nbuy now,1\nnot yet,\n")
    out = _run("import_examples", version.policy.slug, str(path))
    assert "spam-check (" in out and "2 added, 0 duplicates, 1 skipped for an empty label (rows 4)" in out
    assert "text from 'text'; label from 'label'" in out
    assert LabeledSet.objects.get().name == "spam-check"
    assert AuditEvent.objects.filter(action="labeled_set.examples_added", actor_name="system:import_examples").exists()
    again = _run("import_examples", version.policy.slug, str(path))
    assert "0 added, 2 duplicates" in again and Example.objects.count() == 2


def test_import_examples_takes_columns_a_value_map_and_a_set_name(tmp_path):
    version = make_policy()
    path = tmp_path / "rows.tsv"
    path.write_text("body\tverdict\tnote\nhello\tham\tx\nbuy now\tspam\ty\n")
    out = _run("import_examples", version.policy.slug, str(path), "--set", "Mine", "--text", "body",
               "--label", "verdict", "--map", "ham=0,spam=1")
    assert "Mine (" in out and "2 added" in out
    assert sorted(LabeledSet.objects.get(name="Mine").examples.values_list("label", flat=True)) == ["0", "1"]


def test_import_examples_reads_prompt_and_response_columns_as_completions(tmp_path):
    version = make_policy()
    path = tmp_path / "gen.csv"
    path.write_text("q,a,y\nhi,buy pills,1\n")
    _run("import_examples", version.policy.slug, str(path), "--prompt", "q", "--response", "a", "--label", "y")
    example = Example.objects.get()
    assert example.kind == "completion" and example.turns == [{"role": "user", "content": "hi"},
                                                              {"role": "assistant", "content": "buy pills"}]


def test_import_examples_reads_gzipped_json_lines_with_category_columns_mapped_to_codes(tmp_path):
    version = make_policy(text="# T\n\n## OK (TX0 - fine)\n\n## Harassment (TX1)\n\n## Violence (TX3)\n",
                          label_scheme="categories", labels=["TX0", "TX1", "TX3"], output_format="label")
    path = tmp_path / "toxic.jsonl.gz"
    rows = [{"text": "hi", "harass": 0, "violent": 0}, {"text": "idiot", "harass": 1, "violent": 0},
            {"text": "I will hurt you", "harass": 1, "violent": 1}]
    path.write_bytes(gzip.compress("\n".join(map(json.dumps, rows)).encode()))
    out = _run("import_examples", version.policy.slug, str(path), "--category-columns", "violent,harass",
               "--map", "violent=TX3,harass=TX1")
    assert "3 added" in out and LabeledSet.objects.get().name == "toxic"
    assert dict(Example.objects.values_list("content", "label")) == {"hi": "TX0", "idiot": "TX1",
                                                                     "I will hurt you": "TX3"}


def test_import_examples_refuses_a_bad_file_naming_row_and_column_and_stores_nothing(tmp_path):
    version = make_policy()
    path = tmp_path / "bad.csv"
    path.write_bytes(b"text,label\nhello,0\n" + "caf\xe9,1\n".encode("cp1252"))
    with pytest.raises(CommandError, match=r"bad.csv: row 3, column 'text': the file is not UTF-8.*Nothing was"):
        _run("import_examples", version.policy.slug, str(path))
    path.write_text("text,label\nhello,0\nbye,2\n")
    with pytest.raises(CommandError, match=r"row 3, column 'label': '2' is not a label"):
        _run("import_examples", version.policy.slug, str(path))
    with pytest.raises(CommandError, match=r"no column 'body'"):
        _run("import_examples", version.policy.slug, str(path), "--text", "body")
    path.write_text(f"text,label\nhello,0\n{'x' * 200_001},1\n")
    with pytest.raises(CommandError, match=r"row 3, column 'text': the cell holds 200,001 characters"):
        _run("import_examples", version.policy.slug, str(path))
    path.write_text("")
    with pytest.raises(CommandError, match="the file is empty"):
        _run("import_examples", version.policy.slug, str(path))
    with pytest.raises(CommandError, match="No policy with slug"):
        _run("import_examples", "nope", str(path))
    assert not LabeledSet.objects.exists()


def test_import_examples_reads_the_spam_golden_sheet(tmp_path):
    version = make_policy(text=need(SPAM_POLICY).read_text(), label_scheme="categories",
                          labels=["SP0", "SP2", "SP3", "SP4"], output_format="label")
    out = _run("import_examples", version.policy.slug, str(need(SPAM_SET)))
    assert "golden-set sheet" in out and "golden_dataset (" in out and "40 added" in out


def test_import_policy_pack_imports_the_teen_safety_pack_and_adds_nothing_the_second_time():
    out = _run("import_policy_pack", str(need(TEEN)))
    assert "Dangerous Content Policy (dangerous-content): v1 created" in out
    assert "graphic-sexual-content: " in out and "1 skipped for an empty label (rows 9)" in out
    counts = (Policy.objects.count(), Example.objects.count())
    again = _run("import_policy_pack", str(TEEN))
    assert "v1 reused" in again and " 0 added" in again and (Policy.objects.count(), Example.objects.count()) == counts


def test_import_policy_pack_refuses_what_is_not_a_pack(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CommandError, match="no policy found.*Nothing was imported"):
        _run("import_policy_pack", str(tmp_path))
    with pytest.raises(CommandError, match="not a folder or a .zip"):
        _run("import_policy_pack", str(tmp_path / "notes.txt"))


def test_export_policy_pack_writes_a_zip_that_import_policy_pack_reads_back(tmp_path):
    _run("import_policy_pack", str(need(TEEN)))
    examples = Example.objects.count()
    out = _run("export_policy_pack", "dangerous-content", "graphic-violent-content:1", "--out", str(tmp_path / "p.zip"))
    assert "datasets/dangerous-content.csv" in out and "Wrote 2 policies" in out
    again = _run("import_policy_pack", str(tmp_path / "p.zip"))
    assert again.count("v1 reused") == 2 and Example.objects.count() == examples
    with pytest.raises(CommandError, match="has no version 7"):
        _run("export_policy_pack", "dangerous-content:7", "--out", str(tmp_path / "x"))
