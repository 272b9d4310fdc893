from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.special import expit
from sklearn.feature_extraction.text import TfidfTransformer

from safeguard import firstpass

SPAM_SET = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "spam-policy" / "golden_dataset.csv"


@pytest.fixture(scope="module")
def spam_examples() -> list[firstpass.LabeledText]:
    if not SPAM_SET.exists():
        pytest.skip(f"the public spam data set is missing ({SPAM_SET.resolve()}): first-pass tests need it")
    return firstpass.read_labeled_csv(SPAM_SET)


@pytest.fixture(scope="module")
def spam_model(spam_examples) -> firstpass.Model:
    return firstpass.train([e.text for e in spam_examples], [e.violation for e in spam_examples])


# --- reading the messy golden sheet ----------------------------------------------------------------


def test_it_reads_the_golden_sheets_sections_as_labels(spam_examples):
    assert len(spam_examples) == 40
    assert {e.label for e in spam_examples} == {"SP0", "SP2", "SP3", "SP4"}  # "SP3 " has a trailing space
    assert sum(e.violation for e in spam_examples) == 22
    assert not any(e.violation for e in spam_examples if e.label == "SP0")
    first = spam_examples[0]
    assert first.text == "Reviewed the email you sent and providing in line responses to your queries"
    assert first.model_label == "SP0"
    # The model's answer is kept beside the golden label, not used as it: SP2 #4 was answered SP0.
    assert any(e.label == "SP2" and e.model_label == "SP0" for e in spam_examples)
    assert all(e.text == e.text.strip() and e.text for e in spam_examples)
    assert not any(e.text in {"Accuracy", "Precision", "Recall", "F1"} for e in spam_examples)


def test_it_reads_a_plain_text_and_label_csv(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("\ufefftext,label\r\nbuy now,1\r\nhello,0\r\n\r\n\"a, quoted\",SP2\r\nfine,VALID\r\n",
                    encoding="utf-8")
    rows = firstpass.read_labeled_csv(path)
    assert [(r.text, r.violation) for r in rows] == [("buy now", True), ("hello", False), ("a, quoted", True),
                                                     ("fine", False)]


def test_it_names_the_line_of_an_unreadable_label(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("text,label\nhello,maybe\n")
    with pytest.raises(firstpass.FirstPassError, match="line 2"):
        firstpass.read_labeled_csv(path)


def test_it_reads_json_lines_with_category_flags_plain_or_gzipped(tmp_path):
    rows = [{"prompt": "you people are vermin", "S": 0, "H": 1, "V": 0, "HR": 1},
            {"prompt": "lovely weather today", "S": 0, "H": 0},  # a missing flag is unknown, not a violation
            {"prompt": "   "},  # skipped below: no text
            {"prompt": "what is this", "note": "unlabelled"},
            {"text": "buy now", "label": "SP2"},
            {"prompt": "how do I", "response": "like this", "flagged": True}]
    body = "\n".join(json.dumps(r) for r in rows[:2] + rows[3:]) + "\n\n"
    plain, zipped = tmp_path / "m.jsonl", tmp_path / "m.jsonl.gz"
    plain.write_text(body, encoding="utf-8")
    zipped.write_bytes(gzip.compress(body.encode()))
    for path in (plain, zipped):
        skipped: list[tuple[int, str]] = []
        examples = firstpass.read_labeled_file(path, on_skip=lambda line, why, s=skipped: s.append((line, why)))
        assert [(e.text, e.violation, e.categories) for e in examples] == [
            ("you people are vermin", True, ("H", "HR")),
            ("lovely weather today", False, ()),
            ("buy now", True, ("SP2",)),
            ("user: how do I\nassistant: like this", True, ()),
        ]
        assert skipped == [(3, "no label and no 0/1 category flags")]


def test_a_json_row_without_text_or_that_is_not_json_names_its_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine", "label": 0}\n{"prompt": "", "S": 1}\n', encoding="utf-8")
    with pytest.raises(firstpass.FirstPassError, match="line 2: no text"):
        firstpass.read_labeled_file(path)
    path.write_text('{"text": "fine", "label": 0}\n{"text": "cut off\n', encoding="utf-8")
    with pytest.raises(firstpass.FirstPassError, match="line 2: not valid JSON"):
        firstpass.read_labeled_file(path)
    path.write_text('{"text": "fine", "label": "perhaps"}\n', encoding="utf-8")
    with pytest.raises(firstpass.FirstPassError, match="line 1: cannot read 'perhaps'"):
        firstpass.read_labeled_file(path)


def test_a_csv_category_column_names_a_violations_category(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("text,label,category\nkill them all,1,V\nhello,0,V\nbuy,SP2,\n", encoding="utf-8")
    assert [e.categories for e in firstpass.read_labeled_file(path)] == [("V",), (), ("SP2",)]


# --- the model -------------------------------------------------------------------------------------


def test_it_learns_the_spam_set(spam_examples, spam_model):
    scores = firstpass.score(spam_model, [e.text for e in spam_examples])
    labels = np.array([e.violation for e in spam_examples])
    assert scores[labels].min() > scores[~labels].max()  # separable on its own training data
    assert ((scores >= 0) & (scores <= 1)).all()


def test_scores_equal_the_logistic_regression_on_the_design_matrix(spam_examples, spam_model):
    texts = [e.text for e in spam_examples]
    matrix = spam_model.featurizer.matrix(texts, spam_model.idf)
    expected = expit(matrix @ spam_model.weights.astype(np.float64) + spam_model.intercept)
    assert np.allclose(firstpass.score(spam_model, texts), expected)


def test_the_design_matrix_is_sklearns_sublinear_tf_idf_of_the_hashed_ngrams(spam_examples, spam_model):
    texts = [e.text for e in spam_examples]
    featurizer = spam_model.featurizer
    rows, columns = featurizer.hashes(texts)
    counts = csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(len(texts), featurizer.n_features))
    expected = TfidfTransformer(sublinear_tf=True).fit(counts).transform(counts)
    assert abs(featurizer.matrix(texts, spam_model.idf) - expected).max() < 1e-6
    unseen = ["zzqx wholly unseen words"]  # unseen n-grams still count towards the length (norm 1)
    assert np.isclose(np.linalg.norm(featurizer.matrix(unseen, spam_model.idf).toarray()), 1.0)


def test_a_model_of_the_old_format_still_loads_and_scores_as_it_did(spam_examples):
    texts, labels = [e.text for e in spam_examples], [e.violation for e in spam_examples]
    old = firstpass.train(texts, labels, weighting="counts")
    assert old.idf is None
    data = firstpass.dumps(old)
    with np.load(io.BytesIO(data)) as archive:
        assert b'"firstpass/1"' in archive["meta"].tobytes() and "idf_index" not in archive
    loaded = firstpass.loads(data)
    # The old weighting: every occurrence counts 1, over the square root of the document's n-gram total.
    rows, columns = old.featurizer.hashes(texts)
    totals = np.bincount(rows, minlength=len(texts))
    logits = np.bincount(rows, weights=old.weights[columns], minlength=len(texts)) / np.sqrt(totals) + old.intercept
    assert np.allclose(firstpass.score(loaded, texts), expit(logits))
    with pytest.raises(firstpass.FirstPassError, match="weighting"):
        firstpass.train(texts, labels, weighting="bm25")


def test_scoring_is_the_same_one_by_one_and_in_batches(spam_examples, spam_model):
    texts = [e.text for e in spam_examples] * 60  # crosses the internal chunk size
    batch = firstpass.score(spam_model, texts)
    single = np.array([firstpass.score(spam_model, [t])[0] for t in texts[:40]])
    assert np.allclose(batch[:40], single)
    assert np.allclose(batch[:40], batch[40:80])


def test_it_scores_empty_and_unusual_text(spam_model):
    scores = firstpass.score(spam_model, ["", " ", "😀 ünïcödé\x00", "a" * 10_000])
    assert scores.shape == (4,)
    assert np.isfinite(scores).all()
    assert firstpass.score(spam_model, []).shape == (0,)


def test_hashing_is_fixed_so_stored_models_keep_working():
    # Fixed arithmetic, not Python's salted hash(): these indexes are part of every stored model, so a
    # change here must come with a new FORMAT (and retrained models).
    rows, columns = firstpass.Featurizer(bits=20).hashes(["buy now"])
    assert rows.tolist() == [0] * 21  # 7 + 6 + 5 character 3-, 4- and 5-grams, 2 words, 1 bigram
    assert sorted(columns.tolist()) == [
        33850, 136206, 233271, 396146, 451157, 457832, 460574, 609832, 639762, 673918, 690855, 766934, 772783,
        787354, 808051, 825995, 827258, 879580, 914176, 914526, 1042197,
    ]


def test_case_and_spacing_do_not_change_the_features():
    featurizer = firstpass.Featurizer()
    assert sorted(featurizer.hashes(["  Buy   NOW "])[1].tolist()) == sorted(featurizer.hashes(["buy now"])[1].tolist())
    assert firstpass.normalize("Visit shop.ca/deals!") == " visit shop . ca / deals ! "


def test_ngrams_never_cross_from_one_text_into_the_next():
    featurizer = firstpass.Featurizer()
    rows, columns = featurizer.hashes(["buy now", "hello"])
    alone = featurizer.hashes(["hello"])[1]
    assert sorted(columns[rows == 1].tolist()) == sorted(alone.tolist())


def test_a_model_survives_dumps_and_loads(spam_examples, spam_model):
    data = firstpass.dumps(spam_model)
    assert b"pickle" not in data
    loaded = firstpass.loads(data)
    texts = [e.text for e in spam_examples]
    assert np.allclose(firstpass.score(loaded, texts), firstpass.score(spam_model, texts))
    assert np.array_equal(loaded.idf, spam_model.idf)
    assert (loaded.n_examples, loaded.n_positive) == (40, 22)


def test_loads_refuses_bytes_that_are_not_a_model():
    with pytest.raises(firstpass.FirstPassError):
        firstpass.loads(b"definitely not a model")


def test_training_needs_both_classes():
    with pytest.raises(firstpass.FirstPassError, match="both"):
        firstpass.train(["a", "b"], [1, 1])
    with pytest.raises(firstpass.FirstPassError):
        firstpass.train(["a"], [1, 0])


# --- thresholds --------------------------------------------------------------------------------------


def test_the_recall_threshold_keeps_the_asked_recall():
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    labels = [0, 0, 1, 0, 1, 0, 1, 1, 1, 1]
    threshold = firstpass.threshold_for_recall(scores, labels, 0.95)
    assert threshold == 0.3  # 6 violations: none may be missed at 95%
    assert firstpass.recall_at(scores, labels, threshold) == 1.0
    assert firstpass.escalated_share(scores, threshold) == 0.8
    assert firstpass.threshold_for_recall(scores, labels, 0.8) == 0.5  # one of six may be missed


def test_out_of_fold_scores_hold_recall_on_the_spam_set(spam_examples):
    texts, labels = [e.text for e in spam_examples], [e.violation for e in spam_examples]
    scores = firstpass.out_of_fold_scores(texts, labels, folds=5, seed=1)
    threshold = firstpass.threshold_for_recall(scores, labels, 0.95)
    assert firstpass.recall_at(scores, labels, threshold) >= 0.95
    assert firstpass.escalated_share(scores, threshold) < 1.0  # some items are confidently safe
