"""Policy packs: the public teen-safety pack imported unchanged, re-imports that add nothing, other
layouts, refusals that store nothing, and an export that imports back to the same examples."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from evaluations import sets
from evaluations.models import Example, LabeledSet
from evaluations.packs import PackError, export_pack, import_pack, scheme_of, title_of
from policies_app.models import Policy, PolicyVersion, VersionStatus
from safeguard.instructions import instruction_warnings
from tests.evaluations.shared_data import TEEN, need, raw_rows, teen_csvs
from tests.factories import make_labeled_set, make_policy

pytestmark = pytest.mark.django_db

TEEN_LABELS = {
    "dangerous-content": ["DC0", "DC1", "DC2", "DC3"],
    "dangerous-roleplay": ["DR0", "DR1", "DR2", "DR3"],
    "graphic-sexual-content": ["GS0", "GS1", "GS2"],
    "graphic-violent-content": ["GV0", "GV1", "GV2"],
}


def _expected(path: Path) -> tuple[Counter[str], int, set[tuple[str, str, str]]]:
    """Read independently of evaluations.files: each data row's prompt (labelled by column 2) and its
    prompt + response (labelled by column 4); labels counted per distinct example, empty labels skipped."""
    examples: dict[tuple[str, str, str], str] = {}
    skipped = 0
    for prompt, prompt_label, response, response_label in raw_rows(path)[2:]:
        for key, label in (((prompt.strip(), "", "message"), prompt_label),
                           ((prompt.strip(), response.strip(), "completion"), response_label)):
            if not label.strip():
                skipped += 1
                continue
            examples.setdefault(key, label.strip())
    return Counter(examples.values()), skipped, set(examples)


def _stored(labeled_set: LabeledSet) -> set[tuple[str, str, str]]:
    out = set()
    for e in labeled_set.examples.all():
        if e.turns:
            out.add((e.turns[0]["content"], e.turns[1]["content"], e.kind))
        else:
            out.add((e.content, "", e.kind))
    return out


def test_the_teen_safety_pack_imports_unchanged_as_draft_category_policies_with_their_sets():
    report = import_pack(actor=None, path=need(TEEN), actor_name="system:test")
    assert {entry.policy.slug for entry in report.policies} == set(TEEN_LABELS)
    for entry in report.policies:
        slug, version = entry.policy.slug, entry.version
        assert entry.outcome == "created" and version.status == VersionStatus.DRAFT and version.number == 1
        assert version.label_scheme == "categories" and version.labels == TEEN_LABELS[slug]
        assert version.output_format == "label"
        assert version.text == (TEEN / "example_policies" / slug / "policy.md").read_text().strip()
        assert entry.policy.name == title_of(version.text, slug) and entry.policy.name.endswith("Policy")
        # The text asks for VALID/INVALID beside the codes; that is the pack's own wording, and the only warning.
        assert all("VALID or INVALID as well as the codes" in w for w in instruction_warnings(version.as_spec()))
        [imported] = entry.sets
        labeled_set = imported.labeled_set
        assert labeled_set.name == slug and labeled_set.policy == entry.policy
        labels, skipped, examples = _expected(TEEN / "datasets" / f"{slug}.csv")
        assert imported.added == labeled_set.examples.count() == sum(labels.values())
        assert imported.skipped == skipped
        assert Counter(labeled_set.examples.values_list("label", flat=True)) == labels
        assert _stored(labeled_set) == examples
        assert set(labeled_set.examples.values_list("kind", flat=True)) == {"message", "completion"}
    sexual = next(e for e in report.policies if e.policy.slug == "graphic-sexual-content").sets[0]
    assert sexual.skipped == 1 and sexual.skipped_rows == [9]  # the row whose prompt label is empty
    assert len(teen_csvs()) == 4 and Example.objects.filter(violation=True, category__endswith="0").count() == 0


def test_importing_the_pack_again_adds_nothing():
    import_pack(actor=None, path=need(TEEN))
    counts = (Policy.objects.count(), PolicyVersion.objects.count(), LabeledSet.objects.count(),
              Example.objects.count())
    again = import_pack(actor=None, path=TEEN)
    assert {entry.outcome for entry in again.policies} == {"reused"}
    assert all(s.added == 0 and s.duplicates > 0 for entry in again.policies for s in entry.sets)
    assert (Policy.objects.count(), PolicyVersion.objects.count(), LabeledSet.objects.count(),
            Example.objects.count()) == counts


def test_a_zip_of_the_pack_in_its_own_folder_imports_the_same(tmp_path):
    archive = tmp_path / "teen-safety.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in need(TEEN).rglob("*"):
            if path.is_file():
                out.write(path, f"teen-safety/{path.relative_to(TEEN).as_posix()}")
    report = import_pack(actor=None, path=archive)
    assert {e.policy.slug for e in report.policies} == set(TEEN_LABELS)
    assert Example.objects.count() == sum(sum(_expected(p)[0].values()) for p in teen_csvs())


def test_a_flat_pack_and_a_changed_text_that_adds_a_new_draft_version(tmp_path):
    source = need(TEEN)
    flat = tmp_path / "flat"
    (flat / "dangerous-content").mkdir(parents=True)
    shutil.copy(source / "example_policies/dangerous-content/policy.md", flat / "dangerous-content/policy.md")
    shutil.copy(source / "datasets/dangerous-content.csv", flat / "dangerous-content.csv")
    shutil.copy(source / "datasets/dangerous-roleplay.csv", flat / "stray.csv")  # no policy: left out, said so
    report = import_pack(actor=None, path=flat)
    [entry] = report.policies
    assert entry.outcome == "created" and entry.sets[0].labeled_set.name == "dangerous-content"
    assert report.notes == ["stray.csv: not the policy or labelled set of any policy in the pack, left out"]

    policy_md = flat / "dangerous-content/policy.md"
    policy_md.write_text(policy_md.read_text() + "\n- One more example -> `DC2`\n")
    again = import_pack(actor=None, path=flat)
    assert again.policies[0].outcome == "new version" and again.policies[0].version.number == 2
    assert again.policies[0].version.status == VersionStatus.DRAFT
    assert again.policies[0].sets[0].added == 0


def test_a_pack_with_an_unreadable_file_stores_nothing_and_names_file_row_and_column(tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(need(TEEN), pack)
    bad = pack / "datasets/graphic-violent-content.csv"
    rows = bad.read_text(encoding="utf-8").split("\n")
    rows[4] = rows[4].replace("GV0", "GV7", 1)
    bad.write_text("\n".join(rows), encoding="utf-8")
    with pytest.raises(PackError) as refused:
        import_pack(actor=None, path=pack)
    message = str(refused.value)
    assert message.startswith("datasets/graphic-violent-content.csv, row ") and "'GV7' is not a label" in message
    assert not Policy.objects.exists() and not Example.objects.exists()


def test_the_scheme_is_read_from_the_policy_text():
    assert scheme_of("# P\n\n## Fine (AB0 - ok)\n\n## Bad (AB1 - no)\n\nAnswer with the code.") == (
        "categories", ["AB0", "AB1"], "label")
    assert scheme_of("Label format\n- `XY0`: fine\n- `XY2`: bad\nReturn JSON: {\"label\": ...}")[::2] == (
        "categories", "json")
    assert scheme_of("Classify as VALID or INVALID. Answer with one word.")[0] == "valid_invalid"
    assert scheme_of("Answer 1 or 0, nothing else.") == ("binary", ["0", "1"], "binary")


def test_an_exported_pack_imports_back_to_the_same_policy_and_examples(tmp_path):
    version = make_policy(name="Spam", description="Unsolicited promotion")
    policy = version.policy
    make_labeled_set(policy, [("hello", "0"), ("buy now, cheap", "1"), ('quoted "cell",\nwith a newline', "1")],
                     name=policy.slug)
    chat = sets.create_set(actor=None, policy=policy, name="Chats / edge cases")
    sets.add_examples(actor=None, labeled_set=chat, examples=[
        sets.NewExample(label="1", kind="completion", turns=[{"role": "user", "content": "hi"},
                                                             {"role": "assistant", "content": "buy pills"}]),
        sets.NewExample(label="0", kind="conversation", turns=[{"role": "user", "content": "a"},
                                                               {"role": "assistant", "content": "b"},
                                                               {"role": "user", "content": "c"}]),
        sets.NewExample(label="0", content="plain"),
    ])
    written = export_pack(versions=[version], out=tmp_path / "out")
    assert sorted(written) == [f"datasets/{policy.slug}.csv", f"datasets/{policy.slug}/Chats _ edge cases.csv",
                               f"example_policies/{policy.slug}/policy.json",
                               f"example_policies/{policy.slug}/policy.md"]
    header = (tmp_path / "out" / f"datasets/{policy.slug}.csv").read_text().split("\n")[0]
    assert header == "text,prompt,response,label"

    again = import_pack(actor=None, path=tmp_path / "out")  # the same policy: reused, nothing added
    assert again.policies[0].outcome == "reused" and all(s.added == 0 for s in again.policies[0].sets)

    meta_path = tmp_path / "out" / f"example_policies/{policy.slug}/policy.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "name": "Spam copy"}))
    shutil.make_archive(str(tmp_path / "copy"), "zip", tmp_path / "out")
    copy = import_pack(actor=None, path=tmp_path / "copy.zip").policies[0]
    assert copy.outcome == "created" and copy.policy.name == "Spam copy"
    assert (copy.version.text, copy.version.label_scheme, copy.version.labels, copy.version.output_format) == (
        version.text, version.label_scheme, version.labels, version.output_format)
    for original in LabeledSet.objects.filter(policy=policy):
        twin = LabeledSet.objects.get(policy=copy.policy, name=original.name)
        assert set(twin.examples.values_list("content_hash", "label", "kind")) == set(
            original.examples.values_list("content_hash", "label", "kind"))
