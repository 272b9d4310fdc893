"""The fast first pass: a small CPU classifier per policy that scores every item before the reasoner.

Features are hashed word unigrams and bigrams and character 3-5-grams of the lower-cased text, each
document scaled by 1/sqrt(its number of n-grams); scikit-learn's LogisticRegression (class-balanced)
fits the weights. Scoring is then one dot product per document.

Why not sklearn's HashingVectorizer at scoring time: its Python analyzer and FeatureHasher cost about
100 µs per short message (~9,000 items/s on one core with char n-grams), and the first pass must score
every ingested item well inside the ingestion budget. Here the n-gram hashes of a whole batch come from
one polynomial prefix hash over the concatenated texts (numpy, no per-n-gram Python), which scores
~100,000 short items/s on one core and one item in ~0.1 ms. The hash is fixed (not Python's salted
`hash`), so a model trained in one process scores identically in every other.

No Django here: the console stores `dumps(model)` bytes and routes on `score(model, texts)`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from safeguard.labels import is_safe_label

FORMAT = "firstpass/1"
DEFAULT_BITS = 20
DEFAULT_CHAR_NGRAMS = (3, 4, 5)
SCORE_CHUNK = 1024  # documents hashed at once: big enough to amortise numpy calls, small enough for cache

# Polynomial hash in the ring of integers modulo 2**64 (numpy's uint64 arithmetic wraps). P is odd, so
# it has an inverse Q and prefix sums of c[j]*Q**j give any substring's hash in O(1).
_P = 0x100000001B3
_Q = pow(_P, -1, 2**64)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of h*MIX spread well
_SALT_WORD = np.uint64(0x5157_0A4D)
_SALT_BIGRAM = np.uint64(0xB16A_3A11)
_SPACE = 32
_PUNCTUATION = re.compile(r"([^\w\s])")


class FirstPassError(ValueError):
    """Training data the first pass cannot learn from, or bytes that are not a first-pass model."""


# --- hashing ---------------------------------------------------------------------------------------

_powers_lock = threading.Lock()
_powers: dict[int, np.ndarray] = {}


def _power_table(base: int, length: int) -> np.ndarray:
    """base**0 .. base**(length-1) modulo 2**64, cached and grown in doublings."""
    table = _powers.get(base)
    if table is None or len(table) < length:
        with _powers_lock:
            table = _powers.get(base)
            if table is None or len(table) < length:
                size = max(length, 2 * len(table) if table is not None else 4096)
                steps = np.full(size, base, dtype=np.uint64)
                steps[0] = 1
                table = np.cumprod(steps)
                _powers[base] = table
    return table


def normalize(text: str) -> str:
    """Lower case, punctuation as its own token, single spaces, one space at each end."""
    return " " + " ".join(_PUNCTUATION.sub(r" \1 ", text.lower()).split()) + " "


@dataclass(frozen=True, slots=True)
class Featurizer:
    bits: int = DEFAULT_BITS
    char_ngrams: tuple[int, ...] = DEFAULT_CHAR_NGRAMS

    @property
    def n_features(self) -> int:
        return 1 << self.bits

    def hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(document index, feature index) of every n-gram occurrence in `texts`."""
        norm = [normalize(t) for t in texts]
        lengths = np.fromiter(map(len, norm), dtype=np.intp, count=len(norm))
        codes = np.frombuffer("".join(norm).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        size = len(codes)
        doc = np.repeat(np.arange(len(norm), dtype=np.intp), lengths)
        prefix = np.zeros(size + 1, dtype=np.uint64)
        np.cumsum(codes * _power_table(_Q, size)[:size], out=prefix[1:])
        power = _power_table(_P, size + 1)

        def span(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
            # sum of c[j] * P**(stop-1-j) for j in [start, stop): the same value wherever the span sits
            return power[stop - 1] * (prefix[stop] - prefix[start])

        keys, rows = [], []
        for n in self.char_ngrams:
            if size < n:
                continue
            start = np.flatnonzero(doc[: size - n + 1] == doc[n - 1 :])  # n-grams inside one document
            keys.append(span(start, start + n) ^ np.uint64(n))
            rows.append(doc[start])
        # Every document starts and ends with a space, so words are the non-empty runs between spaces;
        # neighbouring documents meet at two spaces, which makes an empty run (dropped) and no bigram.
        spaces = np.flatnonzero(codes == _SPACE)
        starts, stops = spaces[:-1] + 1, spaces[1:]
        words = stops > starts
        starts, stops = starts[words], stops[words]
        keys.append(span(starts, stops) ^ _SALT_WORD)
        rows.append(doc[starts])
        pairs = starts[1:] == stops[:-1] + 1
        keys.append(span(starts[:-1][pairs], stops[1:][pairs]) ^ _SALT_BIGRAM)
        rows.append(doc[starts[:-1][pairs]])
        columns = (np.concatenate(keys) * _MIX) >> np.uint64(64 - self.bits)
        return np.concatenate(rows), columns.astype(np.intp)

    def matrix(self, texts: Sequence[str]):
        """The design matrix (scipy CSR) the weights apply to: n-gram counts over sqrt(n-gram total)."""
        from scipy.sparse import csr_matrix

        rows, columns = self.hashes(texts)
        totals = np.bincount(rows, minlength=len(texts))
        values = 1.0 / np.sqrt(np.maximum(totals[rows], 1))
        return csr_matrix((values, (rows, columns)), shape=(len(texts), self.n_features))


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Model:
    featurizer: Featurizer
    weights: np.ndarray  # float32, one per hashed feature
    intercept: float
    n_examples: int = 0
    n_positive: int = 0


def _check_training_data(texts: Sequence[str], labels: Sequence[bool | int]) -> np.ndarray:
    if len(texts) != len(labels):
        raise FirstPassError(f"{len(texts)} texts but {len(labels)} labels")
    y = np.asarray([bool(v) for v in labels], dtype=np.int8)
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise FirstPassError("the first pass needs examples of both violations and non-violations")
    return y


def train(
    texts: Sequence[str],
    labels: Sequence[bool | int],
    *,
    c: float = 4.0,
    bits: int = DEFAULT_BITS,
    char_ngrams: tuple[int, ...] = DEFAULT_CHAR_NGRAMS,
) -> Model:
    """Fit a model on texts labelled violation (truthy) or not."""
    from sklearn.linear_model import LogisticRegression

    y = _check_training_data(texts, labels)
    featurizer = Featurizer(bits=bits, char_ngrams=tuple(char_ngrams))
    # Balanced classes: violations are rare in real traffic, and the first pass is judged on recall.
    # liblinear: fast on sparse, very wide data (2**20 hashed features), about 20x lbfgs here.
    classifier = LogisticRegression(C=c, class_weight="balanced", solver="liblinear", max_iter=1000)
    classifier.fit(featurizer.matrix(texts), y)
    return Model(
        featurizer=featurizer,
        weights=classifier.coef_.ravel().astype(np.float32),
        intercept=float(classifier.intercept_[0]),
        n_examples=len(y),
        n_positive=int(y.sum()),
    )


def score(model: Model, texts: Sequence[str]) -> np.ndarray:
    """Probability of a violation for each text (float64 array, same order)."""
    out = np.empty(len(texts), dtype=np.float64)
    for begin in range(0, len(texts), SCORE_CHUNK):
        chunk = texts[begin : begin + SCORE_CHUNK]
        rows, columns = model.featurizer.hashes(chunk)
        totals = np.bincount(rows, minlength=len(chunk))
        sums = np.bincount(rows, weights=model.weights[columns], minlength=len(chunk))
        logits = sums / np.sqrt(np.maximum(totals, 1)) + model.intercept
        out[begin : begin + len(chunk)] = 1.0 / (1.0 + np.exp(-logits))
    return out


def dumps(model: Model) -> bytes:
    """A compact, pickle-free serialisation: the non-zero weights and the parameters, as .npz bytes."""
    nonzero = np.flatnonzero(model.weights)
    meta = {
        "format": FORMAT,
        "bits": model.featurizer.bits,
        "char_ngrams": list(model.featurizer.char_ngrams),
        "intercept": model.intercept,
        "n_examples": model.n_examples,
        "n_positive": model.n_positive,
    }
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        index=nonzero.astype(np.int64),
        value=model.weights[nonzero],
    )
    return buffer.getvalue()


def loads(data: bytes) -> Model:
    """The model `dumps` wrote. No pickle: loading stored bytes never runs code."""
    try:
        with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as archive:
            meta = json.loads(archive["meta"].tobytes())
            index, value = archive["index"], archive["value"]
    except (OSError, ValueError, KeyError) as exc:
        raise FirstPassError(f"not a first-pass model: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise FirstPassError(f"unknown first-pass model format {meta.get('format')!r}")
    featurizer = Featurizer(bits=int(meta["bits"]), char_ngrams=tuple(int(n) for n in meta["char_ngrams"]))
    weights = np.zeros(featurizer.n_features, dtype=np.float32)
    weights[index] = value
    return Model(
        featurizer=featurizer,
        weights=weights,
        intercept=float(meta["intercept"]),
        n_examples=int(meta["n_examples"]),
        n_positive=int(meta["n_positive"]),
    )


# --- thresholds ----------------------------------------------------------------------------------


def threshold_for_recall(scores: Sequence[float], labels: Sequence[bool | int], recall: float = 0.95) -> float:
    """The highest threshold t such that escalating every score >= t still catches `recall` of the
    violations. Items scoring below t would be closed."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray([bool(v) for v in labels])
    positives = np.sort(s[y])
    if not len(positives):
        raise FirstPassError("no violations among the labels: recall is undefined")
    missable = int(np.floor((1.0 - recall) * len(positives) + 1e-9))
    return float(positives[missable])


def escalated_share(scores: Sequence[float], threshold: float) -> float:
    """Share of items at or above `threshold` (sent on to the reasoner or people)."""
    s = np.asarray(scores, dtype=np.float64)
    return float(np.mean(s >= threshold)) if len(s) else 0.0


def recall_at(scores: Sequence[float], labels: Sequence[bool | int], threshold: float) -> float:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray([bool(v) for v in labels])
    return float(np.mean(s[y] >= threshold)) if y.any() else 1.0


def out_of_fold_scores(
    texts: Sequence[str], labels: Sequence[bool | int], *, folds: int = 5, seed: int = 0, c: float = 4.0
) -> np.ndarray:
    """Each text scored by a model that did not see it (stratified k-fold), for honest thresholds."""
    from sklearn.model_selection import StratifiedKFold

    y = _check_training_data(texts, labels)
    folds = min(folds, int(y.sum()), int(len(y) - y.sum()))
    if folds < 2:
        raise FirstPassError("cross-validation needs at least two examples of each class")
    out = np.empty(len(y), dtype=np.float64)
    text_list = list(texts)
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        model = train([text_list[i] for i in train_idx], y[train_idx], c=c)
        out[test_idx] = score(model, [text_list[i] for i in test_idx])
    return out


# --- labelled data files -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabeledText:
    text: str
    violation: bool
    label: str = ""  # the human (golden) label, e.g. "SP2"
    model_label: str = ""  # a model's answer recorded beside it, if the file has one


_CODE = re.compile(r"[A-Za-z]{1,6}\d{1,3}(?:\.[a-z0-9]{1,3})?")
_TRUE = {"1", "true", "yes", "y", "violation", "violating", "spam", "invalid"}
_FALSE = {"0", "false", "no", "n", "safe", "ok", "valid", "not_spam", "ham"}


def _violation_of(value: str, where: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    if _CODE.fullmatch(value.strip()):
        return not is_safe_label(value.strip())
    raise FirstPassError(f"{where}: cannot read {value!r} as a label (use 1/0, true/false or a code like SP2)")


def read_labeled_csv(path: str | Path) -> list[LabeledText]:
    """Labelled examples from a CSV file, in either of two layouts:

    * a header row naming a `text` column and a `label` (or `violation`) column; labels are 1/0,
      true/false, VALID/INVALID or category codes (SP0 is safe, SP2 a violation);
    * a "golden set" sheet: section rows holding only a category code ("SP0", "SP3 ") label the
      numbered example rows below them (index, text, ..., a model's answer); title rows, blank rows and
      metric footers ("Accuracy, 0.9") are skipped.

    Cells are stripped (the sheets carry trailing spaces), CRLF and a UTF-8 byte-order mark are fine.
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [[cell.strip() for cell in row] for row in csv.reader(handle)]
    header = next((row for row in rows if any(row)), [])
    names = [cell.lower() for cell in header]
    if "text" in names and ({"label", "violation"} & set(names)):
        text_at = names.index("text")
        label_at = names.index("label") if "label" in names else names.index("violation")
        examples = []
        for number, row in enumerate(rows[rows.index(header) + 1 :], start=rows.index(header) + 2):
            if not any(row):
                continue
            text, label = (row + [""] * len(names))[text_at], (row + [""] * len(names))[label_at]
            if not text:
                raise FirstPassError(f"line {number}: the text is empty")
            examples.append(LabeledText(text=text, violation=_violation_of(label, f"line {number}"), label=label))
        return examples
    return list(_read_sectioned(rows))


def category_of(label: str) -> str:
    """The category a violation's label names ("SP2", "DC3.a"), or "" for a plain yes/no label ("1", "spam")."""
    label = label.strip()
    return label.upper() if _CODE.fullmatch(label) else ""


def _read_sectioned(rows: Iterable[list[str]]) -> Iterable[LabeledText]:
    section = ""
    for number, row in enumerate(rows, start=1):
        if not any(row):
            continue
        first, rest = row[0], row[1:]
        if _CODE.fullmatch(first) and not any(rest):
            section = first.upper()
            continue
        if first.isdigit() and rest and rest[0]:
            if not section:
                raise FirstPassError(f"line {number}: an example before any section row names its label")
            model_label = next((cell.upper() for cell in reversed(rest[1:]) if _CODE.fullmatch(cell)), "")
            yield LabeledText(
                text=rest[0], violation=not is_safe_label(section), label=section, model_label=model_label
            )
        # anything else is a title, a note or a metric footer
