"""The fast first pass: a small CPU classifier per policy that scores every item before the reasoner.

Features are hashed word unigrams and bigrams and character 3-5-grams of the lower-cased text, weighted
tf-idf style: each distinct n-gram of a document counts 1 + log(its count) times its inverse document
frequency in the training texts, and each document's vector has unit length. scikit-learn's
LogisticRegression (class-balanced) fits the weights. Scoring is then one dot product per document.

Why tf-idf: measured side by side (bench/firstpass.py), it ranks better than plain counts on every
labelled set here (ROC AUC 0.86 -> 0.90 on the pooled teen-safety sets), mostly from the damped counts:
a long completion repeating a phrase no longer outweighs the phrase that matters. Models stored
before it (format firstpass/1: every occurrence counts 1, over the square root of the document's
n-gram total) still load and score as they did.

Why not sklearn's vectorizers at scoring time: their Python analyzer and FeatureHasher cost about
100 µs per short message (~9,000 items/s on one core with char n-grams), and the first pass must score
every ingested item well inside the ingestion budget. Here the n-gram hashes of a whole batch come from
one polynomial prefix hash over the concatenated texts (numpy, no per-n-gram Python), which scores
tens of thousands of short items/s on one core and one item in ~0.1 ms. The hash is fixed (not
Python's salted `hash`), so a model trained in one process scores identically in every other.

No Django here: the console stores `dumps(model)` bytes and routes on `score(model, texts)`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from safeguard.labels import is_safe_label

FORMAT = "firstpass/2"  # tf-idf weighting; "firstpass/1" (square-root counts) still loads
FORMATS = ("firstpass/1", FORMAT)
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

    def distinct(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(document, feature, count) of every distinct hashed n-gram of each text."""
        rows, columns = self.hashes(texts)
        keys, counts = np.unique((rows.astype(np.int64) << self.bits) | columns, return_counts=True)
        return (keys >> self.bits).astype(np.intp), (keys & (self.n_features - 1)).astype(np.intp), counts

    def weighted(self, texts: Sequence[str], idf: np.ndarray | None,
                 distinct: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(document, feature, value) of every feature of `texts`: the design matrix in triplets.

        With `idf` (tf-idf): one triplet per distinct n-gram of a document, valued
        (1 + log count) * idf, each document scaled to unit length (`distinct`: this `texts`' distinct
        n-grams, when already counted). Without (firstpass/1): one per occurrence, valued
        1 / sqrt(the document's n-gram total)."""
        if idf is None:
            rows, columns = self.hashes(texts)
            totals = np.bincount(rows, minlength=len(texts))
            return rows, columns, 1.0 / np.sqrt(np.maximum(totals[rows], 1))
        rows, columns, counts = distinct if distinct is not None else self.distinct(texts)
        values = (1.0 + np.log(counts)) * idf[columns]
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=len(texts)))
        return rows, columns, values / np.maximum(norms[rows], 1e-12)

    def matrix(self, texts: Sequence[str], idf: np.ndarray | None = None,
               distinct: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None):
        """The design matrix (scipy CSR) the weights apply to (see `weighted`)."""
        from scipy.sparse import csr_matrix

        rows, columns, values = self.weighted(texts, idf, distinct)
        return csr_matrix((values, (rows, columns)), shape=(len(texts), self.n_features))

    def fit_idf(self, texts: Sequence[str], distinct: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                ) -> np.ndarray:
        """Smoothed inverse document frequencies of every hashed feature over `texts`, as scikit-learn's
        TfidfTransformer computes them: log((1 + n) / (1 + df)) + 1. An n-gram no training text had
        gets the largest: its weight is 0, but it still counts towards its document's length."""
        columns = (distinct if distinct is not None else self.distinct(texts))[1]
        df = np.bincount(columns, minlength=self.n_features)
        return (np.log((1.0 + len(texts)) / (1.0 + df)) + 1.0).astype(np.float32)


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Model:
    featurizer: Featurizer
    weights: np.ndarray  # float32, one per hashed feature
    intercept: float
    n_examples: int = 0
    n_positive: int = 0
    idf: np.ndarray | None = None  # float32 per hashed feature (tf-idf); None: a firstpass/1 model


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
    weighting: str = "tf-idf",
) -> Model:
    """Fit a model on texts labelled violation (truthy) or not. `weighting` "counts" fits the
    firstpass/1 features instead (kept so the benchmark can set the old model beside the new)."""
    from sklearn.linear_model import LogisticRegression

    if weighting not in ("tf-idf", "counts"):
        raise FirstPassError(f"unknown weighting {weighting!r} (tf-idf or counts)")
    y = _check_training_data(texts, labels)
    featurizer = Featurizer(bits=bits, char_ngrams=tuple(char_ngrams))
    distinct = featurizer.distinct(texts) if weighting == "tf-idf" else None  # hashed and counted once
    idf = featurizer.fit_idf(texts, distinct) if distinct is not None else None
    # Balanced classes: violations are rare in real traffic, and the first pass is judged on recall.
    # liblinear: fast on sparse, very wide data (2**20 hashed features), about 20x lbfgs here.
    classifier = LogisticRegression(C=c, class_weight="balanced", solver="liblinear", max_iter=1000)
    classifier.fit(featurizer.matrix(texts, idf, distinct), y)
    return Model(
        featurizer=featurizer,
        weights=classifier.coef_.ravel().astype(np.float32),
        intercept=float(classifier.intercept_[0]),
        n_examples=len(y),
        n_positive=int(y.sum()),
        idf=idf,
    )


def score(model: Model, texts: Sequence[str]) -> np.ndarray:
    """Probability of a violation for each text (float64 array, same order)."""
    out = np.empty(len(texts), dtype=np.float64)
    for begin in range(0, len(texts), SCORE_CHUNK):
        chunk = texts[begin : begin + SCORE_CHUNK]
        rows, columns, values = model.featurizer.weighted(chunk, model.idf)
        logits = np.bincount(rows, weights=values * model.weights[columns], minlength=len(chunk)) + model.intercept
        out[begin : begin + len(chunk)] = 1.0 / (1.0 + np.exp(-logits))
    return out


def dumps(model: Model) -> bytes:
    """A compact, pickle-free serialisation: the non-zero weights, the idf of every feature the training
    texts had, and the parameters, as .npz bytes."""
    nonzero = np.flatnonzero(model.weights)
    meta = {
        "format": FORMAT if model.idf is not None else "firstpass/1",
        "bits": model.featurizer.bits,
        "char_ngrams": list(model.featurizer.char_ngrams),
        "intercept": model.intercept,
        "n_examples": model.n_examples,
        "n_positive": model.n_positive,
    }
    arrays = {"index": nonzero.astype(np.int64), "value": model.weights[nonzero]}
    if model.idf is not None:
        # Most features no training text had share the largest idf: store that once, the rest by index.
        unseen = float(model.idf.max())
        seen = np.flatnonzero(model.idf != np.float32(unseen))
        meta["idf_unseen"] = unseen
        arrays |= {"idf_index": seen.astype(np.int64), "idf_value": model.idf[seen]}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    return buffer.getvalue()


def loads(data: bytes) -> Model:
    """The model `dumps` wrote (either format). No pickle: loading stored bytes never runs code."""
    try:
        with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as archive:
            meta = json.loads(archive["meta"].tobytes())
            if meta.get("format") not in FORMATS:
                raise FirstPassError(f"unknown first-pass model format {meta.get('format')!r}")
            index, value = archive["index"], archive["value"]
            idf_parts = (archive["idf_index"], archive["idf_value"]) if meta["format"] == FORMAT else None
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, FirstPassError):
            raise
        raise FirstPassError(f"not a first-pass model: {exc}") from exc
    featurizer = Featurizer(bits=int(meta["bits"]), char_ngrams=tuple(int(n) for n in meta["char_ngrams"]))
    weights = np.zeros(featurizer.n_features, dtype=np.float32)
    weights[index] = value
    idf = None
    if idf_parts is not None:
        idf = np.full(featurizer.n_features, np.float32(meta["idf_unseen"]), dtype=np.float32)
        idf[idf_parts[0]] = idf_parts[1]
    return Model(
        featurizer=featurizer,
        weights=weights,
        intercept=float(meta["intercept"]),
        n_examples=int(meta["n_examples"]),
        n_positive=int(meta["n_positive"]),
        idf=idf,
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
    texts: Sequence[str], labels: Sequence[bool | int], *, folds: int = 5, seed: int = 0, c: float = 4.0,
    weighting: str = "tf-idf",
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
        model = train([text_list[i] for i in train_idx], y[train_idx], c=c, weighting=weighting)
        out[test_idx] = score(model, [text_list[i] for i in test_idx])
    return out


# --- labelled data files -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabeledText:
    text: str
    violation: bool
    label: str = ""  # the human (golden) label, e.g. "SP2"
    model_label: str = ""  # a model's answer recorded beside it, if the file has one
    categories: tuple[str, ...] = ()  # a violation's categories as the file names them ("SP2"; "H", "V2")


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
      true/false, VALID/INVALID or category codes (SP0 is safe, SP2 a violation); an optional
      `category` column names a violation's category;
    * a "golden set" sheet: section rows holding only a category code ("SP0", "SP3 ") label the
      numbered example rows below them (index, text, ..., a model's answer); title rows, blank rows and
      metric footers ("Accuracy, 0.9") are skipped.

    Cells are stripped (the sheets carry trailing spaces), CRLF and a UTF-8 byte-order mark are fine.
    """
    with _open_text(path) as handle:
        rows = [[cell.strip() for cell in row] for row in csv.reader(handle)]
    header = next((row for row in rows if any(row)), [])
    names = [cell.lower() for cell in header]
    if "text" in names and ({"label", "violation"} & set(names)):
        text_at = names.index("text")
        label_at = names.index("label") if "label" in names else names.index("violation")
        category_at = names.index("category") if "category" in names else None
        examples = []
        for number, row in enumerate(rows[rows.index(header) + 1 :], start=rows.index(header) + 2):
            if not any(row):
                continue
            cells = row + [""] * len(names)
            text, label = cells[text_at], cells[label_at]
            if not text:
                raise FirstPassError(f"line {number}: the text is empty")
            violation = _violation_of(label, f"line {number}")
            category = (cells[category_at] if category_at is not None else "") or category_of(label)
            category = category if violation else ""
            examples.append(LabeledText(text=text, violation=violation, label=label,
                                        categories=(category,) if category else ()))
        return examples
    return list(_read_sectioned(rows))


def read_labeled_file(path: str | Path, *, on_skip: Callable[[int, str], None] | None = None) -> list[LabeledText]:
    """Labelled examples from a CSV file (`read_labeled_csv`) or a JSON Lines / JSON file, plain or
    gzipped (`.jsonl.gz`), chosen by the file's name.

    A JSON row is an object. Its text is the first non-empty of `text`, `prompt`, `content`, `comment`,
    `message`; a `prompt` with a non-empty `response` is one completion ("user: ...\nassistant: ..."). Its
    label is a `label` / `violation` / `flagged` value (read as in CSV files), or else every other key
    holding 0/1 (or true/false) is a category flag and any 1 makes a violation, as in OpenAI's moderation
    evaluation set (`{"prompt": ..., "S": 0, "H": 1, "V2": 0}`), where a missing key means unknown. A row
    with neither is skipped and reported to `on_skip(line, reason)`; anything else unreadable raises
    FirstPassError naming the line."""
    name = str(path).lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return list(_read_json_rows(path, on_skip))
    return read_labeled_csv(path)


def _open_text(path: str | Path) -> io.TextIOBase:
    with open(path, "rb") as probe:
        zipped = probe.read(2) == b"\x1f\x8b"
    if zipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


_TEXT_KEYS = ("text", "prompt", "content", "comment", "message")
_LABEL_KEYS = ("label", "violation", "flagged")


def _json_objects(path: str | Path) -> Iterator[tuple[int, object]]:
    with _open_text(path) as handle:
        text = handle.read()
    stripped = text.lstrip()
    if stripped.startswith("["):  # one JSON document: a list of objects
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise FirstPassError(f"not valid JSON: {exc}") from exc
        yield from enumerate(rows, start=1)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as exc:
            raise FirstPassError(f"line {number}: not valid JSON ({exc.args[0]})") from exc


def _flag(value: object) -> bool | None:
    """A 0/1 (or true/false) category flag's value; None for anything that is not one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    return None


def _read_json_rows(path: str | Path, on_skip: Callable[[int, str], None] | None) -> Iterator[LabeledText]:
    for number, row in _json_objects(path):
        if not isinstance(row, dict):
            raise FirstPassError(f"line {number}: expected a JSON object, found {type(row).__name__}")
        text = next((row[k].strip() for k in _TEXT_KEYS if isinstance(row.get(k), str) and row[k].strip()), "")
        if not text:
            raise FirstPassError(f"line {number}: no text (none of {', '.join(_TEXT_KEYS)} holds any)")
        response = row.get("response")
        if isinstance(row.get("prompt"), str) and isinstance(response, str) and response.strip():
            text = f"user: {row['prompt'].strip()}\nassistant: {response.strip()}"
        label_key = next((k for k in _LABEL_KEYS if row.get(k) not in (None, "")), None)
        if label_key is not None:
            value = row[label_key]
            label = str(int(value)) if _flag(value) is not None else str(value).strip()
            violation = _violation_of(label, f"line {number}")
            category = category_of(label) if violation else ""
            yield LabeledText(text=text, violation=violation, label=label,
                              categories=(category,) if category else ())
            continue
        flags = {key: flag for key, value in row.items()
                 if key not in _TEXT_KEYS and key != "response" and (flag := _flag(value)) is not None}
        if not flags:
            if on_skip is not None:
                on_skip(number, "no label and no 0/1 category flags")
            continue
        flagged = tuple(key for key, flag in flags.items() if flag)
        yield LabeledText(text=text, violation=bool(flagged), label=",".join(flagged), categories=flagged)


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
            violation = not is_safe_label(section)
            yield LabeledText(text=rest[0], violation=violation, label=section, model_label=model_label,
                              categories=(section,) if violation else ())
        # anything else is a title, a note or a metric footer
